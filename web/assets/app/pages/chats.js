// The conversation list: newest activity first, unread counts, presence of direct peers.
import { defineComponent, computed, watchEffect } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, when } from '/assets/lib/i18n.js';
import { convs, convTitle, otherMember, messagesOf, client, net } from '../state.js';
import { avatar, dot, header, empty } from '../ui.js';

addMessages({
  'zh-CN': { 'chats.title': '聊天', 'chats.empty': '还没有聊天。去「结伴」找个同路人吧！', 'chats.new': '发起群聊', 'chats.group': '群聊',
    'msg.recalled': '消息已撤回', 'msg.deleted': '消息已删除', 'msg.other': '[暂不支持的消息]' },
  'en-US': { 'chats.title': 'Chats', 'chats.empty': 'No chats yet. Find a companion under “Companions”!', 'chats.new': 'New group', 'chats.group': 'group',
    'msg.recalled': 'Message recalled', 'msg.deleted': 'Message deleted', 'msg.other': '[unsupported message]' },
});

export function preview(m) {
  if (!m) return '';
  if (m.body.kind === 'text') return m.body.text;
  if (m.body.kind === 'recalled') return t('msg.recalled');
  if (m.body.kind === 'deleted') return t('msg.deleted');
  return t('msg.other');
}

export default defineComponent({
  props: ['route'],
  setup() {
    const list = computed(() => Object.values(convs).sort((a, b) => (b.last_ts || b.created_at) - (a.last_ts || a.created_at)));
    watchEffect(() => {
      if (net.status !== 'online' || !client) return;
      const peers = list.value.map(otherMember).filter(Boolean);
      if (peers.length) client.watch(peers);
    });
    return () => html`<section>
      ${header(t('chats.title'), null, html`<a class="button secondary small" href="#/new-chat">${t('chats.new')}</a>`)}
      ${list.value.length === 0 ? empty(t('chats.empty')) : html`<ul class="plain list" aria-label=${t('chats.title')}>
        ${list.value.map((c) => {
          const unread = Math.max(0, c.last_seq - c.read_seq);
          const last = messagesOf(c.id).at(-1);
          const peer = otherMember(c);
          return html`<li key=${c.id}>
            <a class="item" href=${'#/chat/' + c.id} data-conv=${c.id}>
              <span class="avatar-wrap">${peer ? avatar(peer) : html`<span class="avatar group" aria-hidden="true">👥</span>`}${peer ? dot(peer) : null}</span>
              <span class="item-main">
                <span class="item-title">${convTitle(c)}${c.kind === 'group' ? html` <span class="chip">${t('chats.group')} · ${c.members.length}</span>` : null}</span>
                <span class="item-sub">${preview(last)}</span>
              </span>
              <span class="item-side">
                <span class="muted small">${last ? when(last.ts) : ''}</span>
                ${unread > 0 ? html`<span class="badge" data-unread=${unread} aria-label=${t('unread', { n: unread })}>${unread}</span>` : null}
              </span>
            </a>
          </li>`;
        })}
      </ul>`}
    </section>`;
  },
});
