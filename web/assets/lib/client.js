// The socket protocol (docs/protocol.md §3) for every page and console: connect, hello,
// heartbeat, reconnect with backoff, send with a cmid (kept until acked, also across reloads),
// requests with ids, and per-conversation seq tracking so that messages come out once each, in
// seq order, whatever the network did (sync after every reconnect, on a gap and on `resync`).
//
//   const client = new JbkClient({ token: () => tok, user: '1' });
//   client.addEventListener('message', (e) => show(e.detail));   // every message once, in order
//   client.track('3', 17);                                         // I have everything up to 17
//   client.start();
//   client.send('3', 'hello');                                     // pending until acked
//
// Events (CustomEvent, frame or object in `detail`): `status` ({status, code}), `hello`,
// `message` (a Message, also my own once acked, also tombstones from history), `ack`
// ({conv, cmid, seq, ts}), `pending` (the pending list changed), `send_failed` ({cmid, code}),
// `read`, `typing`, `presence`, `recalled` ({conv, seq}), `deleted` ({conv, seq}), and `frame`
// for every frame (match_*, claim_update, order_alert, merchant_review...).

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30000;
const PONG_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;
const SYNC_PAGE = 100;
const GAP_WAIT_MS = 300;

export class SocketError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

export class JbkClient extends EventTarget {
  /**
   * @param {object} o
   * @param {() => string|null} o.token the bearer token
   * @param {string} o.user my user id (the pending sends are stored per user)
   * @param {string} [o.url] the socket's URL (default: this origin's /ws)
   * @param {Storage} [o.storage] where unacked sends survive a reload (default localStorage)
   */
  constructor({ token, user, url, storage }) {
    super();
    this.token = token;
    this.user = String(user);
    this.url = url || ((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    this.storage = storage === undefined ? safeStorage() : storage;
    this.status = 'idle';
    this.ws = null;
    this.attempt = 0;
    this.failures = 0;
    this.timer = null;
    this.heartbeat = null;
    this.pongTimer = null;
    this.counter = 0;
    this.inflight = new Map();
    this.seqs = new Map();
    this.ahead = new Map();
    this.gapTimers = new Map();
    this.syncing = new Map();
    this.watched = new Set();
    this.pending = this.loadPending();
    this.stopped = true;
  }

  // ---- lifecycle ----

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.clearHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000); } catch (_) { /* already closed */ }
    }
    this.failAll(new SocketError('closed', 'client stopped'));
    this.setStatus('idle');
  }

  setStatus(status, code) {
    this.status = status;
    this.emit('status', { status, code, failures: this.failures });
  }

  connect() {
    if (this.stopped) return;
    const tok = this.token();
    if (!tok) { this.setStatus('idle'); return; }
    this.setStatus('connecting');
    let ws;
    try {
      // The token goes as a second offered protocol, never in the URL (proxies log URLs);
      // the server selects jbk.v1.json and never echoes it.
      ws = new WebSocket(this.url, ['jbk.v1.json', 'jbk.auth.' + tok]);
    } catch (_) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (_) { return; }
      if (frame && frame.type === 'hello') greeted = true;
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearHeartbeat();
      this.failAll(new SocketError('disconnected', 'connection closed'));
      if (!greeted) this.failures += 1;
      // Banned, erased, or this session logged out (here or on another device): never again
      // with this token.
      if (ev.code === 4003 || ev.code === 4004 || ev.code === 4005) {
        this.stopped = true;
        this.setStatus('closed', { 4003: 'banned', 4004: 'account_erased', 4005: 'logged_out' }[ev.code]);
        return;
      }
      let wait;
      const m = /reconnect_after_ms=(\d+)/.exec(ev.reason || '');
      if (ev.code === 1012 && m) wait = Number(m[1]);
      this.scheduleReconnect(wait);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  scheduleReconnect(waitMs) {
    if (this.stopped) return;
    this.setStatus('offline');
    const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.attempt);
    const wait = waitMs ?? Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  /** Reconnect now (e.g. the browser says it is back online). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  clearHeartbeat() {
    clearInterval(this.heartbeat);
    clearTimeout(this.pongTimer);
    this.heartbeat = null;
    this.pongTimer = null;
  }

  startHeartbeat(periodMs) {
    this.clearHeartbeat();
    this.heartbeat = setInterval(() => {
      if (!this.ws || this.pongTimer) return;
      const id = this.nextId();
      this.pongTimer = setTimeout(() => {
        // No pong: the link is dead even if the browser has not noticed.
        const ws = this.ws;
        if (ws) { try { ws.close(4000, 'pong_timeout'); } catch (_) { /* closed */ } ws.onclose({ code: 4000, reason: '' }); }
      }, PONG_TIMEOUT_MS);
      this.rawSend({ type: 'ping', id });
    }, Math.max(1000, Math.min(periodMs || 25000, 25000)));
  }

  // ---- frames in ----

  onFrame(f) {
    if (!f || typeof f.type !== 'string') return;
    switch (f.type) {
      case 'hello':
        this.attempt = 0;
        this.failures = 0;
        this.hello = f;
        this.startHeartbeat(f.heartbeat_ms);
        this.setStatus('online');
        this.emit('hello', f);
        this.afterConnect();
        break;
      case 'pong':
        clearTimeout(this.pongTimer);
        this.pongTimer = null;
        break;
      case 'msg':
        this.accept(strip(f));
        break;
      case 'ack':
        this.onAck(f);
        break;
      case 'history':
        this.onHistory(f);
        break;
      case 'read': this.emit('read', f); break;
      case 'typing': this.emit('typing', f); break;
      case 'presence': this.emit('presence', f); break;
      case 'msg_recalled': this.emit('recalled', f); break;
      case 'msg_deleted': this.emit('deleted', f); break;
      case 'resync': this.afterConnect(); break;
      case 'error': this.onError(f); break;
      default: break;
    }
    if (f.id !== undefined && f.id !== null && f.type !== 'ack' && f.type !== 'error' && f.type !== 'history') {
      this.settle(f.id, f, null);
    }
    this.emit('frame', f);
  }

  afterConnect() {
    for (const conv of this.seqs.keys()) this.sync(conv);
    if (this.watched.size) this.rawSend({ type: 'presence_subscribe', users: [...this.watched].slice(0, 500) });
    for (const p of this.pending) this.transmit(p);
  }

  // ---- conversations and seqs ----

  /** I have every message of `conv` up to `seq`; deliver from there on (never lowers it). */
  track(conv, seq) {
    conv = String(conv);
    const cur = this.seqs.get(conv);
    if (cur === undefined || seq > cur) {
      this.seqs.set(conv, Math.max(0, seq | 0));
      if (this.status === 'online') this.sync(conv);
    }
  }

  lastSeq(conv) {
    return this.seqs.get(String(conv));
  }

  accept(m) {
    const conv = String(m.conv);
    let last = this.seqs.get(conv);
    if (last === undefined) {
      // A conversation I was not tracking (new to me): start from this message.
      last = m.seq - 1;
      this.seqs.set(conv, last);
    }
    if (m.seq <= last) return;
    if (m.seq > last + 1) {
      let buf = this.ahead.get(conv);
      if (!buf) { buf = new Map(); this.ahead.set(conv, buf); }
      buf.set(m.seq, m);
      if (!this.gapTimers.has(conv)) {
        this.gapTimers.set(conv, setTimeout(() => { this.gapTimers.delete(conv); this.sync(conv); }, GAP_WAIT_MS));
      }
      return;
    }
    this.deliver(conv, m);
    const buf = this.ahead.get(conv);
    if (buf) {
      let next = m.seq + 1;
      while (buf.has(next)) {
        const n = buf.get(next);
        buf.delete(next);
        this.deliver(conv, n);
        next += 1;
      }
      for (const s of buf.keys()) if (s < next) buf.delete(s);
      if (!buf.size) this.ahead.delete(conv);
    }
  }

  deliver(conv, m) {
    this.seqs.set(conv, m.seq);
    if (String(m.from) === this.user && m.cmid) this.dropPending(m.cmid);
    this.emit('message', m);
  }

  /** Fetch everything after my last seq of `conv` (repeats while the server says `more`). */
  sync(conv) {
    conv = String(conv);
    if (this.status !== 'online') return;
    if (this.syncing.has(conv)) { this.syncing.set(conv, true); return; }
    this.syncing.set(conv, false);
    const id = this.nextId();
    this.inflight.set(id, {
      resolve: () => {},
      reject: (err) => {
        this.syncing.delete(conv);
        if (err && err.code === 'timeout') this.sync(conv);
      },
      timer: setTimeout(() => this.settle(id, null, new SocketError('timeout')), REQUEST_TIMEOUT_MS),
      conv,
    });
    this.rawSend({ type: 'sync', id, conv, after: this.seqs.get(conv) ?? 0, limit: SYNC_PAGE });
  }

  onHistory(f) {
    const entry = this.inflight.get(f.id);
    for (const m of f.messages || []) this.accept(m);
    this.settle(f.id, f, null);
    const conv = entry ? entry.conv : String(f.conv);
    const again = this.syncing.get(conv);
    this.syncing.delete(conv);
    if (f.more || again || this.ahead.has(conv)) this.sync(conv);
  }

  // ---- sending ----

  /** Queue a text for `conv`; sent now if online, else on reconnect. Returns its cmid. */
  send(conv, text) {
    const p = { conv: String(conv), cmid: newCmid(this.user), text, ts: Date.now() };
    this.pending.push(p);
    this.savePending();
    this.emit('pending', this.pending);
    if (this.status === 'online') this.transmit(p);
    return p.cmid;
  }

  transmit(p) {
    this.rawSend({ type: 'send', id: 'send:' + p.cmid, conv: p.conv, cmid: p.cmid, body: { kind: 'text', text: p.text } });
  }

  onAck(f) {
    const cmid = f.cmid;
    const p = this.pending.find((x) => x.cmid === cmid);
    this.emit('ack', { conv: f.conv, cmid, seq: f.seq, ts: f.ts });
    this.accept({ conv: f.conv, seq: f.seq, from: this.user, cmid, ts: f.ts, body: { kind: 'text', text: p ? p.text : '' } });
    this.dropPending(cmid);
  }

  onError(f) {
    const id = f.id;
    if (typeof id === 'string' && id.startsWith('send:')) {
      const cmid = id.slice(5);
      const p = this.pending.find((x) => x.cmid === cmid);
      if (!p) return;
      if (f.code === 'rate_limited' || f.code === 'unavailable') {
        setTimeout(() => { if (this.status === 'online' && this.pending.includes(p)) this.transmit(p); }, f.retry_after_ms || 1000);
      } else {
        this.dropPending(cmid);
        this.emit('send_failed', { cmid, conv: p.conv, code: f.code, message: f.message });
      }
      return;
    }
    if (id !== undefined && id !== null) {
      const entry = this.inflight.get(id);
      if (entry && entry.conv) {
        // A sync refused for now (too many frames after a reconnect, storage trouble): again later.
        const conv = entry.conv;
        this.syncing.delete(conv);
        if (f.code === 'rate_limited' || f.code === 'unavailable') {
          setTimeout(() => this.sync(conv), f.retry_after_ms || 1000);
        }
      }
      this.settle(id, null, new SocketError(f.code, f.message));
    }
    this.emit('socket_error', f);
  }

  dropPending(cmid) {
    const before = this.pending.length;
    this.pending = this.pending.filter((x) => x.cmid !== cmid);
    if (this.pending.length !== before) {
      this.savePending();
      this.emit('pending', this.pending);
    }
  }

  pendingFor(conv) {
    return this.pending.filter((p) => p.conv === String(conv));
  }

  loadPending() {
    try {
      const raw = this.storage && this.storage.getItem('jbk.pending.' + this.user);
      const list = raw ? JSON.parse(raw) : [];
      return Array.isArray(list) ? list.filter((p) => p && p.cmid && p.conv && typeof p.text === 'string') : [];
    } catch (_) {
      return [];
    }
  }

  savePending() {
    try { if (this.storage) this.storage.setItem('jbk.pending.' + this.user, JSON.stringify(this.pending)); } catch (_) { /* full or off */ }
  }

  // ---- requests, fire-and-forget, presence ----

  nextId() {
    this.counter += 1;
    return 'r' + this.counter;
  }

  /** Send a frame with an id and resolve with its reply (rejects with a SocketError). */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (this.status !== 'online') { reject(new SocketError('offline', 'not connected')); return; }
      const id = this.nextId();
      const timer = setTimeout(() => this.settle(id, null, new SocketError('timeout', 'no reply')), timeoutMs);
      this.inflight.set(id, { resolve, reject, timer });
      this.rawSend({ ...frame, id });
    });
  }

  settle(id, value, err) {
    const entry = this.inflight.get(id);
    if (!entry) return;
    this.inflight.delete(id);
    clearTimeout(entry.timer);
    if (err) entry.reject(err); else entry.resolve(value);
  }

  failAll(err) {
    for (const id of [...this.inflight.keys()]) this.settle(id, null, err);
    this.syncing.clear();
  }

  /** A frame that needs no reply (typing, read); dropped when offline. */
  fire(frame) {
    if (this.status === 'online') this.rawSend(frame);
  }

  watch(users) {
    const fresh = users.map(String).filter((u) => u !== this.user && !this.watched.has(u));
    if (!fresh.length) return;
    for (const u of fresh) this.watched.add(u);
    if (this.status === 'online') this.rawSend({ type: 'presence_subscribe', users: fresh.slice(0, 500) });
  }

  rawSend(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (_) { return false; }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function strip(f) {
  return { conv: f.conv, seq: f.seq, from: f.from, cmid: f.cmid, ts: f.ts, body: f.body };
}

function newCmid(user) {
  const rand = (crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
  return ('w' + user + '-' + rand).slice(0, 64);
}

function safeStorage() {
  try { return window.localStorage; } catch (_) { return null; }
}
