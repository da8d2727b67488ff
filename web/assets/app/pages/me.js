// Me: profile and avatar, privacy settings, blocks, language, my orders, export, log out, erase.
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText, locale, setLocale, LOCALES } from '/assets/lib/i18n.js';
import { api, session, setMe, logout, signOut, toast, attempt, nameOf, learn } from '../state.js';
import { avatar, header, empty } from '../ui.js';

addMessages({
  'zh-CN': {
    'me.title': '我的', 'me.profile': '个人资料', 'me.nickname': '昵称', 'me.bio': '简介', 'me.tags': '标签（用逗号分隔）', 'me.gender': '性别',
    'me.birth_year': '出生年份', 'me.save': '保存', 'me.saved': '已保存', 'me.avatar': '更换头像', 'me.avatar.done': '头像已更新',
    'me.settings': '隐私设置', 'me.dm_from': '谁可以给我发私信', 'me.group_add_from': '谁可以拉我进群', 'me.presence_to': '谁可以看到我是否在线',
    'me.matchable': '允许结伴匹配', 'aud.everyone': '所有人', 'aud.contacts': '联系人', 'aud.nobody': '没有人',
    'me.blocks': '黑名单', 'me.no_blocks': '黑名单为空', 'me.unblock': '移出', 'me.language': '语言 Language', 'me.orders': '我的订单', 'me.claims': '我的认领',
    'me.export': '导出我的数据', 'me.logout': '退出登录', 'me.erase': '注销账号', 'me.erase.confirm': '注销后资料将被删除且无法恢复。确定注销吗？',
    'me.account': '账号', 'me.id': '用户 ID {id}',
  },
  'en-US': {
    'me.title': 'Me', 'me.profile': 'Profile', 'me.nickname': 'Nickname', 'me.bio': 'About me', 'me.tags': 'Tags (comma separated)', 'me.gender': 'Gender',
    'me.birth_year': 'Year of birth', 'me.save': 'Save', 'me.saved': 'Saved', 'me.avatar': 'Change the avatar', 'me.avatar.done': 'Avatar updated',
    'me.settings': 'Privacy', 'me.dm_from': 'Who may message me', 'me.group_add_from': 'Who may add me to groups', 'me.presence_to': 'Who sees when I am online',
    'me.matchable': 'Let me be matched with companions', 'aud.everyone': 'Everyone', 'aud.contacts': 'Contacts', 'aud.nobody': 'Nobody',
    'me.blocks': 'Blocked', 'me.no_blocks': 'Nobody is blocked', 'me.unblock': 'Unblock', 'me.language': 'Language 语言', 'me.orders': 'My orders', 'me.claims': 'My claims',
    'me.export': 'Export my data', 'me.logout': 'Log out', 'me.erase': 'Erase my account', 'me.erase.confirm': 'Erasing deletes your data for good. Erase your account?',
    'me.account': 'Account', 'me.id': 'User id {id}',
  },
});

const LANG_NAMES = { 'zh-CN': '简体中文', 'en-US': 'English' };

export default defineComponent({
  props: ['route'],
  setup() {
    const me = session.me;
    const prof = reactive({ nickname: me.nickname, bio: me.bio, tags: (me.tags || []).join(', '), gender: me.gender, birth_year: me.birth_year ?? '' });
    const st = reactive({ settings: null, blocks: [], error: '', busy: false });
    onMounted(async () => {
      await attempt(async () => {
        st.settings = await api.get('/me/settings');
        st.blocks = (await api.get('/me/blocks', { limit: 100 })).items;
        learn(st.blocks.map((b) => b.user));
      });
    });
    async function save(e) {
      e.preventDefault();
      st.busy = true;
      st.error = '';
      try {
        const body = { nickname: prof.nickname.trim(), bio: prof.bio, gender: prof.gender,
          tags: prof.tags.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
          birth_year: prof.birth_year === '' ? null : Number(prof.birth_year) };
        setMe(await api.patch('/me', body));
        toast(t('me.saved'));
      } catch (err) {
        st.error = errorText(err);
      } finally {
        st.busy = false;
      }
    }
    async function upload(e) {
      const file = e.target.files && e.target.files[0];
      if (!file) return;
      await attempt(async () => {
        const form = new FormData();
        form.append('file', file);
        const up = await api.upload('/uploads', form);
        setMe(await api.patch('/me', { avatar_url: up.url }));
        toast(t('me.avatar.done'));
      });
      e.target.value = '';
    }
    async function setting(key, value) {
      await attempt(async () => { st.settings = await api.patch('/me/settings', { [key]: value }); });
    }
    async function unblock(u) {
      await attempt(async () => { await api.del('/me/blocks/' + u); st.blocks = st.blocks.filter((b) => b.user !== u); });
    }
    async function exportData() {
      await attempt(async () => {
        const data = await api.get('/me/export');
        const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
        const a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = 'jiebanke-export-' + session.me.id + '.json';
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      });
    }
    async function erase() {
      if (!window.confirm(t('me.erase.confirm'))) return;
      await attempt(async () => { await api.del('/me'); logout(); });
    }
    const audience = (key, choices) => html`<div>
      <label for=${'set-' + key}>${t('me.' + key)}</label>
      <select id=${'set-' + key} value=${st.settings[key]} onChange=${(e) => setting(key, e.target.value)}>
        ${choices.map((c) => html`<option value=${c} key=${c}>${t('aud.' + c)}</option>`)}
      </select>
    </div>`;
    return () => html`<section>
      ${header(t('me.title'))}
      <section class="card row">
        ${avatar(session.me.id, 56)}
        <div class="grow"><h2>${session.me.nickname}</h2><p class="muted small">${t('me.id', { id: session.me.id })}</p></div>
        <label class="button secondary small" for="avatar-file">${t('me.avatar')}</label>
        <input id="avatar-file" class="sr-only" type="file" accept="image/jpeg,image/png,image/webp" onChange=${upload} />
      </section>
      <nav class="card row wrap" aria-label=${t('me.orders')}>
        <a class="button secondary" href="#/orders">${t('me.orders')}</a>
        <a class="button secondary" href="#/orders/claims">${t('me.claims')}</a>
      </nav>
      <form class="card" onSubmit=${save} aria-labelledby="profile-title">
        <h2 id="profile-title">${t('me.profile')}</h2>
        <label for="me-nickname">${t('me.nickname')}</label>
        <input id="me-nickname" value=${prof.nickname} maxlength="32" required onInput=${(e) => { prof.nickname = e.target.value; }} />
        <label for="me-bio">${t('me.bio')}</label>
        <textarea id="me-bio" maxlength="500" value=${prof.bio} onInput=${(e) => { prof.bio = e.target.value; }}></textarea>
        <label for="me-tags">${t('me.tags')}</label>
        <input id="me-tags" value=${prof.tags} onInput=${(e) => { prof.tags = e.target.value; }} />
        <div class="row">
          <div class="grow"><label for="me-gender">${t('me.gender')}</label>
            <select id="me-gender" value=${prof.gender} onChange=${(e) => { prof.gender = e.target.value; }}>
              ${['unspecified', 'female', 'male', 'other'].map((g) => html`<option value=${g} key=${g}>${t('gender.' + g)}</option>`)}
            </select></div>
          <div class="grow"><label for="me-birth">${t('me.birth_year')}</label>
            <input id="me-birth" type="number" min="1900" max="2100" value=${prof.birth_year} onInput=${(e) => { prof.birth_year = e.target.value; }} /></div>
        </div>
        ${st.error ? html`<p class="error-text" role="alert">${st.error}</p>` : null}
        <button type="submit" disabled=${st.busy} data-test="save-profile">${t('me.save')}</button>
      </form>
      ${st.settings ? html`<section class="card" aria-labelledby="settings-title">
        <h2 id="settings-title">${t('me.settings')}</h2>
        ${audience('dm_from', ['everyone', 'contacts', 'nobody'])}
        ${audience('group_add_from', ['everyone', 'contacts', 'nobody'])}
        ${audience('presence_to', ['everyone', 'contacts', 'nobody'])}
        <div class="check">
          <input type="checkbox" id="set-matchable" checked=${st.settings.matchable} onChange=${(e) => setting('matchable', e.target.checked)} />
          <label for="set-matchable" class="inline">${t('me.matchable')}</label>
        </div>
      </section>` : null}
      <section class="card" aria-labelledby="blocks-title">
        <h2 id="blocks-title">${t('me.blocks')}</h2>
        ${st.blocks.length === 0 ? empty(t('me.no_blocks')) : html`<ul class="plain">${st.blocks.map((b) => html`<li key=${b.user} class="row">
          ${avatar(b.user, 28)}<span class="grow">${nameOf(b.user)}</span>
          <button type="button" class="secondary small" onClick=${() => unblock(b.user)}>${t('me.unblock')}</button></li>`)}</ul>`}
      </section>
      <section class="card">
        <label for="me-lang">${t('me.language')}</label>
        <select id="me-lang" value=${locale.value} onChange=${(e) => setLocale(e.target.value)} data-test="lang-select">
          ${LOCALES.map((l) => html`<option value=${l} key=${l}>${LANG_NAMES[l]}</option>`)}
        </select>
      </section>
      <section class="card row wrap" aria-label=${t('me.account')}>
        <button type="button" class="secondary" onClick=${exportData}>${t('me.export')}</button>
        <button type="button" class="secondary" onClick=${signOut} data-test="logout">${t('me.logout')}</button>
        <button type="button" class="danger" onClick=${erase}>${t('me.erase')}</button>
      </section>
    </section>`;
  },
});
