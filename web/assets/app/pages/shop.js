// The shop: flowers (search) and farm animals to claim.
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, yuan } from '/assets/lib/i18n.js';
import { api, attempt } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantName, photo } from '../shop-common.js';

addMessages({
  'zh-CN': { 'shop.title': '商城', 'shop.flowers': '鲜花', 'shop.animals': '动物认领', 'shop.search': '搜索鲜花', 'shop.go': '搜索',
    'shop.empty': '暂时没有商品', 'shop.stock': '库存 {n}', 'shop.slots': '剩余 {n} 个名额', 'shop.period': '{d} 天 / 期', 'shop.more': '加载更多',
    'shop.orders': '我的订单' },
  'en-US': { 'shop.title': 'Shop', 'shop.flowers': 'Flowers', 'shop.animals': 'Farm animals', 'shop.search': 'Search flowers', 'shop.go': 'Search',
    'shop.empty': 'Nothing here yet', 'shop.stock': '{n} in stock', 'shop.slots': '{n} places left', 'shop.period': '{d} days per period', 'shop.more': 'Load more',
    'shop.orders': 'My orders' },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const st = reactive({ tab: props.route.id === 'animals' ? 'animals' : 'flowers', q: '', items: [], cursor: null, loaded: false });
    async function load(more) {
      const path = st.tab === 'animals' ? '/animals' : '/products';
      const query = { limit: 20, cursor: more ? st.cursor : null };
      if (st.tab === 'flowers' && st.q.trim()) query.q = st.q.trim();
      const page = await attempt(() => api.get(path, query));
      if (!page) return;
      st.items = more ? [...st.items, ...page.items] : page.items;
      st.cursor = page.next_cursor;
      st.loaded = true;
    }
    onMounted(() => load(false));
    function switchTo(tab) {
      if (st.tab === tab) return;
      st.tab = tab;
      st.items = [];
      st.loaded = false;
      load(false);
    }
    return () => html`<section>
      ${header(t('shop.title'), null, html`<a class="button secondary small" href="#/orders">${t('shop.orders')}</a>`)}
      <div class="tabs" role="tablist" aria-label=${t('shop.title')}>
        ${['flowers', 'animals'].map((tab) => html`<button type="button" role="tab" key=${tab} id=${'tab-' + tab}
          aria-selected=${st.tab === tab ? 'true' : 'false'} class=${st.tab === tab ? 'tab-on' : 'tab-off'} onClick=${() => switchTo(tab)}>${t('shop.' + tab)}</button>`)}
      </div>
      ${st.tab === 'flowers' ? html`<form class="search row" role="search" onSubmit=${(e) => { e.preventDefault(); load(false); }}>
        <label for="shop-q" class="sr-only">${t('shop.search')}</label>
        <input id="shop-q" type="search" placeholder=${t('shop.search')} value=${st.q} onInput=${(e) => { st.q = e.target.value; }} />
        <button type="submit">${t('shop.go')}</button>
      </form>` : null}
      ${st.loaded && !st.items.length ? empty(t('shop.empty')) : null}
      <ul class="plain grid">
        ${st.items.map((it) => st.tab === 'animals'
          ? html`<li key=${'a' + it.id}><a class="tile" href=${'#/animal/' + it.id} data-animal=${it.id}>
              ${photo(it.photos, '')}
              <span class="tile-title">${it.name} · ${it.species}</span>
              <span class="muted small">${merchantName(it.merchant)}</span>
              <span class="row"><strong>${yuan(it.price_fen)}</strong><span class="muted small">${t('shop.period', { d: it.period_days })}</span></span>
              <span class="muted small">${t('shop.slots', { n: it.slots_free })}</span>
            </a></li>`
          : html`<li key=${'p' + it.id}><a class="tile" href=${'#/product/' + it.id} data-product=${it.id}>
              ${photo(it.photos, '')}
              <span class="tile-title">${it.title}</span>
              <span class="muted small">${merchantName(it.merchant)}</span>
              <span class="row"><strong>${yuan(it.price_fen)}</strong><span class="muted small">${t('shop.stock', { n: it.stock })}</span></span>
            </a></li>`)}
      </ul>
      ${st.cursor ? html`<p class="center"><button type="button" class="secondary" onClick=${() => load(true)}>${t('shop.more')}</button></p>` : null}
    </section>`;
  },
});
