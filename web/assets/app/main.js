// The traveller's app (the H5 version of the mini-program): the shell around the pages: the
// connection banner, the tab bar, toasts, and the guard that sends a visitor to log in and a
// new user to the privacy policy first.
import { createApp, defineComponent, computed, watchEffect } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages } from '/assets/lib/i18n.js';
import { session, net, toasts, route, restore, connect, loadConversations, convs, navigate } from './state.js';
import { routes } from './routes.js';

addMessages({
  'zh-CN': {
    'tab.chats': '聊天', 'tab.match': '结伴', 'tab.shop': '商城', 'tab.me': '我的', 'nav.back': '返回', 'nav.main': '主导航',
    'net.connecting': '正在连接…', 'net.offline': '网络已断开，正在重连…', 'presence.online': '在线', 'presence.offline': '离线',
    'unread': '{n} 条未读',
  },
  'en-US': {
    'tab.chats': 'Chats', 'tab.match': 'Companions', 'tab.shop': 'Shop', 'tab.me': 'Me', 'nav.back': 'Back', 'nav.main': 'Main navigation',
    'net.connecting': 'Connecting…', 'net.offline': 'Offline, reconnecting…', 'presence.online': 'online', 'presence.offline': 'offline',
    'unread': '{n} unread',
  },
});

const TABS = [
  { id: 'chats', href: '#/chats', icon: '💬' },
  { id: 'match', href: '#/match', icon: '🧭' },
  { id: 'shop', href: '#/shop', icon: '🌷' },
  { id: 'me', href: '#/me', icon: '👤' },
];

const App = defineComponent({
  setup() {
    restore();
    const current = computed(() => routes[route.value.name] || routes.chats);
    const unread = computed(() => Object.values(convs).reduce((n, c) => n + Math.max(0, c.last_seq - c.read_seq), 0));

    watchEffect(() => {
      const r = route.value;
      const page = routes[r.name];
      if (!session.token && !(page && page.public)) { navigate('#/login'); return; }
      if (session.token && session.privacy && !session.privacy.accepted && r.name !== 'consent' && r.name !== 'login') { navigate('#/consent'); return; }
      if (session.token && r.name === 'login') { navigate('#/chats'); return; }
      if (session.token && session.privacy && session.privacy.accepted) {
        connect();
        if (!Object.keys(convs).length) loadConversations().catch(() => {});
      }
    });

    return () => {
      const page = current.value;
      const Page = page.component;
      const showTabs = !!session.token && !page.public && !page.bare && !!page.tab && (session.privacy && session.privacy.accepted);
      return html`<div class=${'shell' + (showTabs ? ' with-tabs' : '')}>
        ${session.token && net.status === 'offline' ? html`<div class="banner" role="status" data-net="offline">${t('net.offline')}</div>` : null}
        ${session.token && net.status === 'connecting' && net.failures > 0 ? html`<div class="banner" role="status" data-net="connecting">${t('net.connecting')}</div>` : null}
        <main class="page" id="main">
          <${Page} key=${route.value.name + '/' + (route.value.id || '')} route=${route.value} />
        </main>
        ${showTabs ? html`<nav class="tabbar" aria-label=${t('nav.main')}>
          ${TABS.map((tab) => html`<a href=${tab.href} class=${'tab' + (page.tab === tab.id ? ' active' : '')}
              aria-current=${page.tab === tab.id ? 'page' : null} data-tab=${tab.id}>
            <span aria-hidden="true">${tab.icon}</span>
            <span>${t('tab.' + tab.id)}</span>
            ${tab.id === 'chats' && unread.value > 0 ? html`<span class="badge" aria-label=${t('unread', { n: unread.value })}>${unread.value}</span>` : null}
          </a>`)}
        </nav>` : null}
        ${toasts.text ? html`<div class="toast" role="alert">${toasts.text}</div>` : null}
      </div>`;
    };
  },
});

createApp(App).mount('#app');
