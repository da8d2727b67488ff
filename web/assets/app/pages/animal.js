// A farm animal: its story, price per period, places left, and claiming it (paid at once).
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, yuan, errorText } from '/assets/lib/i18n.js';
import { api, navigate, toast } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantOf, ratingLine, pay, photo } from '../shop-common.js';

addMessages({
  'zh-CN': { 'animal.title': '认领动物', 'animal.periods': '认领几期', 'animal.claim': '认领并支付', 'animal.full': '名额已满',
    'animal.total': '合计 {v}，共 {d} 天' },
  'en-US': { 'animal.title': 'Claim an animal', 'animal.periods': 'How many periods', 'animal.claim': 'Claim and pay', 'animal.full': 'No places left',
    'animal.total': 'Total {v} for {d} days' },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const st = reactive({ a: null, error: '', periods: 1, busy: false, formError: '' });
    onMounted(async () => {
      try { st.a = await api.get('/animals/' + id); } catch (err) { st.error = errorText(err); }
    });
    async function claim(e) {
      e.preventDefault();
      st.busy = true;
      st.formError = '';
      try {
        const placed = await api.post('/animals/' + id + '/claims', { periods: Number(st.periods) });
        const how = await pay(placed.order.id).catch((err) => { toast(errorText(err)); return null; });
        if (how === 'paid') toast(t('pay.done'));
        else if (how === 'wechat') toast(t('pay.wechat'));
        navigate('#/claim/' + placed.claim.id);
      } catch (err) {
        st.formError = errorText(err);
      } finally {
        st.busy = false;
      }
    }
    return () => {
      const a = st.a;
      const m = a ? merchantOf(a.merchant) : null;
      const n = Number(st.periods) || 0;
      return html`<section>
        ${header(t('animal.title'), '#/shop/animals')}
        ${st.error ? empty(st.error) : null}
        ${a ? html`<article class="card">
          ${photo(a.photos, a.name)}
          <h2>${a.name} · ${a.species}</h2>
          <p><strong class="price">${yuan(a.price_fen)}</strong> <span class="muted">${t('shop.period', { d: a.period_days })} · ${t('shop.slots', { n: a.slots_free })}</span></p>
          <p>${a.story}</p>
          ${m ? html`<p class="muted">${m.name} · ${ratingLine(m)}</p>` : null}
        </article>
        <form class="card" onSubmit=${claim}>
          <label for="claim-periods">${t('animal.periods')}</label>
          <input id="claim-periods" type="number" min="1" max="12" value=${st.periods} onInput=${(e) => { st.periods = e.target.value; }} />
          <p class="total">${t('animal.total', { v: yuan(a.price_fen * n), d: a.period_days * n })}</p>
          ${st.formError ? html`<p class="error-text" role="alert">${st.formError}</p>` : null}
          <button type="submit" disabled=${st.busy || a.slots_free <= 0} data-test="claim">${a.slots_free > 0 ? t('animal.claim') : t('animal.full')}</button>
        </form>` : null}
      </section>`;
    };
  },
});
