// The privacy policy, accepted before anything else (the login answer says whether it is).
import { defineComponent, reactive } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText } from '/assets/lib/i18n.js';
import { api, session, setPrivacy, navigate, logout } from '../state.js';

addMessages({
  'zh-CN': {
    'consent.title': '隐私政策', 'consent.version': '版本 {v}',
    'consent.body1': '结伴客保存你的资料、聊天消息、订单和上传的照片，用于提供结伴、聊天和商城服务。',
    'consent.body2': '手机号和收件人信息加密保存，只向需要的人展示（例如商家在发货时）。',
    'consent.body3': '你可以随时在「我的」中导出全部数据或注销账号，注销后资料会被删除或匿名化。',
    'consent.accept': '同意并继续', 'consent.decline': '不同意，退出',
  },
  'en-US': {
    'consent.title': 'Privacy policy', 'consent.version': 'Version {v}',
    'consent.body1': 'Jiebanke stores your profile, chat messages, orders and uploaded photos to provide companions, chat and the shop.',
    'consent.body2': 'Phone numbers and recipients are stored encrypted and shown only to whom needs them (a merchant delivering, say).',
    'consent.body3': 'At any time, under “Me”, you can export all your data or erase your account; erasing deletes or anonymizes it.',
    'consent.accept': 'Accept and continue', 'consent.decline': 'Decline and log out',
  },
});

export default defineComponent({
  props: ['route'],
  setup() {
    const state = reactive({ busy: false, error: '' });
    async function accept() {
      state.busy = true;
      try {
        const p = await api.put('/me/consent', { version: session.privacy.version });
        setPrivacy(p);
        navigate('#/chats');
      } catch (err) {
        state.error = errorText(err);
      } finally {
        state.busy = false;
      }
    }
    return () => html`<section>
      <header class="topbar"><h1>${t('consent.title')}</h1></header>
      <article class="card">
        <p class="hint">${t('consent.version', { v: session.privacy ? session.privacy.version : '' })}</p>
        <p>${t('consent.body1')}</p><p>${t('consent.body2')}</p><p>${t('consent.body3')}</p>
        ${state.error ? html`<p class="error-text" role="alert">${state.error}</p>` : null}
        <div class="row wrap">
          <button type="button" onClick=${accept} disabled=${state.busy} data-test="accept">${t('consent.accept')}</button>
          <button type="button" class="secondary" onClick=${logout}>${t('consent.decline')}</button>
        </div>
      </article>
    </section>`;
  },
});
