// One order: what, for whom, where it stands, and what I can do now (pay, cancel, confirm
// receipt, ask for a refund, review).
import { defineComponent, reactive, onMounted } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages, yuan, when, errorText } from '/assets/lib/i18n.js';
import { api, toast } from '../state.js';
import { header, empty } from '../ui.js';
import { merchantName, pay } from '../shop-common.js';

addMessages({
  'zh-CN': {
    'order.title': '订单详情', 'order.state': '状态', 'order.amount': '金额', 'order.recipient': '收花人', 'order.deliver': '送达', 'order.note': '留言',
    'order.pay': '去支付', 'order.cancel': '取消订单', 'order.complete': '确认收货', 'order.refund': '申请退款', 'order.refund.reason': '退款原因',
    'order.review': '评价', 'order.rating': '评分（1-5）', 'order.review.text': '评价内容', 'order.review.photos': '添加照片（最多 9 张）', 'order.review.photo': '照片 {n}', 'order.review.remove': '移除', 'order.review.submit': '提交评价', 'order.reviewed': '感谢你的评价',
    'order.expires': '请在 {t} 前支付', 'order.refund_reason': '退款原因：{r}', 'order.late': '订单取消后才收到付款，已原路退回', 'order.created': '下单时间',
  },
  'en-US': {
    'order.title': 'Order', 'order.state': 'State', 'order.amount': 'Amount', 'order.recipient': 'Recipient', 'order.deliver': 'Delivery', 'order.note': 'Note',
    'order.pay': 'Pay', 'order.cancel': 'Cancel the order', 'order.complete': 'Confirm receipt', 'order.refund': 'Ask for a refund', 'order.refund.reason': 'Reason for the refund',
    'order.review': 'Review', 'order.rating': 'Rating (1-5)', 'order.review.text': 'Your review', 'order.review.photos': 'Add photos (up to 9)', 'order.review.photo': 'Photo {n}', 'order.review.remove': 'Remove', 'order.review.submit': 'Post the review', 'order.reviewed': 'Thank you for your review',
    'order.expires': 'Pay before {t}', 'order.refund_reason': 'Refund reason: {r}', 'order.late': 'Paid after it was cancelled; the money goes back', 'order.created': 'Ordered',
  },
});

export default defineComponent({
  props: ['route'],
  setup(props) {
    const id = props.route.id;
    const st = reactive({ o: null, error: '', busy: false, refund: '', rating: 5, text: '', photos: [], reviewed: false, formError: '' });
    async function load() {
      try { st.o = await api.get('/orders/' + id); } catch (err) { st.error = errorText(err); }
    }
    onMounted(load);
    async function act(fn) {
      st.busy = true;
      st.formError = '';
      try { await fn(); await load(); } catch (err) { st.formError = errorText(err); } finally { st.busy = false; }
    }
    const doPay = () => act(async () => { const how = await pay(id); toast(how === 'paid' ? t('pay.done') : t('pay.wechat')); });
    const cancel = () => act(() => api.post('/orders/' + id + '/cancel', {}));
    const complete = () => act(() => api.post('/orders/' + id + '/complete', {}));
    const refund = (e) => { e.preventDefault(); return act(() => api.post('/orders/' + id + '/refund', { reason: st.refund.trim() })); };
    async function addPhotos(e) {
      const files = [...(e.target.files || [])].slice(0, 9 - st.photos.length);
      st.busy = true;
      try {
        for (const file of files) {
          const form = new FormData();
          form.append('file', file);
          const up = await api.upload('/uploads', form);
          st.photos.push(up.url);
        }
      } catch (err) {
        st.formError = errorText(err);
      } finally {
        st.busy = false;
        e.target.value = '';
      }
    }
    const review = (e) => {
      e.preventDefault();
      return act(async () => {
        await api.post('/orders/' + id + '/review', { rating: Number(st.rating), text: st.text, photos: [...st.photos] });
        st.reviewed = true;
        toast(t('order.reviewed'));
      });
    };
    return () => {
      const o = st.o;
      if (!o) return html`<section>${header(t('order.title'), '#/orders')}${st.error ? empty(st.error) : null}</section>`;
      return html`<section>
        ${header(t('order.title'), '#/orders')}
        <article class="card" data-order-state=${o.state}>
          <h2>${o.item}</h2>
          <dl class="facts">
            <dt>${t('order.state')}</dt><dd data-test="order-state">${t('state.' + o.state)}</dd>
            <dt>${t('order.amount')}</dt><dd>${yuan(o.amount_fen)}</dd>
            <dt>${t('order.created')}</dt><dd>${when(o.created_at)} · ${merchantName(o.merchant)}</dd>
            ${o.recipient_masked ? html`<dt>${t('order.recipient')}</dt><dd>${o.recipient_masked}</dd>` : null}
            ${o.deliver_on ? html`<dt>${t('order.deliver')}</dt><dd>${o.deliver_on} ${o.slot ? t('slot.' + o.slot) : ''}</dd>` : null}
            ${o.note ? html`<dt>${t('order.note')}</dt><dd>${o.note}</dd>` : null}
          </dl>
          <ul class="plain">${o.lines.map((l) => html`<li key=${l.product}>${l.title} × ${l.quantity} · ${yuan(l.price_fen)}</li>`)}</ul>
          ${o.state === 'created' && o.expires_at ? html`<p class="hint">${t('order.expires', { t: when(o.expires_at) })}</p>` : null}
          ${o.refund_reason ? html`<p class="hint">${t('order.refund_reason', { r: o.refund_reason })}</p>` : null}
          ${o.late_payment ? html`<p class="hint">${t('order.late')}</p>` : null}
          ${st.formError ? html`<p class="error-text" role="alert">${st.formError}</p>` : null}
          <div class="row wrap">
            ${o.state === 'created' ? html`<button type="button" onClick=${doPay} disabled=${st.busy} data-test="pay">${t('order.pay')}</button>
              <button type="button" class="secondary" onClick=${cancel} disabled=${st.busy} data-test="cancel">${t('order.cancel')}</button>` : null}
            ${o.state === 'fulfilled' ? html`<button type="button" onClick=${complete} disabled=${st.busy} data-test="complete">${t('order.complete')}</button>` : null}
          </div>
        </article>
        ${o.state === 'paid' || o.state === 'fulfilled' ? html`<form class="card" onSubmit=${refund}>
          <label for="refund-reason">${t('order.refund.reason')}</label>
          <input id="refund-reason" value=${st.refund} required maxlength="200" onInput=${(e) => { st.refund = e.target.value; }} />
          <button type="submit" class="danger" disabled=${st.busy} data-test="refund">${t('order.refund')}</button>
        </form>` : null}
        ${o.state === 'completed' && !st.reviewed ? html`<form class="card" onSubmit=${review} aria-labelledby="review-title">
          <h2 id="review-title">${t('order.review')}</h2>
          <label for="review-rating">${t('order.rating')}</label>
          <input id="review-rating" type="number" min="1" max="5" value=${st.rating} onInput=${(e) => { st.rating = e.target.value; }} />
          <label for="review-text">${t('order.review.text')}</label>
          <textarea id="review-text" maxlength="500" value=${st.text} onInput=${(e) => { st.text = e.target.value; }}></textarea>
          <label for="review-photos">${t('order.review.photos')}</label>
          <input id="review-photos" type="file" multiple accept="image/jpeg,image/png,image/webp" onChange=${addPhotos} disabled=${st.busy || st.photos.length >= 9} />
          ${st.photos.length ? html`<ul class="plain row wrap thumbs">${st.photos.map((url, i) => html`<li key=${url}>
            <img src=${url} alt=${t('order.review.photo', { n: i + 1 })} width="64" height="64" />
            <button type="button" class="link small" onClick=${() => { st.photos.splice(i, 1); }}>${t('order.review.remove')}</button>
          </li>`)}</ul>` : null}
          <button type="submit" disabled=${st.busy} data-test="review">${t('order.review.submit')}</button>
        </form>` : null}
      </section>`;
    };
  },
});
