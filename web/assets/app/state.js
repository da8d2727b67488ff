// The app's state shared by its pages: the session (token, me, privacy), the REST client, the
// socket client, the conversations and their messages, people's names, toasts and the route.
import { reactive, ref } from '/assets/lib/vue.js';
import { createApi } from '/assets/lib/api.js';
import { JbkClient } from '/assets/lib/client.js';
import { errorText, t, addMessages } from '/assets/lib/i18n.js';

addMessages({
  'zh-CN': { 'claim.news': '牧场动态：{text}' },
  'en-US': { 'claim.news': 'News from the farm: {text}' },
});

const SESSION_KEY = 'jbk.session';

export const session = reactive({ token: null, expiresAt: 0, me: null, privacy: null });
export const net = reactive({ status: 'idle', failures: 0 });
export const toasts = reactive({ text: '', timer: null });
export const route = ref(parse(location.hash));

export const api = createApi({ token: () => session.token, onUnauthorized: () => logout() });

/** Conversations by id: {id, kind, title, members, last_seq, read_seq}. */
export const convs = reactive({});
/** Messages by conversation: Map seq → message, kept sorted when read via `messagesOf`. */
export const messages = reactive({});
/** Public profiles by user id (nickname, avatar). */
export const people = reactive({});
/** Presence by user id: {online, last_seen}. */
export const presence = reactive({});
/** Who is typing where: conv → {user: until_ms}. */
export const typing = reactive({});
/** Unacked sends, for display ({conv, cmid, text, ts}); and the ones the server refused. */
export const outbox = reactive({ pending: [], failed: [] });
/** Match proposals seen (by match id) and my waiting request. */
export const matching = reactive({ waiting: null, proposals: [], expired: null });
/** Live claim updates by claim id. */
export const claimUpdates = reactive({});

export let client = null;

export function toast(text) {
  toasts.text = text;
  clearTimeout(toasts.timer);
  toasts.timer = setTimeout(() => { toasts.text = ''; }, 4000);
}

/** Runs an async action; shows its error as a toast instead of letting it escape. */
export async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    toast(errorText(e));
    return undefined;
  }
}

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
  else route.value = parse(hash);
}

window.addEventListener('hashchange', () => { route.value = parse(location.hash); });

function parse(hash) {
  const parts = (hash || '').replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'chats', id: parts[1] || null, sub: parts[2] || null };
}

// ---- session ----

export function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    if (saved && saved.token && saved.expiresAt > Date.now() + 60000) Object.assign(session, saved);
  } catch (_) { /* ignore */ }
}

function persist() {
  try {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ token: session.token, expiresAt: session.expiresAt, me: session.me, privacy: session.privacy }));
  } catch (_) { /* ignore */ }
}

export function loggedIn(answer) {
  session.token = answer.token;
  session.expiresAt = answer.expires_at;
  session.me = answer.user;
  session.privacy = answer.privacy;
  persist();
}

export function setMe(me) {
  session.me = me;
  people[me.id] = me;
  persist();
}

export function setPrivacy(p) {
  session.privacy = p;
  persist();
}

// Logs out for real: the server ends this session (its token stops working and its sockets
// close with 4005), then the page forgets it (offline too: the token then ends with its time).
export async function signOut() {
  if (session.token) {
    try { await api.post('/auth/logout'); } catch (_) { /* forgotten below all the same */ }
  }
  logout();
}

export function logout() {
  if (client) { client.stop(); client = null; }
  session.token = null;
  session.me = null;
  session.privacy = null;
  for (const k of Object.keys(convs)) delete convs[k];
  for (const k of Object.keys(messages)) delete messages[k];
  try { localStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
  navigate('#/login');
}

// ---- the socket ----

export function connect() {
  if (client || !session.token || !session.me) return;
  const c = new JbkClient({ token: () => session.token, user: session.me.id });
  client = c;
  outbox.pending = [...c.pending];
  c.addEventListener('status', (e) => {
    net.status = e.detail.status;
    net.failures = e.detail.failures;
    if (e.detail.status === 'closed') {
      toast(e.detail.code === 'banned' ? errorText({ code: 'banned' }) : errorText({ code: 'unauthorized' }));
      logout();
    } else if (e.detail.status === 'offline' && e.detail.failures >= 3 && e.detail.failures % 3 === 0) {
      // Upgrades keep failing: an expired token answers 401 (REST then logs out).
      api.get('/me').catch(() => {});
    }
  });
  c.addEventListener('hello', () => {
    loadConversations().catch(() => {});
    // A waiting match request is withdrawn when I go offline: ask again after a reconnect.
    if (matching.waiting && matching.waiting.request) {
      c.request(matching.waiting.request).then((r) => {
        if (!r.matched && matching.waiting) matching.waiting = { ...matching.waiting, expires_at: r.expires_at };
      }).catch(() => {});
    }
  });
  c.addEventListener('message', (e) => addMessage(e.detail));
  c.addEventListener('pending', (e) => { outbox.pending = [...e.detail]; });
  c.addEventListener('send_failed', (e) => { outbox.failed.push(e.detail); toast(errorText(e.detail)); });
  c.addEventListener('read', (e) => {
    const f = e.detail;
    const conv = convs[f.conv];
    if (!conv) return;
    if (f.user === session.me.id) conv.read_seq = Math.max(conv.read_seq, f.seq);
    else conv.reads = { ...(conv.reads || {}), [f.user]: Math.max(f.seq, (conv.reads || {})[f.user] || 0) };
  });
  c.addEventListener('typing', (e) => {
    const f = e.detail;
    typing[f.conv] = { ...(typing[f.conv] || {}), [f.user]: Date.now() + 4000 };
  });
  c.addEventListener('presence', (e) => {
    presence[e.detail.user] = { online: e.detail.online, last_seen: e.detail.last_seen };
  });
  c.addEventListener('recalled', (e) => tombstone(e.detail, 'recalled'));
  c.addEventListener('deleted', (e) => tombstone(e.detail, 'deleted'));
  c.addEventListener('frame', (e) => onFrame(e.detail));
  window.addEventListener('online', () => c.retryNow());
  c.start();
}

function onFrame(f) {
  if (f.type === 'match_proposal') {
    if (!matching.proposals.some((p) => p.match === f.match)) matching.proposals.unshift(f);
    matching.waiting = null;
    learn([f.peer]);
    loadConversations().catch(() => {});
  } else if (f.type === 'match_expired') {
    matching.waiting = null;
    matching.expired = f;
  } else if (f.type === 'claim_update') {
    const list = claimUpdates[f.claim] || [];
    if (!list.some((u) => u.id === f.update.id)) claimUpdates[f.claim] = [f.update, ...list];
    if (!(route.value.name === 'claim' && route.value.id === f.claim)) toast(t('claim.news', { text: f.update.text }));
  }
}

function tombstone(f, kind) {
  const m = messages[f.conv] && messages[f.conv][f.seq];
  if (m) messages[f.conv][f.seq] = { ...m, body: { kind } };
}

export function addMessage(m) {
  const conv = String(m.conv);
  if (!messages[conv]) messages[conv] = {};
  messages[conv][m.seq] = m;
  const c = convs[conv];
  if (c) {
    c.last_seq = Math.max(c.last_seq, m.seq);
    c.last_ts = m.ts;
    if (String(m.from) === session.me.id) c.read_seq = Math.max(c.read_seq, m.seq);
  } else {
    loadConversations().catch(() => {});
  }
  if (m.from) learn([m.from]);
  if (typing[conv] && typing[conv][m.from]) typing[conv] = { ...typing[conv], [m.from]: 0 };
}

/** Messages of a conversation, oldest first. */
export function messagesOf(conv) {
  const all = messages[conv] || {};
  return Object.keys(all).map(Number).sort((a, b) => a - b).map((s) => all[s]);
}

let loading = null;
export function loadConversations() {
  if (loading) return loading;
  loading = (async () => {
    try {
      let cursor = null;
      const seen = new Set();
      do {
        const page = await api.get('/conversations', { limit: 100, cursor });
        for (const it of page.items) {
          seen.add(it.id);
          const old = convs[it.id];
          convs[it.id] = { ...(old || {}), ...it, floor: old && old.floor !== undefined ? old.floor : it.last_seq,
            last_seq: Math.max(it.last_seq, old ? old.last_seq : 0),
            read_seq: Math.max(it.read_seq, old ? old.read_seq : 0) };
          if (client) client.track(it.id, client.lastSeq(it.id) ?? it.last_seq);
          learn(it.members);
        }
        cursor = page.next_cursor;
      } while (cursor);
      for (const k of Object.keys(convs)) if (!seen.has(k)) delete convs[k];
      // The list shows each conversation's last message: fetch it where none is loaded yet.
      const bare = Object.values(convs).filter((c) => c.last_seq > 0 && !(messages[c.id] && messages[c.id][c.last_seq])).slice(0, 30);
      await Promise.all(bare.map((c) => loadHistory(c.id, c.last_seq, 1).catch(() => {})));
    } finally {
      loading = null;
    }
  })();
  return loading;
}

/** Loads the messages before what the socket delivers (the last `n` up to `upTo`). */
export async function loadHistory(conv, upTo, n = 30) {
  const after = Math.max(0, upTo - n);
  if (upTo <= 0) return;
  const page = await api.get('/conversations/' + conv + '/messages', { after, limit: Math.min(n, 100) });
  if (!messages[conv]) messages[conv] = {};
  for (const m of page.messages) {
    if (!messages[conv][m.seq]) messages[conv][m.seq] = m;
    learn([m.from]);
    const c = convs[conv];
    if (c && m.seq >= c.last_seq) c.last_ts = m.ts;
  }
}

const asked = new Set();
/** Fetches the public profiles of users not known yet (names in chats). */
export function learn(ids) {
  for (const id of ids || []) {
    const key = String(id);
    if (!key || people[key] || asked.has(key)) continue;
    asked.add(key);
    if (session.me && key === session.me.id) { people[key] = session.me; continue; }
    api.get('/users/' + key).then((p) => { people[key] = p; }).catch(() => { asked.delete(key); });
  }
}

export function nameOf(id) {
  const p = people[String(id)];
  return p ? p.nickname : '#' + id;
}

export function convTitle(c) {
  if (!c) return '';
  if (c.kind === 'group') return c.title || '';
  const other = (c.members || []).find((m) => m !== (session.me && session.me.id));
  return other ? nameOf(other) : '';
}

export function otherMember(c) {
  return c && c.kind === 'direct' ? (c.members || []).find((m) => m !== session.me.id) : null;
}
