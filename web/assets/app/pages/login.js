// Log in. In development the dev provider takes any code as the identity (the same code, the
// same user); in production a browser logs in by QR: the mini-program scans and confirms.
import { defineComponent, reactive, onUnmounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText, locale, setLocale } from '/assets/lib/i18n.js';
import { api, loggedIn, navigate } from '../state.js';

addMessages({
  'zh-CN': {
    'login.title': '结伴客', 'login.tagline': '找到同路人，一起出发', 'login.code': '登录码（开发环境）',
    'login.code.hint': '开发环境中，同一个登录码总是同一个用户，例如 alice', 'login.submit': '登录',
    'login.qr': '用小程序扫码登录', 'login.qr.start': '显示登录二维码', 'login.qr.ticket': '登录票据', 'login.qr.wait': '请在结伴客小程序中扫码并确认',
    'login.qr.expired': '二维码已过期，请重新获取', 'lang.switch': 'English',
  },
  'en-US': {
    'login.title': 'Jiebanke', 'login.tagline': 'Find companions and travel together', 'login.code': 'Login code (development)',
    'login.code.hint': 'In development the same code is always the same user, e.g. alice', 'login.submit': 'Log in',
    'login.qr': 'Log in with the mini-program', 'login.qr.start': 'Show the login QR code', 'login.qr.ticket': 'Login ticket', 'login.qr.wait': 'Scan it in the Jiebanke mini-program and confirm',
    'login.qr.expired': 'The code expired; get a new one', 'lang.switch': '中文',
  },
});

export default defineComponent({
  props: ['route'],
  setup() {
    const form = reactive({ code: '', busy: false, error: '', qr: null, qrState: '' });
    let poll = null;
    onUnmounted(() => clearTimeout(poll));

    async function submit(e) {
      e.preventDefault();
      if (!form.code.trim()) return;
      form.busy = true;
      form.error = '';
      try {
        const answer = await api.post('/auth/login', { code: form.code.trim(), provider: 'dev' });
        loggedIn(answer);
        navigate(answer.privacy.accepted ? '#/chats' : '#/consent');
      } catch (err) {
        form.error = errorText(err);
      } finally {
        form.busy = false;
      }
    }

    async function startQr() {
      form.error = '';
      try {
        form.qr = await api.post('/auth/qr', {});
        form.qrState = 'pending';
        watchQr();
      } catch (err) {
        form.error = errorText(err);
      }
    }

    function watchQr() {
      clearTimeout(poll);
      poll = setTimeout(async () => {
        if (!form.qr) return;
        try {
          const s = await api.get('/auth/qr/' + encodeURIComponent(form.qr.ticket));
          if (s.status === 'logged_in' && s.login) {
            loggedIn(s.login);
            navigate(s.login.privacy.accepted ? '#/chats' : '#/consent');
            return;
          }
          if (s.status === 'expired' || s.status === 'consumed') { form.qrState = 'expired'; return; }
        } catch (err) {
          if (err.code === 'not_found') { form.qrState = 'expired'; return; }
        }
        watchQr();
      }, 1500);
    }

    return () => html`<section class="login">
      <div class="hero">
        <img src="/app/icon.svg" alt="" width="72" height="72" />
        <h1>${t('login.title')}</h1>
        <p>${t('login.tagline')}</p>
      </div>
      <form class="card" onSubmit=${submit} aria-describedby="login-hint">
        <label for="login-code">${t('login.code')}</label>
        <input id="login-code" name="code" autocomplete="username" value=${form.code}
          onInput=${(e) => { form.code = e.target.value; }} maxlength="128" required />
        <p class="hint" id="login-hint">${t('login.code.hint')}</p>
        ${form.error ? html`<p class="error-text" role="alert">${form.error}</p>` : null}
        <button type="submit" disabled=${form.busy} data-test="login">${t('login.submit')}</button>
      </form>
      <section class="card" aria-labelledby="qr-title">
        <h2 id="qr-title">${t('login.qr')}</h2>
        ${form.qr ? html`<div>
            ${form.qrState === 'expired' ? null : html`<img class="qr" alt=${t('login.qr')} width="200" height="200"
              src=${'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(form.qr.qr_svg)} />`}
            <p role="status">${form.qrState === 'expired' ? t('login.qr.expired') : t('login.qr.wait')}</p>
            <p class="hint">${t('login.qr.ticket')}: <code data-test="qr-ticket">${form.qr.ticket}</code></p>
          </div>` : null}
        <button type="button" class="secondary" onClick=${startQr} data-test="qr-start">${t('login.qr.start')}</button>
      </section>
      <p class="center"><button type="button" class="link" data-test="lang"
        onClick=${() => setLocale(locale.value === 'zh-CN' ? 'en-US' : 'zh-CN')}>${t('lang.switch')}</button></p>
    </section>`;
  },
});
