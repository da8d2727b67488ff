// A bouquet: what it is, the shop's rating and reviews, and the order form (recipient, day,
// slot), paid at once.
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, yuan, errorText, when } from '/assets/lib/i18n.js';
import { api, navigate, toast, attempt } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantOf, ratingLine, pay, photo, tomorrow } from '../shop-common.js';

addMessages({
  'zh-CN': {
    'product.title': '商品详情', 'product.order': '下单', 'product.quantity': '数量', 'product.name': '收花人', 'product.phone': '收花人手机号',
    'product.phone.hint': '例如 +8613812345678', 'product.address': '收花地址', 'product.day': '送达日期', 'product.slot': '送达时段', 'product.note': '留言（选填）',
    'product.submit': '提交订单并支付', 'product.total': '合计 {v}', 'product.reviews': '店铺评价', 'product.no_reviews': '还没有评价', 'product.report': '举报商品',
    'product.reason': '举报原因', 'product.reported': '已提交举报', 'product.sold_out': '已售罄', 'product.reply': '商家回复：{r}',
  },
  'en-US': {
    'product.title': 'Product', 'product.order': 'Order', 'product.quantity': 'Quantity', 'product.name': 'Recipient', 'product.phone': 'Recipient’s phone',
    'product.phone.hint': 'e.g. +8613812345678', 'product.address': 'Delivery address', 'product.day': 'Delivery day', 'product.slot': 'Time of day', 'product.note': 'Note (optional)',
    'product.submit': 'Place the order and pay', 'product.total': 'Total {v}', 'product.reviews': 'Reviews of the shop', 'product.no_reviews': 'No reviews yet', 'product.report': 'Report this product',
    'product.reason': 'Why do you report it?', 'product.reported': 'Reported', 'product.sold_out': 'Sold out', 'product.reply': 'The shop replied: {r}',
  },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const st = reactive({ p: null, reviews: [], error: '', busy: false, formError: '' });
    const form = reactive({ quantity: 1, name: '', phone: '', address: '', deliver_on: tomorrow(), slot: 'afternoon', note: '' });
    onMounted(async () => {
      try {
        st.p = await api.get('/products/' + id);
        const r = await api.get('/merchants/' + st.p.merchant + '/reviews', { limit: 5 });
        st.reviews = r.items;
      } catch (err) {
        st.error = errorText(err);
      }
    });
    async function order(e) {
      e.preventDefault();
      st.busy = true;
      st.formError = '';
      try {
        const o = await api.post('/orders', {
          items: [{ product: id, quantity: Number(form.quantity) }],
          recipient: { name: form.name, phone: form.phone, address: form.address },
          deliver_on: form.deliver_on, slot: form.slot, note: form.note,
        });
        const how = await pay(o.id).catch((err) => { toast(errorText(err)); return null; });
        if (how === 'paid') toast(t('pay.done'));
        else if (how === 'wechat') toast(t('pay.wechat'));
        navigate('#/order/' + o.id);
      } catch (err) {
        st.formError = errorText(err);
      } finally {
        st.busy = false;
      }
    }
    async function report() {
      const reason = window.prompt(t('product.reason'));
      if (!reason || !reason.trim()) return;
      await attempt(async () => { await api.post('/products/' + id + '/report', { reason: reason.trim() }); toast(t('product.reported')); });
    }
    const input = (key, label, attrs = {}) => html`<div>
      <label for=${'order-' + key}>${label}</label>
      <input id=${'order-' + key} value=${form[key]} onInput=${(e) => { form[key] = e.target.value; }} ...${attrs} />
    </div>`;
    return () => {
      const p = st.p;
      const m = p ? merchantOf(p.merchant) : null;
      return html`<section>
        ${header(t('product.title'), '#/shop')}
        ${st.error ? empty(st.error) : null}
        ${p ? html`<article class="card">
          ${photo(p.photos, p.title)}
          <h2>${p.title}</h2>
          <p><strong class="price">${yuan(p.price_fen)}</strong> <span class="muted">${p.stock > 0 ? t('shop.stock', { n: p.stock }) : t('product.sold_out')}</span></p>
          <p>${p.description}</p>
          ${m ? html`<p class="muted">${m.name} · ${ratingLine(m)}</p>` : null}
          <button type="button" class="link small" onClick=${report}>${t('product.report')}</button>
        </article>
        <form class="card" onSubmit=${order} aria-labelledby="order-title">
          <h2 id="order-title">${t('product.order')}</h2>
          ${input('quantity', t('product.quantity'), { type: 'number', min: 1, max: 99, required: true })}
          ${input('name', t('product.name'), { required: true, maxlength: 32, autocomplete: 'name' })}
          ${input('phone', t('product.phone'), { required: true, type: 'tel', autocomplete: 'tel', 'aria-describedby': 'phone-hint' })}
          <p class="hint" id="phone-hint">${t('product.phone.hint')}</p>
          ${input('address', t('product.address'), { required: true, maxlength: 200, autocomplete: 'street-address' })}
          ${input('deliver_on', t('product.day'), { type: 'date', required: true })}
          <label for="order-slot">${t('product.slot')}</label>
          <select id="order-slot" value=${form.slot} onChange=${(e) => { form.slot = e.target.value; }}>
            ${['morning', 'afternoon', 'evening'].map((s) => html`<option value=${s} key=${s}>${t('slot.' + s)}</option>`)}
          </select>
          ${input('note', t('product.note'), { maxlength: 200 })}
          <p class="total">${t('product.total', { v: yuan(p.price_fen * (Number(form.quantity) || 0)) })}</p>
          ${st.formError ? html`<p class="error-text" role="alert">${st.formError}</p>` : null}
          <button type="submit" disabled=${st.busy || p.stock <= 0} data-test="place-order">${t('product.submit')}</button>
        </form>
        <section class="card" aria-labelledby="reviews-title">
          <h2 id="reviews-title">${t('product.reviews')}</h2>
          ${st.reviews.length === 0 ? empty(t('product.no_reviews')) : html`<ul class="plain">${st.reviews.map((r) => html`<li key=${r.id} class="review">
            <p><span aria-label=${r.rating + '/5'}>${'★'.repeat(r.rating)}${'☆'.repeat(5 - r.rating)}</span> <span class="muted small">${when(r.created_at)}</span></p>
            <p>${r.text}</p>
            ${r.reply ? html`<p class="muted">${t('product.reply', { r: r.reply })}</p>` : null}
          </li>`)}</ul>`}
        </section>` : null}
      </section>`;
    };
  },
});
