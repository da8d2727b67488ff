// A new group chat with people I already talk to (contacts), or a user id.
import { defineComponent, reactive, computed } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, errorText } from '/assets/lib/i18n.js';
import { api, convs, session, nameOf, navigate, loadConversations } from '../state.js';
import { avatar, header, empty } from '../ui.js';

addMessages({
  'zh-CN': { 'new.title': '发起群聊', 'new.name': '群名称', 'new.members': '选择成员', 'new.id': '或输入用户 ID（多个用逗号分隔）',
    'new.create': '创建', 'new.none': '还没有联系人' },
  'en-US': { 'new.title': 'New group', 'new.name': 'Group name', 'new.members': 'Members', 'new.id': 'Or user ids (comma separated)',
    'new.create': 'Create', 'new.none': 'No contacts yet' },
});

export default defineComponent({
  props: ['route'],
  setup() {
    const form = reactive({ title: '', picked: {}, ids: '', error: '', busy: false });
    const contacts = computed(() => {
      const set = new Set();
      for (const c of Object.values(convs)) for (const m of c.members) if (m !== session.me.id) set.add(m);
      return [...set];
    });
    async function create(e) {
      e.preventDefault();
      const members = [...Object.keys(form.picked).filter((k) => form.picked[k]),
        ...form.ids.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean)];
      form.busy = true;
      form.error = '';
      try {
        const c = await api.post('/conversations', { kind: 'group', title: form.title, members: [...new Set(members)] });
        await loadConversations();
        navigate('#/chat/' + c.id);
      } catch (err) {
        form.error = errorText(err);
      } finally {
        form.busy = false;
      }
    }
    return () => html`<section>
      ${header(t('new.title'), '#/chats')}
      <form class="card" onSubmit=${create}>
        <label for="group-title">${t('new.name')}</label>
        <input id="group-title" value=${form.title} maxlength="64" required onInput=${(e) => { form.title = e.target.value; }} />
        <fieldset class="plain-fieldset">
          <legend>${t('new.members')}</legend>
          ${contacts.value.length === 0 ? empty(t('new.none')) : contacts.value.map((u) => html`<div class="check" key=${u}>
            <input type="checkbox" id=${'pick-' + u} checked=${!!form.picked[u]} onChange=${(e) => { form.picked[u] = e.target.checked; }} />
            <label for=${'pick-' + u} class="row inline">${avatar(u, 28)} ${nameOf(u)}</label>
          </div>`)}
        </fieldset>
        <label for="group-ids">${t('new.id')}</label>
        <input id="group-ids" value=${form.ids} inputmode="numeric" onInput=${(e) => { form.ids = e.target.value; }} />
        ${form.error ? html`<p class="error-text" role="alert">${form.error}</p>` : null}
        <button type="submit" disabled=${form.busy}>${t('new.create')}</button>
      </form>
    </section>`;
  },
});
