// My orders (flowers and claims' payments) and my claims.
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, yuan, when } from '/assets/lib/i18n.js';
import { api, attempt } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantName, animalOf } from '../shop-common.js';

addMessages({
  'zh-CN': { 'orders.title': '我的订单', 'orders.orders': '订单', 'orders.claims': '认领', 'orders.empty': '还没有订单', 'claims.empty': '还没有认领',
    'claims.until': '至 {t}' },
  'en-US': { 'orders.title': 'My orders', 'orders.orders': 'Orders', 'orders.claims': 'Claims', 'orders.empty': 'No orders yet', 'claims.empty': 'No claims yet',
    'claims.until': 'until {t}' },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const st = reactive({ tab: props.route.id === 'claims' ? 'claims' : 'orders', orders: [], claims: [], cursor: null, loaded: false });
    async function load(more) {
      if (!more) st.loaded = false;
      const key = st.tab === 'claims' ? 'claims' : 'orders';
      const page = await attempt(() => api.get('/' + key, { limit: 20, cursor: more ? st.cursor : null }));
      if (!page) return;
      st[key] = more ? [...st[key], ...page.items] : page.items;
      st.cursor = page.next_cursor;
      st.loaded = true;
    }
    onMounted(() => load(false));
    function switchTo(tab) { if (st.tab !== tab) { st.tab = tab; st.cursor = null; load(false); } }
    return () => html`<section>
      ${header(t('orders.title'), '#/me')}
      <div class="tabs" role="tablist" aria-label=${t('orders.title')}>
        ${['orders', 'claims'].map((tab) => html`<button type="button" role="tab" key=${tab} aria-selected=${st.tab === tab ? 'true' : 'false'}
          class=${st.tab === tab ? 'tab-on' : 'tab-off'} onClick=${() => switchTo(tab)}>${t('orders.' + tab)}</button>`)}
      </div>
      ${st.tab === 'orders' ? (st.loaded && !st.orders.length ? empty(t('orders.empty')) : html`<ul class="plain list">
        ${st.orders.map((o) => html`<li key=${o.id}><a class="item" href=${'#/order/' + o.id} data-order=${o.id} data-state=${o.state}>
          <span class="item-main"><span class="item-title">${o.item}</span>
            <span class="item-sub">${merchantName(o.merchant)} · ${when(o.created_at)}</span></span>
          <span class="item-side"><strong>${yuan(o.amount_fen)}</strong><span class="chip">${t('state.' + o.state)}</span></span>
        </a></li>`)}
      </ul>`) : (st.loaded && !st.claims.length ? empty(t('claims.empty')) : html`<ul class="plain list">
        ${st.claims.map((c) => html`<li key=${c.id}><a class="item" href=${'#/claim/' + c.id} data-claim=${c.id}>
          <span class="item-main"><span class="item-title">${animalOf(c.animal) ? animalOf(c.animal).name + ' · ' + animalOf(c.animal).species : '#' + c.animal}</span>
            <span class="item-sub">${merchantName(c.merchant)} · ${c.ends_at ? t('claims.until', { t: when(c.ends_at) }) : when(c.created_at)}</span></span>
          <span class="item-side"><span class="chip">${t('claim.' + c.state)}</span></span>
        </a></li>`)}
      </ul>`)}
      ${st.cursor ? html`<p class="center"><button type="button" class="secondary" onClick=${() => load(true)}>${t('shop.more')}</button></p>` : null}
    </section>`;
  },
});
