// One conversation: live messages in seq order, my unacked sends ("sending…", shown once and
// replaced by the stored message when acked), typing, read receipts, presence, recall, report.
import { defineComponent, reactive, computed, watch, onMounted, onUnmounted, nextTick, ref } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, when, errorText } from '/assets/lib/i18n.js';
import { api, convs, messages, messagesOf, loadHistory, loadConversations, client, session, outbox, typing,
  nameOf, convTitle, otherMember, presence, toast, attempt, learn, navigate } from '../state.js';
import { avatar, dot, header, empty } from '../ui.js';
import { preview } from './chats.js';

addMessages({
  'zh-CN': {
    'chat.input': '输入消息', 'chat.send': '发送', 'chat.sending': '发送中…', 'chat.earlier': '加载更早的消息', 'chat.typing': '{name} 正在输入…',
    'chat.read': '已读', 'chat.read.n': '{n} 人已读', 'chat.recall': '撤回', 'chat.report': '举报', 'chat.report.reason': '举报原因',
    'chat.reported': '已提交举报，感谢', 'chat.members': '成员', 'chat.empty': '还没有消息，打个招呼吧', 'chat.unknown': '找不到这个聊天',
    'chat.last_seen': '最近在线 {t}', 'chat.messages': '消息', 'chat.owner': '群主', 'chat.add': '添加', 'chat.add.label': '添加成员（用户 ID）',
    'chat.leave': '退出群聊', 'chat.leave.confirm': '确定退出这个群聊吗？',
  },
  'en-US': {
    'chat.input': 'Type a message', 'chat.send': 'Send', 'chat.sending': 'Sending…', 'chat.earlier': 'Load earlier messages', 'chat.typing': '{name} is typing…',
    'chat.read': 'Read', 'chat.read.n': 'Read by {n}', 'chat.recall': 'Recall', 'chat.report': 'Report', 'chat.report.reason': 'Why do you report it?',
    'chat.reported': 'Reported, thank you', 'chat.members': 'Members', 'chat.empty': 'No messages yet. Say hello!', 'chat.unknown': 'This chat was not found',
    'chat.last_seen': 'last seen {t}', 'chat.messages': 'Messages', 'chat.owner': 'owner', 'chat.add': 'Add', 'chat.add.label': 'Add a member (user id)',
    'chat.leave': 'Leave the group', 'chat.leave.confirm': 'Leave this group?',
  },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const draft = ref('');
    const ui = reactive({ members: false, loading: false, now: Date.now(), adding: '' });
    const listEl = ref(null);
    const conv = computed(() => convs[id]);
    const list = computed(() => messagesOf(id));
    const pending = computed(() => outbox.pending.filter((p) => p.conv === id && !list.value.some((m) => m.cmid === p.cmid && String(m.from) === session.me.id)));
    const peer = computed(() => otherMember(conv.value));
    let lastTyping = 0;
    const tick = setInterval(() => { ui.now = Date.now(); }, 1000);
    onUnmounted(() => clearInterval(tick));

    async function earlier() {
      const c = conv.value;
      if (!c) return;
      const lowest = list.value.length ? list.value[0].seq : (c.floor ?? c.last_seq) + 1;
      if (lowest <= 1) return;
      ui.loading = true;
      await attempt(() => loadHistory(id, lowest - 1, 30));
      ui.loading = false;
    }

    function markRead() {
      const c = conv.value;
      if (!c || !client || document.hidden) return;
      const last = list.value.at(-1);
      if (last && last.seq > c.read_seq) {
        c.read_seq = last.seq;
        client.fire({ type: 'read', conv: id, seq: last.seq });
      }
    }

    function scrollDown() {
      nextTick(() => { const el = listEl.value; if (el) el.scrollTop = el.scrollHeight; });
    }

    onMounted(async () => {
      if (!conv.value) await attempt(() => loadConversations());
      const c = conv.value;
      if (!c) return;
      learn(c.members);
      if (client && peer.value) client.watch([peer.value]);
      if (list.value.length < 20) await earlier();
      scrollDown();
      markRead();
    });
    watch(() => list.value.length + pending.value.length, () => { scrollDown(); markRead(); });
    const onVisible = () => markRead();
    document.addEventListener('visibilitychange', onVisible);
    onUnmounted(() => document.removeEventListener('visibilitychange', onVisible));

    function send(e) {
      e.preventDefault();
      const text = draft.value;
      if (!text.trim() || !client) return;
      client.send(id, text);
      draft.value = '';
    }

    function onInput(e) {
      draft.value = e.target.value;
      const now = Date.now();
      if (client && now - lastTyping > 3000) {
        lastTyping = now;
        client.fire({ type: 'typing', conv: id });
      }
    }

    function onKey(e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
    }

    async function recall(m) {
      try {
        await client.request({ type: 'recall', conv: id, seq: m.seq });
        messages[id][m.seq] = { ...m, body: { kind: 'recalled' } };
      } catch (err) {
        toast(errorText(err));
      }
    }

    async function report(m) {
      const reason = window.prompt(t('chat.report.reason'));
      if (!reason || !reason.trim()) return;
      try {
        await client.request({ type: 'report', conv: id, seq: m.seq, reason: reason.trim() });
        toast(t('chat.reported'));
      } catch (err) {
        toast(errorText(err));
      }
    }

    async function addMember(e) {
      e.preventDefault();
      const who = ui.adding.trim();
      if (!who) return;
      await attempt(async () => {
        const body = await api.post('/conversations/' + id + '/members', { members: [who] });
        Object.assign(convs[id], { members: body.members });
        learn(body.members);
        ui.adding = '';
      });
    }

    async function leave() {
      if (!window.confirm(t('chat.leave.confirm'))) return;
      await attempt(async () => {
        await api.del('/conversations/' + id + '/members/' + session.me.id);
        delete convs[id];
        navigate('#/chats');
      });
    }

    function readMark(m) {
      const c = conv.value;
      if (!c || !c.reads) return null;
      const readers = Object.entries(c.reads).filter(([u, s]) => u !== session.me.id && s >= m.seq).length;
      if (!readers) return null;
      return c.kind === 'direct' ? t('chat.read') : t('chat.read.n', { n: readers });
    }

    function typingLine() {
      const who = Object.entries(typing[id] || {}).filter(([u, until]) => until > ui.now && u !== session.me.id).map(([u]) => nameOf(u));
      return who.length ? t('chat.typing', { name: who.join(', ') }) : '';
    }

    function bubble(m) {
      const mine = String(m.from) === session.me.id;
      const live = m.body.kind === 'text';
      const lastMine = mine && live ? readMark(m) : null;
      return html`<li key=${'s' + m.seq} class=${'msg' + (mine ? ' mine' : '')} data-seq=${m.seq} data-cmid=${m.cmid}>
        ${mine ? null : html`<a href=${'#/user/' + m.from} class="msg-avatar" aria-label=${nameOf(m.from)}>${avatar(m.from, 32)}</a>`}
        <div class="msg-body">
          ${!mine && conv.value && conv.value.kind === 'group' ? html`<span class="msg-from">${nameOf(m.from)}</span>` : null}
          <div class=${'bubble' + (live ? '' : ' tomb')}>${live ? m.body.text : preview(m)}</div>
          <div class="msg-meta">
            <time>${when(m.ts)}</time>
            ${lastMine ? html`<span class="read-mark" data-read=${m.seq}>${lastMine}</span>` : null}
            ${live && mine ? html`<button type="button" class="link small" onClick=${() => recall(m)}>${t('chat.recall')}</button>` : null}
            ${live && !mine ? html`<button type="button" class="link small" onClick=${() => report(m)}>${t('chat.report')}</button>` : null}
          </div>
        </div>
      </li>`;
    }

    return () => {
      const c = conv.value;
      if (!c) return html`<section>${header('', '#/chats')}${empty(t('chat.unknown'))}</section>`;
      const p = peer.value;
      const st = p ? presence[p] : null;
      const sub = p ? (st && st.online ? t('presence.online') : (st && st.last_seen ? t('chat.last_seen', { t: when(st.last_seen) }) : '')) : null;
      return html`<section class="chat">
        ${header(html`<span class="row">${p ? dot(p) : null}<span data-test="chat-title">${convTitle(c)}</span>${sub ? html`<span class="hint small">${sub}</span>` : null}</span>`, '#/chats',
          html`<button type="button" class="secondary small" aria-expanded=${ui.members ? 'true' : 'false'} aria-controls="members"
            onClick=${() => { ui.members = !ui.members; }}>${t('chat.members')} ${c.members.length}</button>`)}
        ${ui.members ? html`<div id="members" class="members">
          <ul class="plain">${c.members.map((u) => html`<li key=${u}>
            <a href=${'#/user/' + u} class="row">${avatar(u, 28)}<span>${nameOf(u)}</span>${c.owner === u ? html`<span class="chip">${t('chat.owner')}</span>` : null}</a></li>`)}</ul>
          ${c.kind === 'group' && c.owner === session.me.id ? html`<form class="row" onSubmit=${addMember}>
            <label for="add-member" class="sr-only">${t('chat.add.label')}</label>
            <input id="add-member" inputmode="numeric" placeholder=${t('chat.add.label')} value=${ui.adding} onInput=${(e) => { ui.adding = e.target.value; }} />
            <button type="submit" class="small">${t('chat.add')}</button>
          </form>` : null}
          ${c.kind === 'group' && c.owner !== session.me.id ? html`<button type="button" class="danger small" onClick=${leave}>${t('chat.leave')}</button>` : null}
        </div>` : null}
        <ol class="plain messages" ref=${listEl} aria-label=${t('chat.messages')} aria-live="polite" tabindex="0">
          ${(list.value.length ? list.value[0].seq : (c.floor ?? 0) + 1) > 1
            ? html`<li class="center"><button type="button" class="link" disabled=${ui.loading} onClick=${earlier}>${t('chat.earlier')}</button></li>` : null}
          ${list.value.length === 0 && pending.value.length === 0 ? html`<li>${empty(t('chat.empty'))}</li>` : null}
          ${list.value.map(bubble)}
          ${pending.value.map((p) => html`<li key=${'p' + p.cmid} class="msg mine pending" data-pending=${p.cmid}>
            <div class="msg-body"><div class="bubble">${p.text}</div><div class="msg-meta">${t('chat.sending')}</div></div></li>`)}
        </ol>
        <p class="typing hint" aria-live="polite">${typingLine()}</p>
        <form class="composer" onSubmit=${send}>
          <label for="composer-input" class="sr-only">${t('chat.input')}</label>
          <textarea id="composer-input" rows="1" placeholder=${t('chat.input')} value=${draft.value}
            onInput=${onInput} onKeydown=${onKey} maxlength="4000"></textarea>
          <button type="submit" data-test="send">${t('chat.send')}</button>
        </form>
      </section>`;
    };
  },
});
