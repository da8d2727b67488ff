// What the shop's pages share: merchants' names, paying an order, order states' labels.
import { reactive } from '/assets/lib/vue.js';
import { html } from '/assets/lib/html.js';
import { t, addMessages } from '/assets/lib/i18n.js';
import { api } from './state.js';

addMessages({
  'zh-CN': {
    'state.created': '待支付', 'state.paid': '已支付，待发货', 'state.fulfilled': '已发货', 'state.completed': '已完成', 'state.cancelled': '已取消',
    'state.refunding': '退款中', 'state.refunded': '已退款', 'state.expired': '已过期',
    'claim.pending': '待支付', 'claim.active': '认领中', 'claim.ended': '已结束', 'claim.cancelled': '已取消', 'claim.refunded': '已退款',
    'slot.morning': '上午', 'slot.afternoon': '下午', 'slot.evening': '晚上',
    'pay.wechat': '请在结伴客小程序中完成支付', 'pay.local': '开发环境：模拟支付', 'pay.done': '支付成功',
    'kind.flower': '鲜花', 'kind.claim': '认领', 'rating': '评分 {r}（{n} 条评价）', 'rating.none': '暂无评分',
  },
  'en-US': {
    'state.created': 'To pay', 'state.paid': 'Paid, to be delivered', 'state.fulfilled': 'Delivered', 'state.completed': 'Completed', 'state.cancelled': 'Cancelled',
    'state.refunding': 'Refund requested', 'state.refunded': 'Refunded', 'state.expired': 'Expired',
    'claim.pending': 'To pay', 'claim.active': 'Active', 'claim.ended': 'Ended', 'claim.cancelled': 'Cancelled', 'claim.refunded': 'Refunded',
    'slot.morning': 'morning', 'slot.afternoon': 'afternoon', 'slot.evening': 'evening',
    'pay.wechat': 'Pay in the Jiebanke mini-program', 'pay.local': 'Development: simulated payment', 'pay.done': 'Paid',
    'kind.flower': 'Flowers', 'kind.claim': 'Claim', 'rating': 'Rated {r} ({n} reviews)', 'rating.none': 'No rating yet',
  },
});

export const merchants = reactive({});
const asked = new Set();

export function merchantOf(id) {
  if (!id) return null;
  if (!merchants[id] && !asked.has(id)) {
    asked.add(id);
    api.get('/merchants/' + id).then((m) => { merchants[id] = m; }).catch(() => { asked.delete(id); });
  }
  return merchants[id] || null;
}

export const animals = reactive({});
const askedAnimals = new Set();

/** An animal's public view (name, species), fetched once. */
export function animalOf(id) {
  if (!id) return null;
  if (!animals[id] && !askedAnimals.has(id)) {
    askedAnimals.add(id);
    api.get('/animals/' + id).then((a) => { animals[id] = a; }).catch(() => { askedAnimals.delete(id); });
  }
  return animals[id] || null;
}

export function merchantName(id) {
  const m = merchantOf(id);
  return m ? m.name : '';
}

export function ratingLine(m) {
  if (!m) return '';
  return m.rating == null ? t('rating.none') : t('rating', { r: Number(m.rating).toFixed(1), n: m.reviews });
}

/** Pays an order: the local provider (development) confirms at once, as WeChat Pay's callback would. */
export async function pay(orderId) {
  const answer = await api.post('/orders/' + orderId + '/pay', {});
  if (answer.provider === 'local' && answer.payment) {
    await api.post('/payments/local/' + encodeURIComponent(answer.payment) + '/confirm', {});
    return 'paid';
  }
  return 'wechat';
}

export function photo(list, alt) {
  return list && list.length
    ? html`<img class="photo" src=${list[0]} alt=${alt} loading="lazy" />`
    : html`<span class="photo placeholder" aria-hidden="true">🌸</span>`;
}

export function tomorrow() {
  return new Date(Date.now() + 86400000).toISOString().slice(0, 10);
}
