// One claim of a farm animal: its state and time, the farm's updates (live while I watch), renew.
import { defineComponent, reactive, onMounted, computed } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, when, errorText } from '/assets/lib/i18n.js';
import { api, claimUpdates, toast } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantName, pay, photo } from '../shop-common.js';

addMessages({
  'zh-CN': { 'claim.title': '我的认领', 'claim.updates': '牧场动态', 'claim.no_updates': '还没有动态', 'claim.renew': '续期一期', 'claim.ends': '到期 {t}',
    'claim.animal': '动物', 'claim.order': '查看订单' },
  'en-US': { 'claim.title': 'My claim', 'claim.updates': 'News from the farm', 'claim.no_updates': 'No news yet', 'claim.renew': 'Renew one period', 'claim.ends': 'ends {t}',
    'claim.animal': 'Animal', 'claim.order': 'See the order' },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const st = reactive({ c: null, animal: null, updates: [], error: '', busy: false });
    const all = computed(() => {
      const live = claimUpdates[id] || [];
      const seen = new Set(st.updates.map((u) => u.id));
      return [...live.filter((u) => !seen.has(u.id)), ...st.updates];
    });
    async function load() {
      try {
        st.c = await api.get('/claims/' + id);
        st.animal = await api.get('/animals/' + st.c.animal).catch(() => null);
        st.updates = (await api.get('/claims/' + id + '/updates', { limit: 50 })).items;
      } catch (err) {
        st.error = errorText(err);
      }
    }
    onMounted(load);
    async function renew() {
      st.busy = true;
      try {
        const o = await api.post('/claims/' + id + '/renew', { periods: 1 });
        const how = await pay(o.id);
        toast(how === 'paid' ? t('pay.done') : t('pay.wechat'));
        await load();
      } catch (err) {
        toast(errorText(err));
      } finally {
        st.busy = false;
      }
    }
    return () => {
      const c = st.c;
      return html`<section>
        ${header(t('claim.title'), '#/orders/claims')}
        ${st.error ? empty(st.error) : null}
        ${c ? html`<article class="card" data-claim-state=${c.state}>
          ${st.animal ? photo(st.animal.photos, st.animal.name) : null}
          <h2>${st.animal ? st.animal.name + ' · ' + st.animal.species : t('claim.animal') + ' #' + c.animal}</h2>
          <p><span class="chip">${t('claim.' + c.state)}</span> ${c.ends_at ? t('claim.ends', { t: when(c.ends_at) }) : ''}</p>
          <p class="muted">${merchantName(c.merchant)}</p>
          <div class="row wrap">
            <a class="button secondary" href=${'#/order/' + c.order}>${t('claim.order')}</a>
            ${c.state === 'active' ? html`<button type="button" onClick=${renew} disabled=${st.busy}>${t('claim.renew')}</button>` : null}
          </div>
        </article>
        <section class="card" aria-labelledby="updates-title">
          <h2 id="updates-title">${t('claim.updates')}</h2>
          ${all.value.length === 0 ? empty(t('claim.no_updates')) : html`<ul class="plain" aria-live="polite">${all.value.map((u) => html`<li key=${u.id} class="update" data-update=${u.id}>
            <p class="muted small">${when(u.created_at)}</p>
            <p>${u.text}</p>
            ${u.photos.length ? html`<img class="photo" src=${u.photos[0]} alt="" loading="lazy" />` : null}
          </li>`)}</ul>`}
        </section>` : null}
      </section>`;
    };
  },
});
