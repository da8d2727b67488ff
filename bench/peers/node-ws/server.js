'use strict';
// Benchmark peer for Jiebanke: the seed design (Node.js + Express + ws, optionally mysql2 on
// MariaDB) serving the jbk.v1.json subset used by the load generator. One process, one thread.
// See README.md for what is and is not implemented.

const http = require('node:http');
const crypto = require('node:crypto');
const express = require('express');
const { WebSocketServer } = require('ws');

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const LISTEN = process.env.PEER_LISTEN || '127.0.0.1:9090';
const MODE = process.env.PEER_MODE || 'memory';
const MYSQL_URL = process.env.PEER_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
const POOL_SIZE = Number(process.env.PEER_MYSQL_POOL || 16);

if (MODE !== 'memory' && MODE !== 'mysql') {
  console.error(`PEER_MODE must be memory or mysql, not ${JSON.stringify(MODE)}`);
  process.exit(2);
}

// Like Jiebanke's JBK_MAX_GROUP_MEMBERS (the benchmark raises both for large rooms).
const MAX_GROUP = Number(process.env.PEER_MAX_GROUP_MEMBERS || 500);
const HEARTBEAT_MS = 25000; // server Ping period; 3 silent periods close the socket (4002)
const MAX_FRAME_BYTES = 65536; // frames above this get error too_large, the session lives
const HARD_FRAME_CAP = 1 << 20; // ws closes 1009 above this
const MAX_INFLIGHT = 64; // per session: stop reading the socket past this many pending requests
const SLOW_CONSUMER_BYTES = 8 << 20; // outbound buffer above this: close 4008
const MEMBER_CACHE_CAP = 100000;
const PROTOCOL = 'jbk.v1.json';

const ID_RE = /^[0-9]{1,19}$/;
const CMID_RE = /^[\x21-\x7e]{1,64}$/;
const LOGIN_CODE_RE = /^[\x21-\x7e]{1,128}$/;

// Every text frame goes out with these options (a Buffer sent as a text frame).
const TEXT = { binary: false };

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** A client-supplied id (string or non-negative integer) as a canonical decimal string, or null. */
function parseId(v) {
  let s;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) s = String(v);
  else return null;
  if (!ID_RE.test(s)) return null;
  // Positive and within i63: strip leading zeros, compare as BigInt only when long.
  s = s.replace(/^0+/, '');
  if (s.length === 0) return null;
  if (s.length === 19 && BigInt(s) > 9223372036854775807n) return null;
  return s;
}

function nicknameOf(code) {
  const chars = Array.from(code);
  return '旅行者' + chars.slice(-4).join('');
}

function idCompare(a, b) {
  // decimal strings without leading zeros
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function restError(res, status, code, message) {
  res.status(status).json({ code, message });
}

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** not_found / forbidden / invalid unless `me` owns the group `c`. */
function checkOwnedGroup(c, me) {
  if (c === undefined || c === null) throw new HttpError(404, 'not_found', 'not found: conversation');
  if (!c.memberSet.has(me)) throw new HttpError(403, 'forbidden', 'forbidden: not a member of this conversation');
  if (c.kind !== 'group') throw new HttpError(422, 'invalid', 'invalid: members of a direct conversation cannot change');
  if (c.owner !== me) throw new HttpError(403, 'forbidden', 'forbidden: only the owner adds members');
}

/** The users not in `set`, without duplicates, in id order. */
function newMembers(set, users) {
  const out = [...new Set(users.filter((u) => !set.has(u)))];
  return out.sort(idCompare);
}

// Tokens are opaque random hex strings mapped to a user in this process (both modes).
const tokens = new Map(); // token -> { id, nickname }

function newToken(user) {
  const t = crypto.randomBytes(18).toString('hex');
  tokens.set(t, user);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Stores. Both expose the same async-ish API; memory mode returns plain values synchronously
// where the hot path benefits from it.
// ---------------------------------------------------------------------------------------------

class MemoryStore {
  constructor() {
    this.usersByCode = new Map(); // code -> user
    this.usersById = new Map(); // id -> user
    this.nextUser = 1;
    this.convs = new Map(); // id -> conv { id, kind, title, owner, members: [], memberSet: Set, lastSeq }
    this.direct = new Map(); // "lo:hi" -> conv
    this.nextConv = 1;
    this.byUser = new Map(); // user id -> [conv] in creation order
    this.sent = new Map(); // sender + "\n" + cmid -> { conv, seq, ts } (idempotency)
  }

  async init() {}
  async close() {}

  async login(code) {
    let u = this.usersByCode.get(code);
    if (!u) {
      u = { id: String(this.nextUser++), nickname: nicknameOf(code), createdAt: Date.now() };
      this.usersByCode.set(code, u);
      this.usersById.set(u.id, u);
    }
    return u;
  }

  _mkConv(kind, title, owner, members) {
    const c = {
      id: String(this.nextConv++),
      kind,
      title,
      owner,
      members,
      memberSet: new Set(members),
      lastSeq: 0,
      createdAt: Date.now(),
    };
    this.convs.set(c.id, c);
    for (const u of members) this._index(u, c);
    return c;
  }

  _index(u, c) {
    const list = this.byUser.get(u);
    if (list === undefined) this.byUser.set(u, [c]);
    else list.push(c);
  }

  async user(id) {
    const u = this.usersById.get(id);
    return u === undefined ? null : { id: u.id, nickname: u.nickname, createdAt: u.createdAt, lastSeen: null };
  }

  /** The user's conversations, newest first, at most 1,000, with read_seq (always 0 here). */
  async conversationsOf(me) {
    const list = this.byUser.get(me) || [];
    const out = [];
    for (let i = list.length - 1; i >= 0 && out.length < 1000; i--) out.push(list[i]);
    return out;
  }

  async addMembers(me, id, users) {
    const c = this.convs.get(id);
    checkOwnedGroup(c, me);
    const fresh = newMembers(c.memberSet, users);
    if (c.members.length + fresh.length > MAX_GROUP) throw new HttpError(422, 'invalid', `invalid: a group has at most ${MAX_GROUP} members`);
    for (const u of fresh) {
      if (!this.usersById.has(u)) throw new HttpError(404, 'not_found', `not found: user ${u}`);
    }
    for (const u of fresh) {
      c.members.push(u);
      c.memberSet.add(u);
      this._index(u, c);
    }
    return c;
  }

  async directConversation(me, other) {
    if (!this.usersById.has(other)) throw new HttpError(404, 'not_found', `not found: user ${other}`);
    const key = idCompare(me, other) < 0 ? `${me}:${other}` : `${other}:${me}`;
    let c = this.direct.get(key);
    if (!c) {
      c = this._mkConv('direct', null, null, [me, other]);
      this.direct.set(key, c);
    }
    return c;
  }

  async groupConversation(me, title, others) {
    for (const u of others) {
      if (!this.usersById.has(u)) throw new HttpError(404, 'not_found', `not found: user ${u}`);
    }
    return this._mkConv('group', title, me, [me, ...others]);
  }

  /** Synchronous: { members } or an error code string. */
  members(conv) {
    return this.convs.get(conv);
  }

  /** Synchronous append. Returns { seq, ts, duplicate, conv }. */
  append(c, from, cmid, body) {
    const key = from + '\n' + cmid;
    const prev = this.sent.get(key);
    if (prev !== undefined) return { conv: prev.conv, seq: prev.seq, ts: prev.ts, duplicate: true };
    const seq = ++c.lastSeq;
    const ts = Date.now();
    this.sent.set(key, { conv: c.id, seq, ts });
    return { conv: c.id, seq, ts, duplicate: false };
  }

  // The shop, in memory: the same checks, one event-loop turn per order (no other writer).
  async seedShop(merchants, perMerchant, stock, hotStock) {
    this.shop = this.shop || { products: new Map(), orders: 0 };
    const out = [];
    for (let m = 0; m < merchants; m++) {
      for (let k = 0; k < perMerchant + (m === 0 ? 1 : 0); k++) {
        const hot = m === 0 && k === perMerchant;
        const id = this.shop.products.size + 1;
        const p = { id, merchant: m, title: hot ? '限量玫瑰' : `花束${m}-${k}`, price_fen: hot ? 5200 : 990 + k, stock: hot ? hotStock : stock };
        this.shop.products.set(id, p);
        out.push({ id: String(id), merchant: m, stock: p.stock });
      }
    }
    return out;
  }

  async products(merchant, limit) {
    const all = this.shop ? [...this.shop.products.values()] : [];
    return all.filter((p) => p.merchant === merchant).slice(0, limit).map((p) => ({ ...p, id: String(p.id), merchant: String(p.merchant) }));
  }

  async product(id) {
    const p = this.shop && this.shop.products.get(id);
    return p ? { ...p, id: String(p.id), merchant: String(p.merchant) } : null;
  }

  async createOrder(buyer, items, recipient, deliverOn, slot, now) {
    const ps = items.map((i) => this.shop && this.shop.products.get(i.id));
    if (ps.some((p) => !p)) return { missing: true };
    if (items.some((it, i) => ps[i].stock < it.quantity)) return { outOfStock: true };
    let amount = 0;
    items.forEach((it, i) => {
      ps[i].stock -= it.quantity;
      amount += ps[i].price_fen * it.quantity;
    });
    this.shop.orders += 1;
    return { id: String(this.shop.orders), state: 'created', amount_fen: amount, merchant: String(ps[0].merchant), created_at: now };
  }

}

class MysqlStore {
  constructor(url) {
    this.url = url;
    this.pool = null;
    this.memberCache = new Map(); // conv id -> { members: [], memberSet: Set }
  }

  async init() {
    const mysql = require('mysql2/promise');
    const u = new URL(this.url);
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'test';
    const base = {
      host: u.hostname || '127.0.0.1',
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username || 'root'),
      password: decodeURIComponent(u.password || ''),
      charset: 'utf8mb4',
      supportBigNumbers: true,
    };
    // Create the database if it is missing, then the tables (same schema as Jiebanke's MySQL
    // migration, so the peer can share a database with it).
    const admin = await mysql.createConnection(base);
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '``')}\``);
    await admin.end();
    this.pool = mysql.createPool({ ...base, database, connectionLimit: POOL_SIZE, waitForConnections: true, queueLimit: 0 });
    const ddl = [
      `CREATE TABLE IF NOT EXISTS users (
        id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        provider    VARCHAR(16)  NOT NULL,
        subject     VARCHAR(128) NOT NULL,
        nickname    VARCHAR(64)  NOT NULL,
        created_at  BIGINT       NOT NULL,
        last_seen   BIGINT       NULL,
        UNIQUE KEY users_identity (provider, subject)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS conversations (
        id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        kind        VARCHAR(16)  NOT NULL,
        title       VARCHAR(255) NULL,
        owner_id    BIGINT       NULL,
        direct_key  VARCHAR(64)  NULL,
        last_seq    BIGINT       NOT NULL DEFAULT 0,
        created_at  BIGINT       NOT NULL,
        UNIQUE KEY conversations_direct (direct_key)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS members (
        conv_id     BIGINT NOT NULL,
        user_id     BIGINT NOT NULL,
        read_seq    BIGINT NOT NULL DEFAULT 0,
        joined_at   BIGINT NOT NULL,
        PRIMARY KEY (conv_id, user_id),
        KEY members_by_user (user_id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS messages (
        conv_id     BIGINT        NOT NULL,
        seq         BIGINT        NOT NULL,
        sender_id   BIGINT        NOT NULL,
        cmid        VARCHAR(64)   NOT NULL,
        ts          BIGINT        NOT NULL,
        kind        VARCHAR(16)   NOT NULL,
        text        VARCHAR(4000) NOT NULL,
        PRIMARY KEY (conv_id, seq),
        UNIQUE KEY messages_cmid (sender_id, cmid)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS peer_products (
        id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        merchant_id BIGINT       NOT NULL,
        title       VARCHAR(255) NOT NULL,
        price_fen   BIGINT       NOT NULL,
        stock       BIGINT       NOT NULL,
        created_at  BIGINT       NOT NULL,
        KEY peer_products_by_merchant (merchant_id, id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS peer_orders (
        id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        buyer_id    BIGINT       NOT NULL,
        merchant_id BIGINT       NOT NULL,
        state       VARCHAR(16)  NOT NULL,
        amount_fen  BIGINT       NOT NULL,
        recipient   TEXT         NOT NULL,
        deliver_on  VARCHAR(10)  NOT NULL,
        slot        VARCHAR(16)  NOT NULL,
        created_at  BIGINT       NOT NULL,
        KEY peer_orders_by_buyer (buyer_id, id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS peer_order_items (
        order_id    BIGINT NOT NULL,
        product_id  BIGINT NOT NULL,
        quantity    BIGINT NOT NULL,
        price_fen   BIGINT NOT NULL,
        PRIMARY KEY (order_id, product_id)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ];
    for (const q of ddl) await this.pool.query(q);
  }

  async seedShop(merchants, perMerchant, stock, hotStock) {
    const out = [];
    const now = Date.now();
    for (let m = 0; m < merchants; m++) {
      for (let k = 0; k < perMerchant + (m === 0 ? 1 : 0); k++) {
        const hot = m === 0 && k === perMerchant;
        const s = hot ? hotStock : stock;
        const [r] = await this.pool.execute('INSERT INTO peer_products (merchant_id, title, price_fen, stock, created_at) VALUES (?, ?, ?, ?, ?)', [
          m, hot ? '限量玫瑰' : `花束${m}-${k}`, hot ? 5200 : 990 + k, s, now,
        ]);
        out.push({ id: String(r.insertId), merchant: m, stock: s });
      }
    }
    return out;
  }

  async products(merchant, limit) {
    const [rows] = await this.pool.query('SELECT id, merchant_id, title, price_fen, stock FROM peer_products WHERE merchant_id = ? ORDER BY id LIMIT ?', [merchant, limit]);
    return rows.map((r) => ({ id: String(r.id), merchant: String(r.merchant_id), title: r.title, price_fen: Number(r.price_fen), stock: Number(r.stock) }));
  }

  async product(id) {
    const [rows] = await this.pool.execute('SELECT id, merchant_id, title, price_fen, stock FROM peer_products WHERE id = ?', [id]);
    if (rows.length === 0) return null;
    const r = rows[0];
    return { id: String(r.id), merchant: String(r.merchant_id), title: r.title, price_fen: Number(r.price_fen), stock: Number(r.stock) };
  }

  async createOrder(buyer, items, recipient, deliverOn, slot, now) {
    const conn = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      const ids = items.map((i) => i.id).sort((a, b) => a - b);
      const [rows] = await conn.query('SELECT id, merchant_id, price_fen, stock FROM peer_products WHERE id IN (?) ORDER BY id FOR UPDATE', [ids]);
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      let amount = 0;
      let merchant = null;
      for (const it of items) {
        const p = byId.get(it.id);
        if (p === undefined) {
          await conn.rollback();
          return { missing: true };
        }
        if (Number(p.stock) < it.quantity) {
          await conn.rollback();
          return { outOfStock: true };
        }
        amount += Number(p.price_fen) * it.quantity;
        merchant = Number(p.merchant_id);
      }
      for (const it of items) {
        await conn.execute('UPDATE peer_products SET stock = stock - ? WHERE id = ?', [it.quantity, it.id]);
      }
      const [r] = await conn.execute(
        'INSERT INTO peer_orders (buyer_id, merchant_id, state, amount_fen, recipient, deliver_on, slot, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [buyer, merchant, 'created', amount, JSON.stringify(recipient), String(deliverOn || ''), String(slot || ''), now],
      );
      for (const it of items) {
        await conn.execute('INSERT INTO peer_order_items (order_id, product_id, quantity, price_fen) VALUES (?, ?, ?, ?)', [r.insertId, it.id, it.quantity, Number(byId.get(it.id).price_fen)]);
      }
      await conn.commit();
      return { id: String(r.insertId), state: 'created', amount_fen: amount, merchant: String(merchant), created_at: now };
    } catch (e) {
      await conn.rollback().catch(() => {});
      throw e;
    } finally {
      conn.release();
    }
  }

  async close() {
    if (this.pool) await this.pool.end();
  }

  async login(code) {
    const nickname = nicknameOf(code);
    const [r] = await this.pool.execute(
      "INSERT INTO users (provider, subject, nickname, created_at) VALUES ('dev', ?, ?, ?) " +
        'ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)',
      [code, nickname, Date.now()],
    );
    // The nickname is a function of the code, so no second round trip is needed.
    return { id: String(r.insertId), nickname };
  }

  async _missingUser(ids) {
    if (ids.length === 0) return null;
    const [rows] = await this.pool.query('SELECT id FROM users WHERE id IN (?)', [ids]);
    const found = new Set(rows.map((r) => String(r.id)));
    return ids.find((i) => !found.has(i)) || null;
  }

  async _tx(fn) {
    const conn = await this.pool.getConnection();
    try {
      await conn.query('START TRANSACTION');
      try {
        const v = await fn(conn);
        await conn.query('COMMIT');
        return v;
      } catch (e) {
        await conn.query('ROLLBACK').catch(() => {});
        throw e;
      }
    } finally {
      conn.release();
    }
  }

  /**
   * The member cache. A value is an entry, or the promise of one while it loads (so concurrent
   * misses share one query). An entry also carries the in-order delivery state of its
   * conversation: `next` is the next seq to hand to the recipients, `pending` holds messages that
   * committed before a smaller seq did.
   */
  _entry(id, members, lastSeq) {
    return { id, members, memberSet: new Set(members), next: lastSeq + 1, pending: null, gapSince: 0, inflight: 0 };
  }

  _put(id, entry) {
    if (this.memberCache.size >= MEMBER_CACHE_CAP) {
      // Evict idle entries only: an entry with appends in flight owns its seq window.
      for (const [k, v] of this.memberCache) {
        if (typeof v.then !== 'function' && v.inflight === 0 && v.pending === null) this.memberCache.delete(k);
      }
    }
    this.memberCache.set(id, entry);
    return entry;
  }

  async directConversation(me, other) {
    const missing = await this._missingUser([other]);
    if (missing) throw new HttpError(404, 'not_found', `not found: user ${missing}`);
    const key = idCompare(me, other) < 0 ? `${me}:${other}` : `${other}:${me}`;
    const now = Date.now();
    let lastSeq = 0;
    let createdAt = now;
    const id = await this._tx(async (conn) => {
      await conn.execute(
        "INSERT IGNORE INTO conversations (kind, direct_key, last_seq, created_at) VALUES ('direct', ?, 0, ?)",
        [key, now],
      );
      const [rows] = await conn.execute('SELECT id, last_seq, created_at FROM conversations WHERE direct_key = ?', [key]);
      const id = String(rows[0].id);
      lastSeq = Number(rows[0].last_seq);
      createdAt = Number(rows[0].created_at);
      await conn.execute(
        'INSERT IGNORE INTO members (conv_id, user_id, read_seq, joined_at) VALUES (?, ?, 0, ?), (?, ?, 0, ?)',
        [id, me, now, id, other, now],
      );
      return id;
    });
    const c = await this.members(id); // cached, or loaded now (the pair is committed)
    return { id, kind: 'direct', title: null, owner: null, members: c.members, lastSeq, createdAt };
  }

  async groupConversation(me, title, others) {
    const missing = await this._missingUser(others);
    if (missing) throw new HttpError(404, 'not_found', `not found: user ${missing}`);
    const now = Date.now();
    const members = [me, ...others];
    const id = await this._tx(async (conn) => {
      const [r] = await conn.execute(
        "INSERT INTO conversations (kind, title, owner_id, last_seq, created_at) VALUES ('group', ?, ?, 0, ?)",
        [title, me, now],
      );
      const id = String(r.insertId);
      const rows = members.map((u) => [id, u, 0, now]);
      await conn.query('INSERT INTO members (conv_id, user_id, read_seq, joined_at) VALUES ?', [rows]);
      return id;
    });
    this._put(id, this._entry(id, members, 0));
    return { id, kind: 'group', title, owner: me, members, lastSeq: 0, createdAt: now };
  }

  async user(id) {
    const [rows] = await this.pool.execute('SELECT id, nickname, created_at, last_seen FROM users WHERE id = ?', [id]);
    if (rows.length === 0) return null;
    const r = rows[0];
    return { id: String(r.id), nickname: r.nickname, createdAt: Number(r.created_at), lastSeen: r.last_seen === null ? null : Number(r.last_seen) };
  }

  async conversationsOf(me) {
    const [convs] = await this.pool.execute(
      'SELECT c.id, c.kind, c.title, c.owner_id, c.last_seq, c.created_at, m.read_seq ' +
        'FROM members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ? ' +
        'ORDER BY c.created_at DESC, c.id DESC LIMIT 1000',
      [me],
    );
    if (convs.length === 0) return [];
    const [mem] = await this.pool.query(
      'SELECT conv_id, user_id FROM members WHERE conv_id IN (?) ORDER BY joined_at, user_id',
      [convs.map((c) => c.id)],
    );
    const byConv = new Map();
    for (const r of mem) {
      const k = String(r.conv_id);
      const list = byConv.get(k);
      if (list === undefined) byConv.set(k, [String(r.user_id)]);
      else list.push(String(r.user_id));
    }
    return convs.map((r) => this._row(r, byConv.get(String(r.id)) || [], Number(r.read_seq)));
  }

  _row(r, members, readSeq) {
    return {
      id: String(r.id),
      kind: r.kind,
      title: r.title,
      owner: r.owner_id === null ? null : String(r.owner_id),
      members,
      lastSeq: Number(r.last_seq),
      createdAt: Number(r.created_at),
      readSeq,
    };
  }

  async _conversation(id) {
    const [rows] = await this.pool.execute('SELECT id, kind, title, owner_id, last_seq, created_at FROM conversations WHERE id = ?', [id]);
    if (rows.length === 0) return null;
    const [mem] = await this.pool.execute('SELECT user_id FROM members WHERE conv_id = ? ORDER BY joined_at, user_id', [id]);
    const members = mem.map((m) => String(m.user_id));
    const c = this._row(rows[0], members);
    c.memberSet = new Set(members);
    return c;
  }

  async addMembers(me, id, users) {
    const c = await this._conversation(id);
    checkOwnedGroup(c, me);
    const fresh = newMembers(c.memberSet, users);
    if (c.members.length + fresh.length > MAX_GROUP) throw new HttpError(422, 'invalid', `invalid: a group has at most ${MAX_GROUP} members`);
    const missing = await this._missingUser(fresh);
    if (missing) throw new HttpError(404, 'not_found', `not found: user ${missing}`);
    if (fresh.length > 0) {
      const now = Date.now();
      await this.pool.query('INSERT IGNORE INTO members (conv_id, user_id, read_seq, joined_at) VALUES ?', [
        fresh.map((u) => [id, u, 0, now]),
      ]);
      // Update the cached entry in place: it also holds the conversation's delivery order.
      const add = (e) => {
        if (e === undefined) return;
        for (const u of fresh) {
          if (!e.memberSet.has(u)) {
            e.members.push(u);
            e.memberSet.add(u);
          }
        }
      };
      const e = this.memberCache.get(id);
      if (e !== undefined) {
        if (typeof e.then === 'function') e.then(add, noop);
        else add(e);
      }
    }
    return this._conversation(id);
  }

  /** Cached entry, or a promise of it (resolving to undefined when the conversation is unknown). */
  members(conv) {
    const c = this.memberCache.get(conv);
    if (c !== undefined) return c;
    const p = this.pool
      .execute(
        'SELECT c.last_seq, m.user_id FROM conversations c LEFT JOIN members m ON m.conv_id = c.id ' +
          'WHERE c.id = ? ORDER BY m.joined_at, m.user_id',
        [conv],
      )
      .then(
        ([rows]) => {
          if (this.memberCache.get(conv) !== p) return this.memberCache.get(conv);
          if (rows.length === 0) {
            this.memberCache.delete(conv);
            return undefined;
          }
          const members = [];
          for (const r of rows) if (r.user_id !== null) members.push(String(r.user_id));
          return this._put(conv, this._entry(conv, members, Number(rows[0].last_seq)));
        },
        (e) => {
          if (this.memberCache.get(conv) === p) this.memberCache.delete(conv);
          throw e;
        },
      );
    this.memberCache.set(conv, p);
    return p;
  }

  /** One transaction per message: bump last_seq, read it, insert the message, commit. */
  async append(c, from, cmid, body) {
    const conn = await this.pool.getConnection();
    let committing = false;
    try {
      await conn.query('START TRANSACTION');
      await conn.execute('UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?', [c.id]);
      const [rows] = await conn.execute('SELECT last_seq FROM conversations WHERE id = ?', [c.id]);
      const seq = Number(rows[0].last_seq);
      const ts = Date.now();
      await conn.execute(
        'INSERT INTO messages (conv_id, seq, sender_id, cmid, ts, kind, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [c.id, seq, from, cmid, ts, body.kind, body.text],
      );
      committing = true;
      await conn.query('COMMIT');
      conn.release();
      return { conv: c.id, seq, ts, duplicate: false };
    } catch (e) {
      if (!committing) {
        await conn.query('ROLLBACK').catch(() => {});
        conn.release();
        if (e && e.code === 'ER_DUP_ENTRY') {
          // (sender, cmid) already stored: answer with the original.
          const r = await this._sent(from, cmid);
          if (r) return { ...r, duplicate: true };
        }
        throw e;
      }
      // The COMMIT failed ambiguously: drop the connection, and look for the message. If it
      // is stored, it is answered as new (and delivered), like Jiebanke does.
      conn.destroy();
      const r = await this._sent(from, cmid);
      if (r && r.conv === c.id) return { ...r, duplicate: false };
      throw e;
    }
  }

  async _sent(from, cmid) {
    const [rows] = await this.pool.execute('SELECT conv_id, seq, ts FROM messages WHERE sender_id = ? AND cmid = ?', [from, cmid]);
    if (rows.length === 0) return null;
    return { conv: String(rows[0].conv_id), seq: Number(rows[0].seq), ts: Number(rows[0].ts) };
  }
}

const store = MODE === 'mysql' ? new MysqlStore(MYSQL_URL) : new MemoryStore();

// ---------------------------------------------------------------------------------------------
// REST (Express)
// ---------------------------------------------------------------------------------------------

const app = express();
app.disable('x-powered-by');
app.set('etag', false);

app.get('/healthz', (req, res) => {
  res.json({ status: 'ok' });
});

const jsonBody = express.json({ limit: '64kb', type: () => true });
function requireJson(req, res, next) {
  const ct = req.headers['content-type'];
  if (!ct || !/^application\/json\b/i.test(ct)) {
    return restError(res, 415, 'unsupported_media_type', 'expected Content-Type: application/json');
  }
  jsonBody(req, res, next);
}

function requireAuth(req, res, next) {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) {
    return restError(res, 401, 'unauthorized', 'missing bearer token');
  }
  const user = tokens.get(h.slice(7));
  if (user === undefined) return restError(res, 401, 'unauthorized', 'invalid or expired token');
  req.user = user;
  next();
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

app.post('/api/v1/auth/login', requireJson, async (req, res, next) => {
  try {
    const b = req.body;
    if (!isObject(b) || typeof b.code !== 'string') {
      return restError(res, 422, 'invalid', 'invalid: code must be a string');
    }
    if (!LOGIN_CODE_RE.test(b.code)) return restError(res, 422, 'invalid', 'invalid: bad login code');
    if (b.provider !== undefined && b.provider !== 'dev') {
      return restError(res, 422, 'invalid', 'invalid: login provider not enabled');
    }
    const user = await store.login(b.code);
    const token = newToken(user);
    res.json({ token, user: { id: user.id, nickname: user.nickname, provider: 'dev' } });
  } catch (e) {
    next(e);
  }
});

app.post('/api/v1/conversations', requireAuth, requireJson, async (req, res, next) => {
  try {
    const me = req.user.id;
    const b = req.body;
    if (!isObject(b)) return restError(res, 422, 'invalid', 'invalid: expected an object');
    const raw = b.members === undefined || b.members === null ? [] : b.members;
    if (!Array.isArray(raw)) return restError(res, 422, 'invalid', 'invalid: members must be an array');
    const ids = [];
    for (const m of raw) {
      const id = parseId(m);
      if (id === null) return restError(res, 422, 'invalid', 'invalid: bad user id');
      ids.push(id);
    }
    let c;
    if (b.kind === 'direct') {
      if (ids.length !== 1) return restError(res, 422, 'invalid', 'invalid: a direct conversation has exactly one other member');
      if (ids[0] === me) return restError(res, 422, 'invalid', 'invalid: cannot open a direct conversation with yourself');
      c = await store.directConversation(me, ids[0]);
    } else if (b.kind === 'group') {
      const title = typeof b.title === 'string' ? b.title.trim() : null;
      if (title === null || title.length === 0 || Array.from(title).length > 64) {
        return restError(res, 422, 'invalid', 'invalid: title must be 1 to 64 characters');
      }
      const others = newMembers(new Set([me]), ids); // deduplicated, id order (as Jiebanke)
      if (others.length + 1 > MAX_GROUP) return restError(res, 422, 'invalid', `invalid: more than ${MAX_GROUP} members`);
      c = await store.groupConversation(me, title, others);
    } else {
      return restError(res, 422, 'invalid', 'invalid: kind must be direct or group');
    }
    res.json(convJson(c));
  } catch (e) {
    next(e);
  }
});

function convJson(c) {
  return {
    id: c.id,
    kind: c.kind,
    title: c.title,
    owner: c.owner,
    members: c.members,
    last_seq: c.lastSeq || 0,
    created_at: c.createdAt,
  };
}

app.get('/api/v1/me', requireAuth, async (req, res, next) => {
  try {
    const u = await store.user(req.user.id);
    if (u === null) return restError(res, 404, 'not_found', 'not found: user');
    res.json({ id: u.id, nickname: u.nickname, provider: 'dev', created_at: u.createdAt, last_seen: u.lastSeen });
  } catch (e) {
    next(e);
  }
});

app.get('/api/v1/conversations', requireAuth, async (req, res, next) => {
  try {
    const list = await store.conversationsOf(req.user.id);
    const conversations = list.map((c) => {
      const j = convJson(c);
      j.read_seq = c.readSeq || 0;
      return j;
    });
    res.json({ conversations });
  } catch (e) {
    next(e);
  }
});

app.post('/api/v1/conversations/:id/members', requireAuth, requireJson, async (req, res, next) => {
  try {
    const conv = parseId(req.params.id);
    if (conv === null) return restError(res, 404, 'not_found', 'not found: conversation');
    const b = req.body;
    if (!isObject(b) || !Array.isArray(b.members)) return restError(res, 422, 'invalid', 'invalid: members must be an array');
    const ids = [];
    for (const m of b.members) {
      const id = parseId(m);
      if (id === null) return restError(res, 422, 'invalid', 'invalid: bad user id');
      ids.push(id);
    }
    res.json(convJson(await store.addMembers(req.user.id, conv, ids)));
  } catch (e) {
    next(e);
  }
});

// The peer has no privacy settings (everyone may message, add and watch everyone): the load
// generator opens Jiebanke's to the same, and this answers its request.
app.patch('/api/v1/me/settings', requireAuth, requireJson, (req, res) => {
  res.json({ dm_from: 'everyone', group_add_from: 'everyone', presence_to: 'everyone', matchable: true });
});

// ---------------------------------------------------------------------------------------------
// The shop (the `shop` load scenario): products and orders with stock, as the seed's Express +
// mysql2 service would write them: one transaction that locks the products (SELECT ... FOR
// UPDATE), checks and takes the stock, and inserts the order and its items.
// ---------------------------------------------------------------------------------------------

app.post('/api/v1/peer/seed', requireAuth, requireJson, async (req, res, next) => {
  try {
    const b = req.body;
    const n = (k, d) => (Number.isInteger(b[k]) && b[k] >= 0 ? b[k] : d);
    const products = await store.seedShop(n('merchants', 4), n('products', 25), n('stock', 1000000), n('hot_stock', 50));
    res.json({ products });
  } catch (e) {
    next(e);
  }
});

app.get('/api/v1/products', requireAuth, async (req, res, next) => {
  try {
    const merchant = Number(req.query.merchant || 0);
    const limit = Math.min(Math.max(Number(req.query.limit || 20), 1), 100);
    const items = await store.products(merchant, limit);
    res.json({ items, next_cursor: null });
  } catch (e) {
    next(e);
  }
});

app.get('/api/v1/products/:id', requireAuth, async (req, res, next) => {
  try {
    const p = await store.product(Number(req.params.id));
    if (p === null) return restError(res, 404, 'not_found', 'not found: product');
    res.json(p);
  } catch (e) {
    next(e);
  }
});

app.post('/api/v1/orders', requireAuth, requireJson, async (req, res, next) => {
  try {
    const b = req.body;
    if (!isObject(b) || !Array.isArray(b.items) || b.items.length < 1 || b.items.length > 20 || !isObject(b.recipient)) {
      return restError(res, 422, 'invalid', 'invalid: items and recipient are required');
    }
    const items = [];
    for (const it of b.items) {
      const id = Number(it && it.product);
      if (!Number.isSafeInteger(id) || id <= 0 || !Number.isInteger(it.quantity) || it.quantity < 1 || it.quantity > 99) {
        return restError(res, 422, 'invalid', 'invalid: bad item');
      }
      items.push({ id, quantity: it.quantity });
    }
    const order = await store.createOrder(req.user.id, items, b.recipient, b.deliver_on, b.slot, Date.now());
    if (order.outOfStock) return restError(res, 409, 'out_of_stock', 'out of stock');
    if (order.missing) return restError(res, 422, 'invalid', 'invalid: no such product');
    res.status(201).json(order);
  } catch (e) {
    next(e);
  }
});

// Unknown routes: empty 404, like the Rust server's framework.
app.use((req, res) => {
  res.status(404).end();
});

// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  if (err instanceof HttpError) return restError(res, err.status, err.code, err.message);
  if (err && err.type === 'entity.too.large') return restError(res, 413, 'too_large', 'body too large');
  if (err && err.type === 'entity.parse.failed') return restError(res, 400, 'bad_request', 'malformed JSON body');
  if (err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    return restError(res, 400, 'bad_request', 'could not read the body');
  }
  console.error('request failed:', err);
  restError(res, 503, 'unavailable', 'temporarily unavailable, retry later');
});

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

const sessions = new Map(); // user id -> Set<WebSocket>
let sessionCounter = 0;
const sessionPrefix = crypto.randomBytes(3).toString('hex');
let draining = false;

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: HARD_FRAME_CAP,
  handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
});

function refuse(socket, status, reason, code, message) {
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function onUpgrade(req, socket, head) {
  socket.on('error', noop);
  const url = req.url;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  if (draining) return refuse(socket, 503, 'Service Unavailable', 'unavailable', 'server is draining');
  let token = null;
  if (q >= 0) token = new URLSearchParams(url.slice(q + 1)).get('token');
  if (token === null) {
    const h = req.headers.authorization;
    if (typeof h === 'string' && h.startsWith('Bearer ')) token = h.slice(7);
  }
  if (token === null || token === '') return refuse(socket, 401, 'Unauthorized', 'unauthorized', 'missing token');
  const user = tokens.get(token);
  if (user === undefined) return refuse(socket, 401, 'Unauthorized', 'unauthorized', 'invalid or expired token');
  const proto = req.headers['sec-websocket-protocol'];
  if (proto !== undefined && !proto.split(',').some((p) => p.trim() === PROTOCOL)) {
    return refuse(socket, 400, 'Bad Request', 'invalid', 'unsupported subprotocol; use jbk.v1.json');
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user.id));
}

function noop() {}

function onConnection(ws, uid) {
  // Per-connection state: three small fields on the socket object, shared handlers.
  ws.uid = uid;
  ws.inflight = 0;
  ws.idle = 0;
  let set = sessions.get(uid);
  if (set === undefined) {
    set = new Set();
    sessions.set(uid, set);
  }
  set.add(ws);
  const session = `${sessionPrefix}-${++sessionCounter}`;
  ws.send(
    `{"type":"hello","user":${JSON.stringify(uid)},"session":"${session}","heartbeat_ms":${HEARTBEAT_MS},` +
      `"max_frame_bytes":${MAX_FRAME_BYTES},"protocol":"${PROTOCOL}"}`,
  );
  ws.on('message', onMessage);
  ws.on('pong', onPong);
  ws.on('close', onClose);
  ws.on('error', noop);
}

function onPong() {
  this.idle = 0;
}

function onClose() {
  const set = sessions.get(this.uid);
  if (set !== undefined) {
    set.delete(this);
    if (set.size === 0) sessions.delete(this.uid);
  }
}

function push(ws, data) {
  if (ws.readyState !== 1) return;
  if (ws.bufferedAmount > SLOW_CONSUMER_BYTES) {
    ws.close(4008, 'slow_consumer');
    ws.terminate();
    return;
  }
  ws.send(data, TEXT);
}

function sendError(ws, id, code, message) {
  push(ws, JSON.stringify({ type: 'error', id, code, message }));
}

/** The request id of a frame: number, short string, or null. `undefined` means invalid. */
function requestId(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string') return Buffer.byteLength(v) <= 64 ? v : null;
  return undefined;
}

function onMessage(data, isBinary) {
  const ws = this;
  ws.idle = 0;
  if (data.length > MAX_FRAME_BYTES) return sendError(ws, null, 'too_large', 'frame too large');
  let f;
  try {
    f = JSON.parse(data);
  } catch {
    return sendError(ws, null, 'bad_frame', 'frame is not valid JSON');
  }
  if (f === null || typeof f !== 'object' || Array.isArray(f)) {
    return sendError(ws, null, 'bad_frame', 'frame is not an object');
  }
  const id = requestId(f.id);
  if (id === undefined) return sendError(ws, null, 'invalid', 'invalid: bad id');
  const type = f.type;
  if (type === 'send') return onSend(ws, id, f);
  if (type === 'ping') return push(ws, `{"type":"pong","id":${JSON.stringify(id)}}`);
  if (typeof type !== 'string') return sendError(ws, id, 'invalid', 'invalid: type must be a string');
  return sendError(ws, id, 'unknown_type', `unknown frame type: ${type}`);
}

function onSend(ws, id, f) {
  const conv = parseId(f.conv);
  if (conv === null) return sendError(ws, id, 'invalid', 'invalid: bad conv');
  const cmid = f.cmid;
  if (typeof cmid !== 'string' || !CMID_RE.test(cmid)) return sendError(ws, id, 'invalid', 'invalid: bad cmid');
  const body = f.body;
  if (
    body === null ||
    typeof body !== 'object' ||
    body.kind !== 'text' ||
    typeof body.text !== 'string' ||
    body.text.length === 0 ||
    // 1..4000 Unicode scalar values (a UTF-16 length above 4000 may still be in range)
    (body.text.length > 4000 && (body.text.length > 8000 || Array.from(body.text).length > 4000)) ||
    body.text.trim().length === 0
  ) {
    return sendError(ws, id, 'invalid', 'invalid: body must be {"kind":"text","text":"1..4000 characters"}');
  }
  const msgBody = { kind: 'text', text: body.text };
  const c = store.members(conv);
  if (c === undefined || typeof c.then !== 'function') return sendKnown(ws, id, conv, c, cmid, msgBody);
  begin(ws);
  c.then(
    (cc) => {
      end(ws);
      sendKnown(ws, id, conv, cc, cmid, msgBody);
    },
    (e) => {
      end(ws);
      console.error('members lookup failed:', e.message);
      sendError(ws, id, 'unavailable', 'temporarily unavailable; retry with the same cmid');
    },
  );
}

function sendKnown(ws, id, conv, c, cmid, body) {
  if (c === undefined) return sendError(ws, id, 'not_found', 'not found: conversation');
  const uid = ws.uid;
  if (!c.memberSet.has(uid)) return sendError(ws, id, 'forbidden', 'forbidden: not a member of this conversation');
  if (MODE === 'memory') {
    // Synchronous: acks and deliveries happen in seq order by construction.
    const a = store.append(c, uid, cmid, body);
    if (ack(ws, id, c, cmid, a)) fanout(ws, c, a.seq, a.ts, uid, cmid, body);
    return;
  }
  begin(ws);
  c.inflight++;
  store.append(c, uid, cmid, body).then(
    (a) => {
      c.inflight--;
      end(ws);
      if (ack(ws, id, c, cmid, a)) sequence(c, ws, a.seq, a.ts, uid, cmid, body);
    },
    (e) => {
      c.inflight--;
      end(ws);
      console.error('append failed:', e.message);
      sendError(ws, id, 'unavailable', 'temporarily unavailable; retry with the same cmid');
    },
  );
}

/** Sends the ack (or the conflict error). True when the message is new and must be delivered. */
function ack(ws, id, c, cmid, a) {
  if (a.duplicate && a.conv !== c.id) {
    sendError(ws, id, 'conflict', 'conflict: cmid already used in another conversation');
    return false;
  }
  push(
    ws,
    `{"type":"ack","id":${JSON.stringify(id)},"conv":"${a.conv}","cmid":${JSON.stringify(cmid)},` +
      `"seq":${a.seq},"ts":${a.ts},"duplicate":${a.duplicate}}`,
  );
  return !a.duplicate;
}

/** Every other session of every member gets the msg; the frame is encoded once. */
function fanout(origin, c, seq, ts, uid, cmid, body) {
  let frame = null;
  const members = c.members;
  for (let i = 0; i < members.length; i++) {
    const set = sessions.get(members[i]);
    if (set === undefined) continue;
    for (const s of set) {
      if (s === origin) continue;
      if (frame === null) {
        frame = Buffer.from(
          `{"type":"msg","conv":"${c.id}","seq":${seq},"from":"${uid}","cmid":${JSON.stringify(cmid)},` +
            `"ts":${ts},"body":${JSON.stringify(body)}}`,
        );
      }
      push(s, frame);
    }
  }
}

// MySQL mode: transactions of one conversation commit in seq order (the row lock on
// conversations serializes them), but their COMMIT replies reach Node over different pool
// connections in any order. Deliveries are therefore put back in seq order per conversation;
// acks are not held back (the protocol answers in completion order).
const gapped = new Set(); // entries with messages waiting for a smaller seq
const GAP_TIMEOUT_MS = 2000;

function sequence(c, origin, seq, ts, uid, cmid, body) {
  if (seq === c.next) {
    c.next++;
    fanout(origin, c, seq, ts, uid, cmid, body);
    if (c.pending !== null) drain(c);
  } else if (seq < c.next) {
    fanout(origin, c, seq, ts, uid, cmid, body); // cannot happen with one writer process
  } else {
    if (c.pending === null) {
      c.pending = new Map();
      c.gapSince = Date.now();
      gapped.add(c);
    }
    c.pending.set(seq, { origin, seq, ts, uid, cmid, body });
  }
}

function drain(c) {
  let m;
  while ((m = c.pending.get(c.next)) !== undefined) {
    c.pending.delete(c.next);
    c.next++;
    c.gapSince = Date.now();
    fanout(m.origin, c, m.seq, m.ts, m.uid, m.cmid, m.body);
  }
  if (c.pending.size === 0) {
    c.pending = null;
    gapped.delete(c);
  }
}

// A seq that never shows up (another writer on the same tables, a commit lost in an unknown
// state) must not stall a conversation: skip the gap after GAP_TIMEOUT_MS.
const gapTimer = setInterval(() => {
  if (gapped.size === 0) return;
  const now = Date.now();
  for (const c of gapped) {
    if (now - c.gapSince < GAP_TIMEOUT_MS) continue;
    let min = Infinity;
    for (const k of c.pending.keys()) if (k < min) min = k;
    console.error(`conv ${c.id}: seq ${c.next}..${min - 1} never committed here; skipping the gap`);
    c.next = min;
    drain(c);
  }
}, 500);
gapTimer.unref();

// Backpressure: past MAX_INFLIGHT pending requests, stop reading this socket.
function begin(ws) {
  if (++ws.inflight === MAX_INFLIGHT) ws.pause();
}
function end(ws) {
  if (ws.inflight-- === MAX_INFLIGHT) ws.resume();
}

// Heartbeat: one timer for all sockets. Any received frame or Pong resets `idle`.
const heartbeat = setInterval(() => {
  for (const set of sessions.values()) {
    for (const ws of set) {
      if (++ws.idle >= 3) {
        ws.close(4002, 'heartbeat_timeout');
        ws.terminate();
      } else if (ws.readyState === 1) {
        ws.ping();
      }
    }
  }
}, HEARTBEAT_MS);
heartbeat.unref();

// ---------------------------------------------------------------------------------------------
// Start and stop
// ---------------------------------------------------------------------------------------------

function parseListen(s) {
  const i = s.lastIndexOf(':');
  if (i < 0) return { host: '127.0.0.1', port: Number(s) };
  let host = s.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host: host || '0.0.0.0', port: Number(s.slice(i + 1)) };
}

const server = http.createServer({ keepAlive: true }, app);
server.keepAliveTimeout = 65000;
server.on('upgrade', onUpgrade);

async function main() {
  await store.init();
  const { host, port } = parseListen(LISTEN);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, resolve);
  });
  const a = server.address();
  const shown = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  console.log(`peer listening on ${shown} mode=${MODE}`);
}

let stopping = false;
async function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  draining = true;
  const force = setTimeout(() => process.exit(0), 5000);
  force.unref();
  server.close();
  server.closeAllConnections();
  for (const set of sessions.values()) {
    for (const ws of set) {
      ws.close(1012, 'server_restart');
      ws.terminate();
    }
  }
  sessions.clear();
  clearInterval(heartbeat);
  clearInterval(gapTimer);
  try {
    await store.close();
  } catch (e) {
    console.error('closing the store failed:', e.message);
  }
  console.log(`peer stopped (${sig})`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

main().catch((e) => {
  console.error('peer failed to start:', e);
  process.exit(1);
});
