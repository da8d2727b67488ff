// Companion matching (结伴): where and when I am free; waiting; the proposal and its chat.
import { defineComponent, reactive } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText, when } from '/assets/lib/i18n.js';
import { client, matching, nameOf, net } from '../state.js';
import { avatar, header, empty } from '../ui.js';

addMessages({
  'zh-CN': {
    'match.title': '找结伴', 'match.intro': '填写目的地和空闲日期，系统会为你匹配时间重叠的同路人。', 'match.destination': '目的地',
    'match.from': '出发日期', 'match.to': '结束日期', 'match.min_days': '至少同行几天', 'match.submit': '开始匹配', 'match.waiting': '正在为你寻找同路人… 有效至 {t}',
    'match.cancel': '取消匹配', 'match.proposals': '匹配结果', 'match.proposal': '{name} 和你 {from} 至 {to} 都在{dest}', 'match.open': '去聊天',
    'match.expired': '没有找到同路人（{dest}），可以换个日期再试', 'match.offline': '连接后才能匹配', 'match.found': '匹配成功！',
  },
  'en-US': {
    'match.title': 'Find companions', 'match.intro': 'Say where and when you are free; we match you with travellers whose days overlap.', 'match.destination': 'Destination',
    'match.from': 'From', 'match.to': 'To', 'match.min_days': 'At least how many days together', 'match.submit': 'Find a match', 'match.waiting': 'Looking for companions… until {t}',
    'match.cancel': 'Cancel', 'match.proposals': 'Matches', 'match.proposal': '{name} is in {dest} with you from {from} to {to}', 'match.open': 'Open the chat',
    'match.expired': 'No companion found for {dest}; try other days', 'match.offline': 'Connect first to find a match', 'match.found': 'Matched!',
  },
});

function day(offset) {
  const d = new Date(Date.now() + offset * 86400000);
  return d.toISOString().slice(0, 10);
}

export default defineComponent({
  props: ['route'],
  setup() {
    const form = reactive({ destination: '', from: day(7), to: day(12), min_days: 2, error: '', busy: false });
    async function submit(e) {
      e.preventDefault();
      form.error = '';
      if (!client || net.status !== 'online') { form.error = t('match.offline'); return; }
      const request = { type: 'match_request', destination: form.destination.trim(), from: form.from, to: form.to, min_days: Number(form.min_days) };
      form.busy = true;
      try {
        const r = await client.request(request);
        matching.expired = null;
        matching.waiting = r.matched ? null : { request, expires_at: r.expires_at };
      } catch (err) {
        form.error = errorText(err);
      } finally {
        form.busy = false;
      }
    }
    async function cancel() {
      try { if (client) await client.request({ type: 'match_cancel' }); } catch (_) { /* gone anyway */ }
      matching.waiting = null;
    }
    return () => html`<section>
      ${header(t('match.title'))}
      ${matching.proposals.length ? html`<section class="card" aria-labelledby="proposals-title">
        <h2 id="proposals-title">${t('match.proposals')}</h2>
        <ul class="plain">${matching.proposals.map((p) => html`<li key=${p.match} class="proposal" data-match=${p.match}>
          <div class="row">${avatar(p.peer)}<p>${t('match.proposal', { name: nameOf(p.peer), dest: p.destination, from: p.from, to: p.to })}</p></div>
          <a class="button" href=${'#/chat/' + p.conv} data-test="open-match-chat">${t('match.open')}</a>
        </li>`)}</ul>
      </section>` : null}
      ${matching.waiting ? html`<section class="card" role="status">
        <p data-test="match-waiting">${t('match.waiting', { t: when(matching.waiting.expires_at) })}</p>
        <button type="button" class="secondary" onClick=${cancel}>${t('match.cancel')}</button>
      </section>` : null}
      ${matching.expired ? html`<p class="card" role="status">${t('match.expired', { dest: matching.expired.destination })}</p>` : null}
      <form class="card" onSubmit=${submit}>
        <p class="hint">${t('match.intro')}</p>
        <label for="match-dest">${t('match.destination')}</label>
        <input id="match-dest" value=${form.destination} required maxlength="64" onInput=${(e) => { form.destination = e.target.value; }} />
        <div class="row">
          <div class="grow"><label for="match-from">${t('match.from')}</label>
            <input id="match-from" type="date" value=${form.from} required onInput=${(e) => { form.from = e.target.value; }} /></div>
          <div class="grow"><label for="match-to">${t('match.to')}</label>
            <input id="match-to" type="date" value=${form.to} required onInput=${(e) => { form.to = e.target.value; }} /></div>
        </div>
        <label for="match-days">${t('match.min_days')}</label>
        <input id="match-days" type="number" min="1" max="60" value=${form.min_days} onInput=${(e) => { form.min_days = e.target.value; }} />
        ${form.error ? html`<p class="error-text" role="alert">${form.error}</p>` : null}
        <button type="submit" disabled=${form.busy || !!matching.waiting} data-test="match-submit">${t('match.submit')}</button>
      </form>
    </section>`;
  },
});
