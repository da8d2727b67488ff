// Locales: zh-CN by default, en-US on request (the seed's two). A page registers its strings
// with `addMessages({ 'zh-CN': {...}, 'en-US': {...} })`; `t('key', {n: 2})` fills `{n}`.
// The choice is kept in localStorage and set on <html lang>; switching re-renders every page
// (the locale is reactive).
import { ref } from './vue.js';

export const LOCALES = ['zh-CN', 'en-US'];
const KEY = 'jbk.locale';
const messages = { 'zh-CN': {}, 'en-US': {} };

function initial() {
  try {
    const saved = localStorage.getItem(KEY);
    if (LOCALES.includes(saved)) return saved;
  } catch (_) { /* storage may be off */ }
  return 'zh-CN';
}

export const locale = ref(initial());
document.documentElement.lang = locale.value;

export function setLocale(next) {
  if (!LOCALES.includes(next)) return;
  locale.value = next;
  document.documentElement.lang = next;
  try { localStorage.setItem(KEY, next); } catch (_) { /* ignore */ }
}

export function addMessages(table) {
  for (const l of LOCALES) Object.assign(messages[l], table[l] || {});
}

export function t(key, params) {
  const text = messages[locale.value][key] ?? messages['zh-CN'][key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ''));
}

/** Money in fen as yuan, e.g. 3980 → "¥39.80". */
export function yuan(fen) {
  return '¥' + (Number(fen) / 100).toFixed(2);
}

/** A time (ms since the epoch) in the current locale, short. */
export function when(ms) {
  if (ms == null) return '';
  const d = new Date(ms);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString(locale.value, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString(locale.value, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

addMessages({
  'zh-CN': {
    'err.network': '网络不可用，请稍后重试', 'err.unauthorized': '登录已过期，请重新登录', 'err.forbidden': '没有权限',
    'err.not_found': '未找到', 'err.rate_limited': '操作太频繁，请稍后再试', 'err.conflict': '状态已变化，请刷新',
    'err.invalid': '输入有误', 'err.banned': '账号已被封禁', 'err.out_of_stock': '库存不足', 'err.unavailable': '服务暂不可用，请稍后重试',
    'err.other': '出错了',
  },
  'en-US': {
    'err.network': 'Network unavailable, try again later', 'err.unauthorized': 'Session expired, please log in again', 'err.forbidden': 'Not allowed',
    'err.not_found': 'Not found', 'err.rate_limited': 'Too many requests, slow down', 'err.conflict': 'It changed meanwhile; refresh',
    'err.invalid': 'Please check your input', 'err.banned': 'This account is banned', 'err.out_of_stock': 'Out of stock', 'err.unavailable': 'Service unavailable, try again later',
    'err.other': 'Something went wrong',
  },
});

/** A user-facing sentence for an ApiError (or any error). */
export function errorText(err) {
  const code = err && err.code;
  const key = 'err.' + code;
  if (code && (messages[locale.value][key] || messages['zh-CN'][key])) {
    if (code === 'invalid' && err.fields && err.fields.length) {
      return t(key) + ': ' + err.fields.map((f) => f.field + ' ' + f.problem).join('; ');
    }
    return t(key);
  }
  return t('err.other') + (err && err.message ? ': ' + err.message : '');
}
