// Someone's public profile: start a chat, block or unblock, report.
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText } from '/assets/lib/i18n.js';
import { api, people, session, navigate, loadConversations, toast, attempt } from '../state.js';
import { avatar, dot, header, empty } from '../ui.js';

addMessages({
  'zh-CN': { 'user.title': '资料', 'user.chat': '发消息', 'user.block': '拉黑', 'user.unblock': '取消拉黑', 'user.report': '举报',
    'user.blocked': '已拉黑', 'user.unblocked': '已取消拉黑', 'user.erased': '该用户已注销', 'user.reason': '举报原因', 'user.reported': '已提交举报',
    'gender.female': '女', 'gender.male': '男', 'gender.other': '其他', 'gender.unspecified': '未填写', 'user.born': '{y} 年生' },
  'en-US': { 'user.title': 'Profile', 'user.chat': 'Message', 'user.block': 'Block', 'user.unblock': 'Unblock', 'user.report': 'Report',
    'user.blocked': 'Blocked', 'user.unblocked': 'Unblocked', 'user.erased': 'This account was erased', 'user.reason': 'Why do you report them?', 'user.reported': 'Reported',
    'gender.female': 'female', 'gender.male': 'male', 'gender.other': 'other', 'gender.unspecified': 'not said', 'user.born': 'born {y}' },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const st = reactive({ profile: null, blocked: false, error: '' });
    onMounted(async () => {
      try {
        st.profile = await api.get('/users/' + id);
        people[id] = st.profile;
        const blocks = await api.get('/me/blocks', { limit: 100 });
        st.blocked = blocks.items.some((b) => b.user === id);
      } catch (err) {
        st.error = errorText(err);
      }
    });
    async function chat() {
      await attempt(async () => {
        const c = await api.post('/conversations', { kind: 'direct', members: [id] });
        await loadConversations();
        navigate('#/chat/' + c.id);
      });
    }
    async function block() {
      await attempt(async () => {
        if (st.blocked) { await api.del('/me/blocks/' + id); st.blocked = false; toast(t('user.unblocked')); }
        else { await api.put('/me/blocks/' + id); st.blocked = true; toast(t('user.blocked')); }
      });
    }
    async function report() {
      const reason = window.prompt(t('user.reason'));
      if (!reason || !reason.trim()) return;
      await attempt(async () => { await api.post('/users/' + id + '/report', { reason: reason.trim() }); toast(t('user.reported')); });
    }
    return () => {
      const p = st.profile;
      return html`<section>
        ${header(t('user.title'), '#/chats')}
        ${st.error ? empty(st.error) : null}
        ${p ? html`<article class="card profile">
          <div class="row">${avatar(id, 64)}<div><h2>${p.nickname} ${dot(id)}</h2>
            <p class="muted">${t('gender.' + p.gender)}${p.birth_year ? ' · ' + t('user.born', { y: p.birth_year }) : ''}</p></div></div>
          ${p.erased ? html`<p>${t('user.erased')}</p>` : null}
          ${p.bio ? html`<p>${p.bio}</p>` : null}
          <p>${p.tags.map((tag) => html`<span class="chip" key=${tag}>${tag}</span>`)}</p>
          ${id !== session.me.id && !p.erased ? html`<div class="row wrap">
            <button type="button" onClick=${chat} data-test="dm">${t('user.chat')}</button>
            <button type="button" class="secondary" onClick=${block}>${st.blocked ? t('user.unblock') : t('user.block')}</button>
            <button type="button" class="danger" onClick=${report}>${t('user.report')}</button>
          </div>` : null}
        </article>` : null}
      </section>`;
    };
  },
});
