//! Cluster mode with real processes on the real engines: three (or more) `jiebanke` nodes
//! sharing MariaDB and Redis. Cross-node chat, typing, read and presence; presence expiry after
//! kill -9 of a node; membership changes seen by every node; a Redis restart under traffic; a
//! node killed mid-traffic with nothing acked lost.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const SECRET: &str = "cluster-test-secret-0123456789abcdef";

/// The environment of one node of the test's cluster.
fn node_env(redis_url: &str, prefix: &str, node: &str, ttl_ms: u64) -> Vec<(String, String)> {
    vec![
        ("JBK_REDIS_URL".into(), redis_url.into()),
        ("JBK_REDIS_PREFIX".into(), prefix.into()),
        ("JBK_NODE_ID".into(), node.into()),
        ("JBK_PRESENCE_TTL_MS".into(), ttl_ms.to_string()),
        ("JBK_JWT_SECRET".into(), SECRET.into()),
    ]
}

async fn start_node(db: &TestDb, redis_url: &str, prefix: &str, node: &str, ttl_ms: u64) -> ServerProcess {
    start_node_at(db, redis_url, prefix, node, ttl_ms, free_port()).await
}

async fn start_node_at(db: &TestDb, redis_url: &str, prefix: &str, node: &str, ttl_ms: u64, port: u16) -> ServerProcess {
    let env = node_env(redis_url, prefix, node, ttl_ms);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = ServerProcess::start_role(db, "serve", port, &env).await;
    p.wait_status("ready", Duration::from_secs(10)).await;
    p
}

/// Receives until a frame of type `ty` matching `pred` (others skipped).
async fn recv_where(c: &mut Client, ty: &str, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] == ty && pred(&v) {
            return v;
        }
    }
}

async fn group(http: &reqwest::Client, base: &str, owner: &LoggedIn, others: &[&LoggedIn]) -> String {
    let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
    let (s, v) = post(http, format!("{base}/api/v1/conversations"), &owner.token, json!({"kind":"group","title":"同行","members":ids})).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_carry_chat_typing_read_presence_and_membership() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let n1 = start_node(&db, &redis.url, &redis.prefix, "n1", 30_000).await;
    let n2 = start_node(&db, &redis.url, &redis.prefix, "n2", 30_000).await;
    let n3 = start_node(&db, &redis.url, &redis.prefix, "n3", 30_000).await;
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "cl-a").await;
    let b = login(&http, &n2.base(), "cl-b").await;
    let c = login(&http, &n3.base(), "cl-c").await;
    let d = login(&http, &n1.base(), "cl-d").await;
    let conv = group(&http, &n1.base(), &a, &[&b, &c]).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb = connect(n2.addr, &b.token, Proto::MsgPack).await;
    let mut cc = connect(n3.addr, &c.token, Proto::Json).await;

    // One message each way: same seq everywhere.
    let ack = ca.say(1, &conv, "a1", "从节点一").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let seq = ack["seq"].as_u64().unwrap();
    for cl in [&mut cb, &mut cc] {
        let m = recv_where(cl, "msg", |_| true).await;
        assert_eq!((m["conv"].as_str(), m["seq"].as_u64(), m["cmid"].as_str()), (Some(conv.as_str()), Some(seq), Some("a1")), "{m}");
    }
    let ack = cb.say(2, &conv, "b1", "从节点二").await;
    let seq_b = ack["seq"].as_u64().unwrap();
    assert_eq!(seq_b, seq + 1);
    for cl in [&mut ca, &mut cc] {
        let m = recv_where(cl, "msg", |_| true).await;
        assert_eq!(m["seq"].as_u64(), Some(seq_b), "{m}");
        assert_eq!(m["from"].as_str(), Some(b.id.as_str()));
    }

    // Three senders on three nodes at once: every member sees every other member's message
    // once, in seq order, and the log is dense.
    let per = 30u64;
    for i in 0..per {
        ca.send_text(100 + i, &conv, &format!("ma{i}"), "a").await;
        cb.send_text(100 + i, &conv, &format!("mb{i}"), "b").await;
        cc.send_text(100 + i, &conv, &format!("mc{i}"), "c").await;
    }
    let mut seen: HashMap<&str, Vec<u64>> = HashMap::new();
    for (name, cl) in [("a", &mut ca), ("b", &mut cb), ("c", &mut cc)] {
        let (mut acks, mut msgs) = (0, Vec::new());
        while acks < per || (msgs.len() as u64) < 2 * per {
            let v = cl.recv().await;
            match v["type"].as_str().unwrap() {
                "ack" => acks += 1,
                "msg" => {
                    assert_ne!(v["cmid"].as_str().unwrap().chars().nth(1), name.chars().next(), "{name} got its own message as msg: {v}");
                    msgs.push(v["seq"].as_u64().unwrap());
                }
                _ => {}
            }
        }
        let mut sorted = msgs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(msgs, sorted, "{name}: messages in seq order, once");
        seen.insert(name, msgs);
    }
    let log = ca.sync_all(&conv, 0).await;
    let seqs: Vec<u64> = log.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=2 + 3 * per).collect::<Vec<_>>(), "dense log");

    // Typing and read cross nodes.
    cc.send(json!({"type":"typing","conv":conv})).await;
    for cl in [&mut ca, &mut cb] {
        let t = recv_where(cl, "typing", |_| true).await;
        assert_eq!(t["user"].as_str(), Some(c.id.as_str()));
    }
    cb.send(json!({"type":"read","id":7,"conv":conv,"seq":2})).await;
    let r = recv_where(&mut ca, "read", |v| v["user"] == b.id.as_str()).await;
    assert_eq!(r["seq"].as_u64(), Some(2));
    recv_where(&mut cc, "read", |v| v["user"] == b.id.as_str()).await;

    // Presence across nodes: c (node 3) watches a (node 1) and d (nobody yet).
    cc.send(json!({"type":"presence_subscribe","id":8,"users":[a.id, d.id]})).await;
    let p = recv_where(&mut cc, "presence", |v| v["user"] == a.id.as_str()).await;
    assert_eq!(p["online"], true, "a is online on another node: {p}");
    let p = recv_where(&mut cc, "presence", |v| v["user"] == d.id.as_str()).await;
    assert_eq!(p["online"], false);
    let mut cd = connect(n2.addr, &d.token, Proto::Json).await;
    let p = recv_where(&mut cc, "presence", |v| v["user"] == d.id.as_str()).await;
    assert_eq!(p["online"], true, "d came online on node 2: {p}");
    // A second session on another node changes nothing; closing the first leaves d online.
    let cd3 = connect(n3.addr, &d.token, Proto::Json).await;
    drop(cd);
    // Node 2 has finished closing that session once its gauge counts only b's (a session's
    // presence step comes before the gauge); c, asking again, still sees d online.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&n2.metrics_base(), "jbk_ws_connections").await != Some(1.0) {
        assert!(tokio::time::Instant::now() < deadline, "node 2 never closed d's first session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cc.send(json!({"type":"presence_subscribe","id":9,"users":[d.id]})).await;
    let p = recv_where(&mut cc, "presence", |v| v["user"] == d.id.as_str()).await;
    assert_eq!(p["online"], true, "closing the first of d's two sessions left d offline: {p}");
    drop(cd3);
    let p = recv_where(&mut cc, "presence", |v| v["user"] == d.id.as_str()).await;
    assert_eq!(p["online"], false, "offline only when the last session on any node closed: {p}");
    assert!(p["last_seen"].as_i64().is_some());

    // Membership: the owner on node 1 adds d; node 2 (which cached the members) must route to d
    // on node 3 at once, and a member removed on node 1 gets nothing more from node 3.
    let (s, v) = post(&http, format!("{}/api/v1/conversations/{conv}/members", n1.base()), &a.token, json!({"members":[d.id]})).await;
    assert_eq!(s, 200, "{v}");
    cd = connect(n3.addr, &d.token, Proto::Json).await;
    // The invalidation crosses through Redis; a send racing it may still use node 2's old
    // list, so b keeps sending until d has one live (bounded, not timed).
    let mut got = false;
    for i in 0..50u64 {
        let ack = cb.say(200 + i, &conv, &format!("b-after-add-{i}"), "欢迎").await;
        assert_eq!(ack["type"], "ack", "{ack}");
        if let Some(Event::Frame(m)) = cd.next_event(Duration::from_millis(200)).await {
            if m["type"] == "msg" {
                assert_eq!(m["seq"], ack["seq"], "{m}");
                got = true;
                break;
            }
        }
    }
    assert!(got, "a member added on node 1 never got node 2's messages live");

    // Removal: the owner on node 1 removes d. No node may route the group to d any more (a
    // member list cached on node 2 or 3 and not dropped would leak messages to d's socket).
    let dm = direct(&http, &n3.base(), &c, &d).await;
    let s = delete(&http, format!("{}/api/v1/conversations/{conv}/members/{}", n1.base(), d.id), &a.token).await;
    assert_eq!(s, 204);
    // a writes on node 1 after the removal. b (node 2) and c (node 3) getting it shows their
    // nodes have read what node 1 published before it, the removal's invalidation included
    // (one Redis; a subscriber reads in publish order). Then b writes on node 2, c on node 3.
    let after = ["a-after-remove", "b-after-remove", "c-after-remove"];
    assert_eq!(ca.say(300, &conv, after[0], "再见").await["type"], "ack");
    recv_where(&mut cb, "msg", |v| v["cmid"] == after[0]).await;
    recv_where(&mut cc, "msg", |v| v["cmid"] == after[0]).await;
    assert_eq!(cb.say(301, &conv, after[1], "再见").await["type"], "ack");
    recv_where(&mut ca, "msg", |v| v["cmid"] == after[1]).await;
    recv_where(&mut cc, "msg", |v| v["cmid"] == after[1]).await;
    assert_eq!(cc.say(302, &conv, after[2], "再见").await["type"], "ack");
    recv_where(&mut ca, "msg", |v| v["cmid"] == after[2]).await;
    recv_where(&mut cb, "msg", |v| v["cmid"] == after[2]).await;
    // Node 3 has handed c the group's messages. One that reached node 3 for d out of order (a
    // stale list on node 2 sends d seq n+2, node 1 rightly skipped n+1) is held for the gap and
    // read from storage after `GAP_WAIT`: wait well past that, then c writes to d directly on
    // node 3, so every frame node 3 queued for d's socket before comes first. None is one of
    // those messages.
    tokio::time::sleep(jiebanke_cluster::node::GAP_WAIT * 10).await;
    assert_eq!(cc.say(303, &dm, "c-to-d", "私聊").await["type"], "ack");
    loop {
        let v = cd.recv().await;
        if v["type"] != "msg" {
            continue;
        }
        assert!(!(v["conv"] == conv.as_str() && after.contains(&v["cmid"].as_str().unwrap_or(""))), "d, removed, got {v}");
        if v["cmid"] == "c-to-d" {
            break;
        }
    }
    drop((n1, n2, n3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_users_go_offline_within_the_ttl() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let ttl = 1_000;
    let mut n1 = start_node(&db, &redis.url, &redis.prefix, "k1", ttl).await;
    let n2 = start_node(&db, &redis.url, &redis.prefix, "k2", ttl).await;
    let _n3 = start_node(&db, &redis.url, &redis.prefix, "k3", ttl).await;
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "kp-a").await;
    let b = login(&http, &n2.base(), "kp-b").await;
    let ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb = connect(n2.addr, &b.token, Proto::Json).await;
    cb.send(json!({"type":"presence_subscribe","id":1,"users":[a.id]})).await;
    let p = recv_where(&mut cb, "presence", |_| true).await;
    assert_eq!(p["online"], true, "{p}");

    n1.kill9();
    // The other nodes see node k1 go silent and take its users offline. The wait is generous
    // (the bound is the TTL plus one heartbeat period); what is checked is that it happens.
    let p = tokio::time::timeout(Duration::from_secs(15), recv_where(&mut cb, "presence", |v| v["user"] == a.id.as_str()))
        .await
        .expect("a never shown offline after its node died");
    assert_eq!(p["online"], false, "{p}");
    assert!(p["last_seen"].as_i64().is_some());
    // Queried again, it is offline too (the directory no longer holds the dead node).
    cb.send(json!({"type":"presence_subscribe","id":2,"users":[a.id]})).await;
    let p = recv_where(&mut cb, "presence", |_| true).await;
    assert_eq!(p["online"], false);
    // a reconnects to a live node: online again.
    let _ca = connect(n2.addr, &a.token, Proto::Json).await;
    let p = recv_where(&mut cb, "presence", |_| true).await;
    assert_eq!(p["online"], true);
    drop(ca);
}

/// The staff dashboard counts the sessions of every live node: each node publishes its count
/// with its heartbeat; a node that dies stops counting once it is taken for dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_sessions_across_nodes() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let ttl = 1_000;
    let start = |node: &'static str| {
        let mut env = node_env(&redis.url, &redis.prefix, node, ttl);
        env.push(("JBK_ADMINS".into(), "dev:ds-root".into()));
        let db = &db;
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let p = ServerProcess::start_role(db, "serve", free_port(), &env).await;
            p.wait_status("ready", Duration::from_secs(10)).await;
            p
        }
    };
    let n1 = start("ds1").await;
    let mut n2 = start("ds2").await;
    let http = reqwest::Client::new();
    let root = login(&http, &n1.base(), "ds-root").await;
    let a = login(&http, &n1.base(), "ds-a").await;
    let b = login(&http, &n2.base(), "ds-b").await;
    let _a1 = connect(n1.addr, &a.token, Proto::Json).await;
    let _a2 = connect(n1.addr, &a.token, Proto::Json).await;
    let _b1 = connect(n2.addr, &b.token, Proto::Json).await;
    let _b2 = connect(n2.addr, &b.token, Proto::Json).await;
    let sessions = |base: String| {
        let (http, token) = (http.clone(), root.token.clone());
        async move {
            let (s, d) = get(&http, format!("{base}/api/v1/admin/dashboard"), &token).await;
            assert_eq!(s, 200, "{d}");
            d["online_sessions"].as_u64().unwrap()
        }
    };
    let until = |want: u64, base: String| async move {
        for _ in 0..300 {
            if sessions(base.clone()).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("online sessions never became {want} (now {})", sessions(base).await);
    };
    // Asked on either node, the total of both.
    until(4, n1.base()).await;
    until(4, n2.base()).await;
    n2.kill9();
    until(2, n1.base()).await;
}

/// Redis restarted under traffic: each node keeps serving its own users, `/readyz` says
/// degraded while it is down, the subscription comes back by itself, sessions are told to
/// resync, and cross-node delivery resumes. Nothing acked is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_traffic_recovers_by_itself() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(mut redis) = OwnRedis::start().await else { return };
    let url = redis.url();
    let n1 = start_node(&db, &url, "jbk", "r1", 2_000).await;
    let n2 = start_node(&db, &url, "jbk", "r2", 2_000).await;
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "rr-a").await;
    let b = login(&http, &n2.base(), "rr-b").await;
    let a2 = login(&http, &n1.base(), "rr-a2").await;
    let conv = direct(&http, &n1.base(), &a, &b).await;
    let local = direct(&http, &n1.base(), &a, &a2).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut ca2 = connect(n1.addr, &a2.token, Proto::Json).await;
    let mut cb = connect(n2.addr, &b.token, Proto::Json).await;
    let ack = ca.say(1, &conv, "before", "redis up").await;
    let m = recv_where(&mut cb, "msg", |_| true).await;
    assert_eq!(m["seq"], ack["seq"]);

    redis.kill9();
    n1.wait_status("degraded", Duration::from_secs(10)).await;
    n2.wait_status("degraded", Duration::from_secs(10)).await;
    // Sends still commit and are acked; the node's own users still get them live.
    let mut acked = BTreeMap::new();
    for i in 0..20u64 {
        let v = ca.say(10 + i, &conv, &format!("down{i}"), "redis down").await;
        assert_eq!(v["type"], "ack", "{v}");
        acked.insert(format!("down{i}"), v["seq"].as_u64().unwrap());
    }
    let v = ca.say(50, &local, "local-down", "same node").await;
    assert_eq!(v["type"], "ack", "{v}");
    let m = recv_where(&mut ca2, "msg", |_| true).await;
    assert_eq!(m["cmid"], "local-down");

    redis.spawn().await.expect("redis restarts");
    n1.wait_status("ready", Duration::from_secs(15)).await;
    n2.wait_status("ready", Duration::from_secs(15)).await;
    // b's node tells it to resync: what was sent meanwhile is recovered by sync.
    recv_where(&mut cb, "resync", |_| true).await;
    let log = cb.sync_all(&conv, 0).await;
    let stored: BTreeMap<String, u64> =
        log.iter().map(|m| (m["cmid"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    for (cmid, seq) in &acked {
        assert_eq!(stored.get(cmid), Some(seq), "acked {cmid} is in the log");
    }
    // Live cross-node delivery is back, both ways, without anyone reconnecting.
    let ack = ca.say(60, &conv, "after", "redis back").await;
    let m = recv_where(&mut cb, "msg", |v| v["cmid"] == "after").await;
    assert_eq!(m["seq"], ack["seq"]);
    let ack = cb.say(61, &conv, "after-b", "redis back").await;
    let m = recv_where(&mut ca, "msg", |v| v["cmid"] == "after-b").await;
    assert_eq!(m["seq"], ack["seq"]);
    // The outage is visible in /metrics.
    let text = http.get(format!("{}/metrics", n2.metrics_base())).send().await.unwrap().text().await.unwrap();
    let reconnects: f64 = text
        .lines()
        .find(|l| l.starts_with("jbk_cluster_reconnects_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no reconnect counter in:\n{text}"));
    assert!(reconnects >= 1.0, "{text}");
    assert!(text.contains("jbk_cluster_published_total"), "{text}");
    // Presence works again across nodes (the nodes registered their users again).
    cb.send(json!({"type":"presence_subscribe","id":70,"users":[a.id]})).await;
    let p = recv_where(&mut cb, "presence", |_| true).await;
    assert_eq!(p["online"], true, "{p}");
}

/// A node dies (kill -9) while its users send; they reconnect to another node and resend what
/// was not acked; a member on a third node syncs: every acked message is there, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_nothing_acked() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let mut n1 = start_node(&db, &redis.url, &redis.prefix, "d1", 2_000).await;
    let n2 = start_node(&db, &redis.url, &redis.prefix, "d2", 2_000).await;
    let n3 = start_node(&db, &redis.url, &redis.prefix, "d3", 2_000).await;
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "dk-a").await;
    let b = login(&http, &n3.base(), "dk-b").await;
    let conv = direct(&http, &n2.base(), &a, &b).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb = connect(n3.addr, &b.token, Proto::MsgPack).await;

    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent: Vec<String> = Vec::new();
    let mut next = 0u64;
    loop {
        while sent.len() - acked.len() < 16 {
            let cmid = format!("x{next}");
            ca.send_text(next, &conv, &cmid, "mid-traffic").await;
            sent.push(cmid);
            next += 1;
        }
        let v = ca.recv().await;
        if v["type"] == "ack" {
            acked.insert(v["cmid"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap());
        }
        if acked.len() >= 150 {
            n1.kill9();
            break;
        }
    }
    while let Some(Event::Frame(v)) = ca.next_event(Duration::from_secs(2)).await {
        if v["type"] == "ack" {
            acked.insert(v["cmid"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap());
        }
    }
    // The client reconnects to another node and resends what it has no ack for.
    let mut ca = connect(n2.addr, &a.token, Proto::Json).await;
    for (i, cmid) in sent.iter().enumerate().filter(|(_, c)| !acked.contains_key(*c)) {
        let v = ca.say(100_000 + i as u64, &conv, cmid, "resend").await;
        assert_eq!(v["type"], "ack", "{v}");
    }
    let log = cb.sync_all(&conv, 0).await;
    let seqs: Vec<u64> = log.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "dense");
    let stored: BTreeMap<String, u64> =
        log.iter().map(|m| (m["cmid"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    assert_eq!(stored.len(), sent.len(), "every message stored once");
    for (cmid, seq) in &acked {
        assert_eq!(stored.get(cmid), Some(seq), "acked {cmid} survives the node's death");
    }
    // And b, on node 3, got live what was sent after the reconnect through node 2.
    let ack = ca.say(999_999, &conv, "last", "via node 2").await;
    let m = recv_where(&mut cb, "msg", |v| v["cmid"] == "last").await;
    assert_eq!(m["seq"], ack["seq"]);
    drop(n3);
}

/// `jiebanke gateway` and `jiebanke rest` run the two halves alone: login and conversations on
/// the REST process, sessions on the gateway processes, events crossing through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_rest_run_alone() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let env = node_env(&redis.url, &redis.prefix, "rest1", 30_000);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let rest = ServerProcess::start_role(&db, "rest", free_port(), &env).await;
    let genv = node_env(&redis.url, &redis.prefix, "gw1", 30_000);
    let genv: Vec<(&str, &str)> = genv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = ServerProcess::start_role(&db, "gateway", free_port(), &genv).await;
    let http = reqwest::Client::new();
    // The gateway has no REST routes; the REST process has no /ws.
    let r = http.post(format!("{}/api/v1/auth/login", gw.base())).json(&json!({"code":"x"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(try_connect(rest.addr, "nope", Proto::Json).await.is_err());
    let a = login(&http, &rest.base(), "half-a").await;
    let b = login(&http, &rest.base(), "half-b").await;
    let conv = direct(&http, &rest.base(), &a, &b).await;
    let mut ca = connect(gw.addr, &a.token, Proto::Json).await;
    let mut cb = connect(gw.addr, &b.token, Proto::Json).await;
    let ack = ca.say(1, &conv, "h1", "halves").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let m = recv_where(&mut cb, "msg", |_| true).await;
    assert_eq!(m["seq"], ack["seq"]);
    // A member added over REST is seen by the gateway (which had the member list cached).
    let c = login(&http, &rest.base(), "half-c").await;
    let g = group(&http, &rest.base(), &a, &[&b]).await;
    let ack = ca.say(2, &g, "g1", "before c").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (s, v) = post(&http, format!("{}/api/v1/conversations/{g}/members", rest.base()), &a.token, json!({"members":[c.id]})).await;
    assert_eq!(s, 200, "{v}");
    let mut cc = connect(gw.addr, &c.token, Proto::Json).await;
    // The invalidation crosses through Redis; a send racing it may still use the old list, so
    // the check is on a message sent once the gateway has it (bounded wait, not timed).
    let mut got = false;
    for i in 0..50u64 {
        let ack = ca.say(10 + i, &g, &format!("g-after-{i}"), "after c").await;
        assert_eq!(ack["type"], "ack", "{ack}");
        if let Some(Event::Frame(m)) = cc.next_event(Duration::from_millis(200)).await {
            if m["type"] == "msg" {
                got = true;
                break;
            }
        }
    }
    assert!(got, "the member added over REST never got a message live");
}

#[test]
fn cluster_mode_needs_the_shared_database_and_halves_need_redis() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        let cli = jiebanke::config::Cli::try_parse_from(args).unwrap();
        let (role, a) = cli.command.into_parts().expect("a serving command");
        jiebanke::Config::from_args(role, a)
    };
    let e = parse(&["jiebanke", "serve", "--redis-url", "redis://127.0.0.1"]).unwrap_err();
    assert!(e.to_string().contains("mysql"), "{e}");
    let e = parse(&["jiebanke", "gateway"]).unwrap_err();
    assert!(e.to_string().contains("JBK_REDIS_URL"), "{e}");
    let e = parse(&["jiebanke", "serve", "--redis-url", "redis://x", "--database-url", "mysql://x/y", "--node-id", "bad id!"]).unwrap_err();
    assert!(e.to_string().contains("JBK_NODE_ID"), "{e}");
    let c = parse(&["jiebanke", "serve", "--redis-url", "redis://x", "--database-url", "mysql://x/y"]).unwrap();
    let cl = c.cluster.unwrap();
    assert!(cl.node_id.starts_with("n-"), "generated node id: {}", cl.node_id);
    assert_eq!(cl.presence_ttl, Duration::from_secs(30));
    assert!(parse(&["jiebanke", "serve"]).unwrap().cluster.is_none(), "the embedded default stays as it was");
    // A seed list is a Redis Cluster, and says so.
    let e = parse(&["jiebanke", "serve", "--redis-url", "redis://a:1,redis://b:2", "--database-url", "mysql://x/y"]).unwrap_err();
    assert!(e.to_string().contains("JBK_REDIS_CLUSTER"), "{e}");
    let c = parse(&["jiebanke", "serve", "--redis-url", "redis://a:1,redis://b:2", "--redis-cluster", "--database-url", "mysql://x/y"]).unwrap();
    assert!(c.cluster.unwrap().redis_cluster);
    // RabbitMQ needs the shared database too; admins are provider:subject pairs.
    let e = parse(&["jiebanke", "serve", "--amqp-url", "amqp://x"]).unwrap_err();
    assert!(e.to_string().contains("mysql"), "{e}");
    let e = parse(&["jiebanke", "serve", "--amqp-url", "http://x", "--database-url", "mysql://x/y"]).unwrap_err();
    assert!(e.to_string().contains("amqp://"), "{e}");
    let c = parse(&["jiebanke", "serve", "--admins", "dev:root, wechat:oAb"]).unwrap();
    assert_eq!(c.admins, vec![("dev".to_owned(), "root".to_owned()), ("wechat".to_owned(), "oAb".to_owned())]);
    let e = parse(&["jiebanke", "serve", "--admins", "root"]).unwrap_err();
    assert!(e.to_string().contains("JBK_ADMINS"), "{e}");
}

/// Nodes started together on a fresh database (a rollout, a compose `up`): one applies the
/// migrations, the others wait for it; every node comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_on_a_fresh_database_all_come_up() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let envs: Vec<Vec<(String, String)>> = (1..=4).map(|i| node_env(&redis.url, &redis.prefix, &format!("s{i}"), 30_000)).collect();
    let envs: Vec<Vec<(&str, &str)>> = envs.iter().map(|e| e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()).collect();
    let (a, b, c, d) = tokio::join!(
        ServerProcess::start_role(&db, "serve", free_port(), &envs[0]),
        ServerProcess::start_role(&db, "gateway", free_port(), &envs[1]),
        ServerProcess::start_role(&db, "rest", free_port(), &envs[2]),
        ServerProcess::start_role(&db, "serve", free_port(), &envs[3]),
    );
    for n in [&a, &b, &c, &d] {
        n.wait_status("ready", Duration::from_secs(10)).await;
    }
}

/// On a Redis Cluster (three shards of the test's own): nodes route commands by slot and use
/// sharded pub/sub. Chat crosses nodes in seq order, presence is global, and the channels are
/// shard channels (SSUBSCRIBE), not plain ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_with_sharded_pubsub_carries_chat_and_presence() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(rc) = OwnRedisCluster::start().await else { return };
    let prefix = format!("jbk_rc_{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut nodes = Vec::new();
    for id in ["s1", "s2", "s3"] {
        let mut env = node_env(&rc.urls(), &prefix, id, 30_000);
        env.push(("JBK_REDIS_CLUSTER".into(), "true".into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = ServerProcess::start_role(&db, "serve", free_port(), &env).await;
        p.wait_status("ready", Duration::from_secs(15)).await;
        nodes.push(p);
    }
    let http = reqwest::Client::new();
    let a = login(&http, &nodes[0].base(), "rc-a").await;
    let b = login(&http, &nodes[1].base(), "rc-b").await;
    let c = login(&http, &nodes[2].base(), "rc-c").await;
    let conv = group(&http, &nodes[0].base(), &a, &[&b, &c]).await;
    // A message from every node reaches the others with the same seq.
    let mut clients = [
        connect(nodes[0].addr, &a.token, Proto::Json).await,
        connect(nodes[1].addr, &b.token, Proto::MsgPack).await,
        connect(nodes[2].addr, &c.token, Proto::Json).await,
    ];
    for i in 0..3 {
        let ack = clients[i].say(i as u64 + 1, &conv, &format!("rc{i}"), "分片发布").await;
        assert_eq!((ack["type"].as_str(), ack["seq"].as_u64()), (Some("ack"), Some(i as u64 + 1)), "{ack}");
        for (j, other) in clients.iter_mut().enumerate().filter(|(j, _)| *j != i) {
            let m = recv_where(other, "msg", |_| true).await;
            assert_eq!((m["seq"].as_u64(), m["cmid"].as_str()), (Some(i as u64 + 1), Some(format!("rc{i}").as_str())), "member {j}: {m}");
        }
    }
    let [mut ca, _cb, cc] = clients;
    // Presence: a on node 1 watches c on node 3, who leaves.
    ca.send(json!({"type":"presence_subscribe","id":9,"users":[c.id]})).await;
    let p = recv_where(&mut ca, "presence", |_| true).await;
    assert_eq!(p["online"], true, "{p}");
    drop(cc);
    let p = recv_where(&mut ca, "presence", |v| v["online"] == false).await;
    assert!(p["last_seen"].as_i64().is_some(), "{p}");

    // The node channels are shard channels on the cluster, and no plain channel is ours.
    let mut shard: Vec<String> = rc.on_each::<Vec<String>>(redis::cmd("PUBSUB").arg("SHARDCHANNELS")).concat();
    shard.sort();
    for n in ["s1", "s2", "s3"] {
        let ch = format!("{prefix}:node:{{{n}}}");
        assert!(shard.contains(&ch), "{ch} not a shard channel: {shard:?}");
    }
    let plain: Vec<String> = rc.on_each::<Vec<String>>(redis::cmd("PUBSUB").arg("CHANNELS")).concat();
    assert!(plain.iter().all(|c| !c.starts_with(&prefix)), "plain channels: {plain:?}");
}

/// A shard of the Redis Cluster killed under traffic and started again: the node whose channel
/// lives on it says degraded, acked sends are all recoverable by sync, its sessions are told
/// to resync, and live delivery comes back without anyone reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_shard_restart_recovers_by_itself() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(mut rc) = OwnRedisCluster::start().await else { return };
    let prefix = format!("jbk_rs_{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut nodes = Vec::new();
    for id in ["t1", "t2"] {
        let mut env = node_env(&rc.urls(), &prefix, id, 2_000);
        env.push(("JBK_REDIS_CLUSTER".into(), "true".into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = ServerProcess::start_role(&db, "serve", free_port(), &env).await;
        p.wait_status("ready", Duration::from_secs(15)).await;
        nodes.push(p);
    }
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "rs-a").await;
    let b = login(&http, &n2.base(), "rs-b").await;
    let conv = direct(&http, &n1.base(), &a, &b).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb = connect(n2.addr, &b.token, Proto::Json).await;
    let ack = ca.say(1, &conv, "before", "shards up").await;
    assert_eq!(recv_where(&mut cb, "msg", |_| true).await["seq"], ack["seq"]);

    // The shard that holds node t2's channel (the one a GET of that slot is not redirected on).
    let key = format!("{prefix}:node:{{t2}}");
    let owner = rc
        .ports
        .iter()
        .position(|p| {
            let mut k = redis::Client::open(format!("redis://127.0.0.1:{p}")).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap();
            redis::cmd("GET").arg(&key).query::<Option<String>>(&mut k).is_ok()
        })
        .expect("a shard owns the slot");
    rc.kill9(owner);
    n2.wait_status("degraded", Duration::from_secs(15)).await;
    let mut acked = BTreeMap::new();
    for i in 0..10u64 {
        let v = ca.say(10 + i, &conv, &format!("down{i}"), "shard down").await;
        assert_eq!(v["type"], "ack", "{v}");
        acked.insert(format!("down{i}"), v["seq"].as_u64().unwrap());
    }

    rc.restart(owner).await;
    n1.wait_status("ready", Duration::from_secs(20)).await;
    n2.wait_status("ready", Duration::from_secs(20)).await;
    recv_where(&mut cb, "resync", |_| true).await;
    let log = cb.sync_all(&conv, 0).await;
    let stored: BTreeMap<String, u64> = log.iter().map(|m| (m["cmid"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    for (cmid, seq) in &acked {
        assert_eq!(stored.get(cmid), Some(seq), "acked {cmid} is in the log");
    }
    let ack = ca.say(60, &conv, "after", "shard back").await;
    assert_eq!(recv_where(&mut cb, "msg", |v| v["cmid"] == "after").await["seq"], ack["seq"]);
    let ack = cb.say(61, &conv, "after-b", "shard back").await;
    assert_eq!(recv_where(&mut ca, "msg", |v| v["cmid"] == "after-b").await["seq"], ack["seq"]);
}

/// The database cut away from one node (a proxy in front of MariaDB, cut and restored): that
/// node reports unavailable, a send there is answered `unavailable`, never acked, and nothing
/// of it is stored; once the database is back, the resend with the same cmid is acked and
/// reaches the member on the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_cut_answers_unavailable_never_a_false_ack() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let url = db.url().unwrap();
    let port: u16 = url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap();
    let proxy = CutProxy::start(port).await;
    let via_proxy = url.replacen(&format!(":{port}/"), &format!(":{}/", proxy.port), 1);
    let mut env = node_env(&redis.url, &redis.prefix, "db1", 30_000);
    env.push(("JBK_DATABASE_URL".into(), via_proxy));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let n1 = ServerProcess::start_role(&db, "serve", free_port(), &env).await;
    let n2 = start_node(&db, &redis.url, &redis.prefix, "db2", 30_000).await;
    let http = reqwest::Client::new();
    let a = login(&http, &n1.base(), "dbc-a").await;
    let b = login(&http, &n2.base(), "dbc-b").await;
    let conv = direct(&http, &n2.base(), &a, &b).await;
    let mut ca = connect(n1.addr, &a.token, Proto::Json).await;
    let mut cb = connect(n2.addr, &b.token, Proto::Json).await;
    let ack = ca.say(1, &conv, "before", "库在").await;
    assert_eq!(recv_where(&mut cb, "msg", |_| true).await["seq"], ack["seq"]);

    proxy.cut();
    n1.wait_status("unavailable", Duration::from_secs(20)).await;
    ca.send_text(2, &conv, "during", "库不在").await;
    let reply = loop {
        match ca.next_event(Duration::from_secs(60)).await {
            Some(Event::Frame(v)) if v["id"] == 2 => break v,
            Some(Event::Frame(_)) => continue,
            other => panic!("no answer to the send while the database is away: {other:?}"),
        }
    };
    assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some("unavailable")), "{reply}");

    proxy.restore();
    n1.wait_status("ready", Duration::from_secs(20)).await;
    let ack = ca.say(3, &conv, "during", "库不在").await;
    assert_eq!((ack["type"].as_str(), ack["duplicate"].as_bool()), (Some("ack"), Some(false)), "nothing was stored before: {ack}");
    let m = recv_where(&mut cb, "msg", |v| v["cmid"] == "during").await;
    assert_eq!(m["seq"], ack["seq"]);
    let log = cb.sync_all(&conv, 0).await;
    assert_eq!(log.iter().filter(|m| m["cmid"] == "during").count(), 1);
}

/// The date `days` from today (UTC), as the wire writes it.
fn date(days: i32) -> String {
    use jiebanke_chat_core::matching::Day;
    Day::from_days(Day::of_ms(jiebanke_chat_core::now_ms()).days() + days).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companions_are_matched_across_nodes_once_and_expiry_reaches_the_right_node() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let mut nodes = Vec::new();
    for name in ["m1", "m2", "m3"] {
        let mut env = node_env(&redis.url, &redis.prefix, name, 30_000);
        env.push(("JBK_MATCH_TTL_MS".into(), "4000".into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = ServerProcess::start_role(&db, "serve", free_port(), &env).await;
        p.wait_status("ready", Duration::from_secs(10)).await;
        nodes.push(p);
    }
    let http = reqwest::Client::new();
    let n = 30;
    let mut users = Vec::new();
    let mut clients = Vec::new();
    for i in 0..n {
        let node = &nodes[i % 3];
        let u = login(&http, &node.base(), &format!("cm{i}")).await;
        clients.push(connect(node.addr, &u.token, Proto::Json).await);
        users.push(u);
    }
    // Everyone at once, on three nodes, to one destination: each is matched exactly once.
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                c.send(json!({"type":"match_request","id":1,"destination":"大理","from":date(2),"to":date(6)})).await;
                let (mut reply, mut proposal) = (None, None);
                while reply.is_none() || proposal.is_none() {
                    let v = c.recv().await;
                    if v["type"] == "match_proposal" {
                        assert!(proposal.replace(v).is_none(), "two proposals");
                    } else if v["id"] == 1 {
                        assert_eq!(v["type"], "match_requested", "{v}");
                        reply = Some(v);
                    }
                }
                c.expect_silence(Duration::from_millis(300)).await;
                (c, proposal.unwrap())
            })
        })
        .collect();
    let mut by_match: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    let mut clients = Vec::new();
    for (t, u) in tasks.into_iter().zip(&users) {
        let (c, p) = t.await.unwrap();
        by_match.entry(p["match"].as_str().unwrap().to_owned()).or_default().push((u.id.clone(), p));
        clients.push(c);
    }
    assert_eq!(by_match.len(), n / 2, "{by_match:?}");
    for pair in by_match.values() {
        assert_eq!(pair.len(), 2, "{pair:?}");
        assert_eq!(pair[0].1["peer"], pair[1].0.as_str());
        assert_eq!(pair[1].1["peer"], pair[0].0.as_str());
        assert_eq!(pair[0].1["conv"], pair[1].1["conv"], "one conversation for the pair");
    }
    // Nothing is left waiting in Redis.
    let mut r = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
    let left: i64 = redis::cmd("HLEN").arg(format!("{}:m:{{match}}:u", redis.prefix)).query(&mut r).unwrap();
    assert_eq!(left, 0);

    // A request on m1 expires; whichever node sweeps it, the traveller on m1 is told, once.
    let c0 = &mut clients[0];
    c0.send(json!({"type":"match_request","id":2,"destination":"丽江","from":date(2),"to":date(6)})).await;
    let w = recv_where(c0, "match_requested", |v| v["id"] == 2).await;
    assert_eq!(w["matched"], false, "{w}");
    let waiting: i64 = redis::cmd("HLEN").arg(format!("{}:m:{{match}}:u", redis.prefix)).query(&mut r).unwrap();
    assert_eq!(waiting, 1, "the request waits in Redis, for every node");
    let x = c0.next_event(Duration::from_secs(15)).await;
    match x {
        Some(Event::Frame(v)) => assert_eq!((v["type"].as_str(), v["destination"].as_str()), (Some("match_expired"), Some("丽江")), "{v}"),
        other => panic!("expected match_expired, got {other:?}"),
    }
    c0.expect_silence(Duration::from_millis(1_500)).await;
    // A cancel on another node than the request's.
    let u3 = &users[3];
    let mut on_m2 = connect(nodes[1].addr, &u3.token, Proto::Json).await;
    clients[3].send(json!({"type":"match_request","id":3,"destination":"丽江","from":date(2),"to":date(6)})).await;
    assert_eq!(recv_where(&mut clients[3], "match_requested", |v| v["id"] == 3).await["matched"], false);
    on_m2.send(json!({"type":"match_cancel","id":4})).await;
    assert_eq!(recv_where(&mut on_m2, "match_cancelled", |v| v["id"] == 4).await["cancelled"], true);
}

/// Two live processes with one `JBK_NODE_ID`: the second refuses to start; after the first is
/// killed with `kill -9` the second starts once the dead one's beat has expired; a duplicate
/// that appears later (here: another instance's beats written into Redis by the test) makes
/// `/readyz` degraded until it stops.
#[tokio::test]
async fn a_second_live_process_with_the_same_node_id_is_refused() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let ttl = 1_200u64;
    let mut first = start_node(&db, &redis.url, &redis.prefix, "dup", ttl).await;

    // The same id again, while the first beats: the process exits with an error.
    let env = node_env(&redis.url, &redis.prefix, "dup", ttl);
    let log = db.dir.0.join("dup-second.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jiebanke"));
    cmd.arg("serve")
        .env("JBK_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("JBK_METRICS_LISTEN", "0")
        .env("JBK_DATA_DIR", &db.dir.0)
        .env("JBK_DATABASE_URL", db.url().unwrap())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut second = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the duplicate did not give up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("another live process is already node"), "{text}");
    assert_eq!(first.ready_status().await, "ready", "the first node is untouched");

    // The first dies without leaving: its successor waits out the stale beat and starts.
    first.kill9();
    let successor = start_node(&db, &redis.url, &redis.prefix, "dup", ttl).await;
    let http = reqwest::Client::new();
    let readyz = |base: String| {
        let http = http.clone();
        async move { http.get(format!("{base}/readyz")).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let v = readyz(successor.base()).await;
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["checks"]["node_id"], "ok", "{v}");

    // Another instance starts beating for the id behind its back: degraded while it lasts.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:inst:{{dup}}", redis.prefix);
    let intruder = tokio::spawn(async move {
        for i in 0..40u64 {
            let _: () = redis::cmd("SET").arg(&key).arg(format!("intruder {i}")).arg("PX").arg(1200).query_async(&mut conn).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    successor.wait_status("degraded", Duration::from_secs(10)).await;
    let v = readyz(successor.base()).await;
    assert_eq!(v["checks"]["node_id"], "down", "{v}");
    assert_eq!(v["checks"]["redis"], "ok", "{v}");
    intruder.await.unwrap();
    successor.wait_status("ready", Duration::from_secs(10)).await;
    assert!(successor.log_text().contains("another live process beats for this node id"));
}
