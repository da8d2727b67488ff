'use strict';
// Smoke test for a running peer (or any server speaking the same jbk.v1.json subset).
// Starts nothing: PEER_URL (default http://127.0.0.1:9090) must already answer.
// Exit 0 on success, 1 with the failures listed otherwise.

const crypto = require('node:crypto');
const WebSocket = require('ws');

const BASE = (process.env.PEER_URL || 'http://127.0.0.1:9090').replace(/\/+$/, '');
const WS_BASE = BASE.replace(/^http/, 'ws');
const N = Number(process.env.SMOKE_N || 100);
const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS || 30000);

const failures = [];
function check(cond, what) {
  if (!cond) failures.push(what);
  return cond;
}

async function http(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

async function login(code) {
  const r = await http('POST', '/api/v1/auth/login', { code });
  if (r.status !== 200 || !r.json || typeof r.json.token !== 'string' || typeof r.json.user?.id !== 'string') {
    throw new Error(`login ${code}: ${r.status} ${r.text}`);
  }
  return r.json;
}

/** Opens a socket and collects every frame; resolves after `hello`. */
function connect(token, label) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${WS_BASE}/ws?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
    const s = { ws, label, frames: [], acks: new Map(), msgs: [], other: [], hello: null, waiters: [] };
    ws.on('message', (data) => {
      let f;
      try {
        f = JSON.parse(data);
      } catch {
        failures.push(`${label}: unparsable server frame ${String(data).slice(0, 200)}`);
        return;
      }
      s.frames.push(f);
      if (f.type === 'hello' && s.hello === null) {
        s.hello = f;
        resolve(s);
      } else if (s.hello === null) {
        failures.push(`${label}: first frame is not hello: ${JSON.stringify(f)}`);
      } else if (f.type === 'ack') {
        if (s.acks.has(f.cmid)) failures.push(`${label}: second ack for cmid ${f.cmid}`);
        s.acks.set(f.cmid, f);
      } else if (f.type === 'msg') {
        s.msgs.push(f);
      } else {
        s.other.push(f);
      }
      for (const w of s.waiters.splice(0)) w();
    });
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => reject(new Error(`${label}: upgrade refused with ${res.statusCode}`)));
  });
}

function waitUntil(pred, what, ms = TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    const poll = setInterval(() => {
      if (pred()) {
        clearTimeout(deadline);
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the first frame (other than ack/msg) for which pred holds. */
async function reply(s, pred, what) {
  await waitUntil(() => s.other.some(pred), what, 5000);
  return s.other.find(pred);
}

function upgradeStatus(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', () => resolve(-1));
  });
}

async function main() {
  // SMOKE_RUN fixes the login codes (to rerun against the same users and conversation).
  const run = process.env.SMOKE_RUN || crypto.randomBytes(4).toString('hex');
  const tag = crypto.randomBytes(3).toString('hex'); // cmids are fresh on every execution
  const pa = `a-${tag}`;
  const pb = `b-${tag}`;

  // --- REST -----------------------------------------------------------------------------------
  const h = await http('GET', '/healthz');
  check(h.status === 200 && h.json?.status === 'ok', `healthz: ${h.status} ${h.text}`);

  const a = await login(`smoke-a-${run}`);
  const b = await login(`smoke-b-${run}`);
  const c = await login(`smoke-c-${run}`);
  const a2 = await login(`smoke-a-${run}`);
  check(a2.user.id === a.user.id, `same code, different user ids: ${a.user.id} vs ${a2.user.id}`);
  check(a.user.id !== b.user.id, 'two codes, same user id');
  check(/^[0-9]+$/.test(a.user.id), `user id is not a decimal string: ${JSON.stringify(a.user.id)}`);

  const noAuth = await http('POST', '/api/v1/conversations', { kind: 'direct', members: [b.user.id] });
  check(noAuth.status === 401 && noAuth.json?.code === 'unauthorized', `no token: ${noAuth.status} ${noAuth.text}`);
  const badAuth = await http('POST', '/api/v1/conversations', { kind: 'direct', members: [b.user.id] }, 'nope');
  check(badAuth.status === 401 && badAuth.json?.code === 'unauthorized', `bad token: ${badAuth.status} ${badAuth.text}`);

  const conv = await http('POST', '/api/v1/conversations', { kind: 'direct', members: [b.user.id] }, a.token);
  if (!check(conv.status === 200 && typeof conv.json?.id === 'string', `open direct: ${conv.status} ${conv.text}`)) {
    throw new Error('cannot continue without a conversation');
  }
  const convId = conv.json.id;
  check(conv.json.kind === 'direct', `direct kind: ${conv.text}`);
  check(
    Array.isArray(conv.json.members) && conv.json.members.length === 2 &&
      conv.json.members.includes(a.user.id) && conv.json.members.includes(b.user.id),
    `direct members: ${conv.text}`,
  );
  const again = await http('POST', '/api/v1/conversations', { kind: 'direct', members: [a.user.id] }, b.token);
  check(again.status === 200 && again.json?.id === convId, `same pair, other conversation: ${again.text}`);

  const group = await http('POST', '/api/v1/conversations', { kind: 'group', title: '云南行', members: [b.user.id, Number(c.user.id)] }, a.token);
  check(
    group.status === 200 && group.json?.kind === 'group' && group.json.id !== convId &&
      group.json.members?.length === 3 && group.json.members[0] === a.user.id,
    `group: ${group.status} ${group.text}`,
  );

  // Members of a group: the owner adds, others cannot, direct conversations cannot change.
  const d = await login(`smoke-d-${run}`);
  if (group.json?.id) {
    const add = await http('POST', `/api/v1/conversations/${group.json.id}/members`, { members: [d.user.id, b.user.id] }, a.token);
    check(add.status === 200 && add.json?.members?.length === 4 && add.json.members[3] === d.user.id, `add member: ${add.status} ${add.text}`);
    const notOwner = await http('POST', `/api/v1/conversations/${group.json.id}/members`, { members: [c.user.id] }, b.token);
    check(notOwner.status === 403 && notOwner.json?.code === 'forbidden', `add member as non-owner: ${notOwner.status} ${notOwner.text}`);
  }
  const addDirect = await http('POST', `/api/v1/conversations/${convId}/members`, { members: [c.user.id] }, a.token);
  check(addDirect.status === 422 && addDirect.json?.code === 'invalid', `add member to direct: ${addDirect.status} ${addDirect.text}`);
  const me = await http('GET', '/api/v1/me', undefined, b.token);
  check(me.status === 200 && me.json?.id === b.user.id, `me: ${me.status} ${me.text}`);

  // --- WebSocket refusals ---------------------------------------------------------------------
  check((await upgradeStatus(`${WS_BASE}/ws`)) === 401, 'ws without token is not refused with 401');
  check((await upgradeStatus(`${WS_BASE}/ws?token=bogus`)) === 401, 'ws with a bad token is not refused with 401');

  // --- Sessions -------------------------------------------------------------------------------
  const sa = await connect(a.token, 'A');
  const sa2 = await connect(a2.token, 'A2 (second session of A)');
  const sb = await connect(b.token, 'B');
  const sc = await connect(c.token, 'C (not a member)');
  for (const [s, u] of [[sa, a], [sb, b], [sc, c]]) {
    const hl = s.hello;
    check(
      hl.user === u.user.id && typeof hl.session === 'string' && hl.heartbeat_ms === 25000 &&
        hl.max_frame_bytes === 65536 && hl.protocol === 'jbk.v1.json',
      `${s.label}: bad hello ${JSON.stringify(hl)}`,
    );
  }
  check(sa.hello.session !== sa2.hello.session, 'two sessions share a session id');

  // ping / unknown / bad frame / forbidden
  sa.ws.send(JSON.stringify({ type: 'ping', id: 'p1' }));
  const pong = await reply(sa, (f) => f.type === 'pong', 'pong');
  check(pong.id === 'p1', `pong id: ${JSON.stringify(pong)}`);
  sa.ws.send(JSON.stringify({ type: 'bogus', id: 7 }));
  const unk = await reply(sa, (f) => f.type === 'error' && f.code === 'unknown_type', 'unknown_type');
  check(unk.id === 7, `unknown_type id: ${JSON.stringify(unk)}`);
  sa.ws.send('{not json');
  const bad = await reply(sa, (f) => f.type === 'error' && f.code === 'bad_frame', 'bad_frame');
  check(bad.id === null, `bad_frame id: ${JSON.stringify(bad)}`);
  sc.ws.send(JSON.stringify({ type: 'send', id: 99, conv: convId, cmid: 'c-1', body: { kind: 'text', text: 'hi' } }));
  const forb = await reply(sc, (f) => f.type === 'error' && f.code === 'forbidden', 'forbidden');
  check(forb.id === 99, `forbidden id: ${JSON.stringify(forb)}`);

  // --- N messages from each side, interleaved, without waiting for acks -----------------------
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    sa.ws.send(JSON.stringify({ type: 'send', id: i, conv: convId, cmid: `${pa}-${i}`, body: { kind: 'text', text: `from a ${i}` } }));
    sb.ws.send(JSON.stringify({ type: 'send', id: `b${i}`, conv: Number(convId), cmid: `${pb}-${i}`, body: { kind: 'text', text: `from b ${i} 你好` } }));
  }
  await waitUntil(
    () => sa.acks.size >= N && sb.acks.size >= N && sb.msgs.length >= N && sa.msgs.length >= N && sa2.msgs.length >= 2 * N,
    'all acks and deliveries',
  ).catch((e) => failures.push(`${e.message}: A acks ${sa.acks.size}, B acks ${sb.acks.size}, A msgs ${sa.msgs.length}, B msgs ${sb.msgs.length}, A2 msgs ${sa2.msgs.length}`));
  const elapsed = Date.now() - t0;
  await sleep(300); // let any stray extra frame arrive

  // Acks: every send acked once, seqs of the conversation exactly 1..2N.
  const seqs = [];
  for (const [s, prefix, idOf, who] of [
    [sa, pa, (i) => i, a.user.id],
    [sb, pb, (i) => `b${i}`, b.user.id],
  ]) {
    for (let i = 0; i < N; i++) {
      const k = s.acks.get(`${prefix}-${i}`);
      if (!check(k !== undefined, `${s.label}: no ack for ${prefix}-${i}`)) continue;
      check(k.id === idOf(i), `${s.label}: ack id ${JSON.stringify(k.id)} for ${prefix}-${i}`);
      check(k.conv === convId, `${s.label}: ack conv ${JSON.stringify(k.conv)}`);
      check(k.duplicate === false, `${s.label}: ack duplicate ${k.duplicate}`);
      check(Number.isInteger(k.seq) && Number.isInteger(k.ts), `${s.label}: ack seq/ts not integers: ${JSON.stringify(k)}`);
      seqs.push(k.seq);
    }
    void who;
  }
  // A new conversation starts at 1; a reused one (SMOKE_RUN) continues from its last_seq.
  const base = typeof conv.json.last_seq === 'number' ? conv.json.last_seq : 0;
  seqs.sort((x, y) => x - y);
  for (let i = 0; i < seqs.length; i++) {
    if (!check(seqs[i] === base + i + 1, `conversation seqs are not ${base + 1}..${base + 2 * N} without gaps or reuse: at ${i} got ${seqs[i]}`)) break;
  }

  // Deliveries: each side gets exactly the other's N messages once, in seq order, matching acks.
  for (const [rcv, snd, prefix, fromId] of [
    [sb, sa, pa, a.user.id],
    [sa, sb, pb, b.user.id],
  ]) {
    const got = rcv.msgs.filter((m) => m.conv === convId);
    check(got.length === N, `${rcv.label}: ${got.length} msgs, expected ${N}`);
    const seen = new Set();
    let last = 0;
    for (const m of got) {
      check(m.from === fromId, `${rcv.label}: msg from ${m.from}, expected ${fromId} (own message echoed?)`);
      check(!seen.has(m.cmid), `${rcv.label}: ${m.cmid} delivered twice`);
      seen.add(m.cmid);
      check(m.seq > last, `${rcv.label}: msg seq ${m.seq} after ${last}: out of order`);
      last = m.seq;
      const k = snd.acks.get(m.cmid);
      check(k !== undefined && k.seq === m.seq && k.ts === m.ts, `${rcv.label}: msg ${m.cmid} seq/ts ${m.seq}/${m.ts} differs from ack ${JSON.stringify(k)}`);
      const i = Number(m.cmid.slice(m.cmid.lastIndexOf('-') + 1));
      const text = prefix === pa ? `from a ${i}` : `from b ${i} 你好`;
      check(m.body?.kind === 'text' && m.body.text === text, `${rcv.label}: body of ${m.cmid}: ${JSON.stringify(m.body)}`);
      check(m.type === 'msg' && typeof m.ts === 'number', `${rcv.label}: malformed msg ${JSON.stringify(m)}`);
    }
    for (let i = 0; i < N; i++) check(seen.has(`${prefix}-${i}`), `${rcv.label}: ${prefix}-${i} never delivered`);
  }
  // The other session of A sees everything (its own user's messages included), in seq order.
  check(sa2.msgs.length === 2 * N, `A2: ${sa2.msgs.length} msgs, expected ${2 * N}`);
  for (let i = 0; i < sa2.msgs.length; i++) {
    if (!check(sa2.msgs[i].seq === base + i + 1, `A2: msg ${i} has seq ${sa2.msgs[i].seq}, expected ${base + i + 1}`)) break;
  }
  check(sc.msgs.length === 0, `C (not a member) got ${sc.msgs.length} msgs`);

  // The conversation list shows the conversation with its new last_seq.
  const list = await http('GET', '/api/v1/conversations', undefined, b.token);
  const mine = list.json?.conversations?.find((x) => x.id === convId);
  check(list.status === 200 && mine !== undefined && mine.last_seq === base + 2 * N && mine.read_seq === 0, `conversation list: ${list.status} ${JSON.stringify(mine)}`);

  // Idempotent resend: same cmid gets the original seq and is not delivered again.
  const before = { a: sa.msgs.length, b: sb.msgs.length, a2: sa2.msgs.length };
  const a0 = `${pa}-0`;
  const orig = sa.acks.get(a0);
  sa.acks.delete(a0);
  sa.ws.send(JSON.stringify({ type: 'send', id: 'again', conv: convId, cmid: a0, body: { kind: 'text', text: 'from a 0' } }));
  await waitUntil(() => sa.acks.has(a0), 'ack of the resend', 5000).catch((e) => failures.push(e.message));
  const dup = sa.acks.get(a0);
  if (dup && orig) {
    check(dup.duplicate === true && dup.seq === orig.seq && dup.ts === orig.ts && dup.id === 'again', `resend ack: ${JSON.stringify(dup)} (original ${JSON.stringify(orig)})`);
  }
  await sleep(200);
  check(sb.msgs.length === before.b && sa2.msgs.length === before.a2 && sa.msgs.length === before.a, 'a resend was delivered again');

  for (const s of [sa, sa2, sb, sc]) s.ws.close();

  if (failures.length) {
    console.error(`smoke FAILED against ${BASE} (${failures.length} problems):`);
    for (const f of failures.slice(0, 50)) console.error(`  - ${f}`);
    if (failures.length > 50) console.error(`  ... and ${failures.length - 50} more`);
    process.exit(1);
  }
  console.log(`smoke ok against ${BASE}: conv ${convId}, ${2 * N} messages acked with seq ${base + 1}..${base + 2 * N}, each delivered once in order to the peer and the second session, none echoed (${elapsed} ms)`);
  process.exit(0);
}

main().catch((e) => {
  console.error(`smoke FAILED against ${BASE}: ${e.stack || e.message}`);
  for (const f of failures) console.error(`  - ${f}`);
  process.exit(1);
});
