//! Chat over the real WebSocket endpoint of a real server, on SQLite and on MariaDB/MySQL.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { if let Some(db) = super::TestDb::new(super::Db::Sqlite).await { super::$name(db).await } } )*
        }
        mod mysql {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { if let Some(db) = super::TestDb::new(super::Db::MySql).await { super::$name(db).await } } )*
        }
    };
}

on_both!(
    chat_both_ways,
    resend_with_same_cmid_is_idempotent,
    reconnect_and_sync_gets_exactly_what_was_missed,
    msgpack_and_json_share_a_conversation,
    group_fan_out_in_one_order,
    read_and_typing_reach_members,
    presence_with_two_sessions,
);

async fn chat_both_ways(db: TestDb) {
    let app = spawn_app(&db, |_| {}).await;
    let a = login(&app.http, &app.base(), "alice").await;
    let b = login(&app.http, &app.base(), "bob").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    let mut cb = connect(app.addr, &b.token, Proto::None).await;
    assert_eq!(ca.hello["user"], a.id.as_str());
    assert!(ca.hello["heartbeat_ms"].as_u64().unwrap() > 0);
    assert_eq!(cb.hello["protocol"], "jbk.v1.json");

    let ack = ca.say(1, &conv, "a-1", "你好，一起去大理吗？").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["cmid"], "a-1");
    assert_eq!(ack["conv"], conv.as_str());
    assert_eq!(ack["duplicate"], false);
    let m = cb.recv_type("msg").await;
    assert_eq!(m["seq"], 1);
    assert_eq!(m["from"], a.id.as_str());
    assert_eq!(m["body"]["text"], "你好，一起去大理吗？");
    assert_eq!(m["ts"], ack["ts"]);

    let ack = cb.say(7, &conv, "b-1", "好呀").await;
    assert_eq!(ack["seq"], 2);
    let m = ca.recv_type("msg").await;
    assert_eq!((m["seq"].as_u64(), m["from"].as_str()), (Some(2), Some(b.id.as_str())));
    // The sender's own session gets the ack, not the msg.
    ca.expect_silence(Duration::from_millis(200)).await;
}

async fn resend_with_same_cmid_is_idempotent(db: TestDb) {
    let app = spawn_app(&db, |_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    let mut ca2 = connect(app.addr, &a.token, Proto::Json).await; // the sender's tablet
    let mut cb = connect(app.addr, &b.token, Proto::Json).await;
    let first = ca.say(1, &conv, "same", "once").await;
    assert_eq!(ca2.recv_type("msg").await["seq"], 1, "the other session of the sender gets it");
    let again = ca.say(2, &conv, "same", "once").await;
    assert_eq!(first["seq"], again["seq"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(first["ts"], again["ts"]);
    // A resend from another session of the same user (after a reconnect) is the same message.
    let third = ca2.say(3, &conv, "same", "once").await;
    assert_eq!(third["seq"], first["seq"]);
    let next = ca.say(4, &conv, "other", "twice").await;
    assert_eq!(next["seq"], 2);
    // Everyone received seq 1 exactly once, then seq 2.
    assert_eq!(cb.recv_type("msg").await["seq"], 1);
    assert_eq!(cb.recv_type("msg").await["seq"], 2);
    cb.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(ca2.recv_type("msg").await["seq"], 2, "the resend was not delivered again");
}

async fn reconnect_and_sync_gets_exactly_what_was_missed(db: TestDb) {
    let app = spawn_app(&db, |c| c.gateway.msg_burst = std::num::NonZeroU32::new(1000).unwrap()).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    let mut cb = connect(app.addr, &b.token, Proto::Json).await;
    for i in 1..=3u64 {
        ca.say(i, &conv, &format!("m{i}"), &format!("msg {i}")).await;
    }
    let mut last = 0;
    for _ in 0..3 {
        last = cb.recv_type("msg").await["seq"].as_u64().unwrap();
    }
    assert_eq!(last, 3);
    drop(cb);
    // While b is away: 250 more (more than one page).
    for i in 4..=253u64 {
        ca.send_text(i, &conv, &format!("m{i}"), &format!("msg {i}")).await;
    }
    let mut acked = 0;
    while acked < 250 {
        let v = ca.recv().await;
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "ack" {
            acked += 1;
        }
    }
    let mut cb = connect(app.addr, &b.token, Proto::Json).await;
    let missed = cb.sync_all(&conv, last).await;
    let seqs: Vec<u64> = missed.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (4..=253).collect::<Vec<_>>());
    assert_eq!(missed[0]["body"]["text"], "msg 4");
    // Nothing after the end.
    assert!(cb.sync_all(&conv, 253).await.is_empty());
    // The conversation list shows where everyone is.
    let (s, list) = get(&app.http, format!("{}/api/v1/conversations", app.base()), &b.token).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["last_seq"], 253);
}

async fn msgpack_and_json_share_a_conversation(db: TestDb) {
    let app = spawn_app(&db, |_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut ca = connect(app.addr, &a.token, Proto::MsgPack).await;
    let mut cb = connect(app.addr, &b.token, Proto::Json).await;
    assert_eq!(ca.hello["protocol"], "jbk.v1.msgpack");
    let ack = ca.say(1, &conv, "mp", "from msgpack 草原").await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(cb.recv_type("msg").await["body"]["text"], "from msgpack 草原");
    cb.say(2, &conv, "js", "from json").await;
    let m = ca.recv_type("msg").await;
    assert_eq!((m["seq"].as_u64(), m["body"]["text"].as_str()), (Some(2), Some("from json")));
    let h = ca.sync_all(&conv, 0).await;
    assert_eq!(h.len(), 2);
    ca.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(ca.recv_type("pong").await["id"], "p");
}

async fn group_fan_out_in_one_order(db: TestDb) {
    let app = spawn_app(&db, |c| c.gateway.msg_burst = std::num::NonZeroU32::new(1000).unwrap()).await;
    let base = app.base();
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(login(&app.http, &base, &format!("g{i}")).await);
    }
    let others: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
    let (s, g) = post(&app.http, format!("{base}/api/v1/conversations"), &users[0].token, json!({"kind":"group","title":"稻城亚丁","members":others})).await;
    assert_eq!(s, 200, "{g}");
    let conv = g["id"].as_str().unwrap().to_owned();
    let mut clients = Vec::new();
    for u in &users {
        clients.push(connect(app.addr, &u.token, Proto::Json).await);
    }
    // Every member sends 25 at once; every member must see the same single order 1..=100.
    for (k, c) in clients.iter_mut().enumerate() {
        for i in 0..25u64 {
            c.send_text(i, &conv, &format!("u{k}-{i}"), "x").await;
        }
    }
    for c in clients.iter_mut() {
        let mut seen = Vec::new();
        let mut acks = 0;
        while seen.len() + acks < 100 {
            let v = c.recv().await;
            match v["type"].as_str() {
                Some("msg") => seen.push((v["seq"].as_u64().unwrap(), v["cmid"].as_str().unwrap().to_owned())),
                Some("ack") => acks += 1,
                _ => panic!("unexpected {v}"),
            }
        }
        assert_eq!(acks, 25);
        let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "delivered in seq order");
    }
    let all = clients[0].sync_all(&conv, 0).await;
    assert_eq!(all.iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>());
}

async fn read_and_typing_reach_members(db: TestDb) {
    let app = spawn_app(&db, |_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    let mut cb = connect(app.addr, &b.token, Proto::Json).await;
    ca.say(1, &conv, "x1", "one").await;
    ca.say(2, &conv, "x2", "two").await;
    cb.send(json!({"type":"typing","conv":conv})).await;
    let t = ca.recv_type("typing").await;
    assert_eq!((t["conv"].as_str(), t["user"].as_str()), (Some(conv.as_str()), Some(b.id.as_str())));
    cb.send(json!({"type":"read","conv":conv,"seq":2})).await;
    let r = ca.recv_type("read").await;
    assert_eq!((r["user"].as_str(), r["seq"].as_u64()), (Some(b.id.as_str()), Some(2)));
    let (_, list) = get(&app.http, format!("{}/api/v1/conversations", app.base()), &b.token).await;
    assert_eq!(list["items"][0]["read_seq"], 2);
    // Typing is never stored.
    assert_eq!(cb.sync_all(&conv, 0).await.len(), 2);
}

async fn presence_with_two_sessions(db: TestDb) {
    let app = spawn_app(&db, |_| {}).await;
    let watcher = login(&app.http, &app.base(), "w").await;
    let u = login(&app.http, &app.base(), "u").await;
    let mut cw = connect(app.addr, &watcher.token, Proto::Json).await;
    cw.send(json!({"type":"presence_subscribe","id":1,"users":[u.id]})).await;
    let p = cw.recv_type("presence").await;
    assert_eq!((p["user"].as_str(), p["online"].as_bool()), (Some(u.id.as_str()), Some(false)));
    assert!(p["last_seen"].is_null(), "never seen");

    let phone = connect(app.addr, &u.token, Proto::Json).await;
    let p = cw.recv_type("presence").await;
    assert_eq!(p["online"], true);
    let tablet = connect(app.addr, &u.token, Proto::MsgPack).await;
    drop(phone);
    // Still online through the tablet: no change is announced.
    cw.expect_silence(Duration::from_millis(400)).await;
    drop(tablet);
    let p = cw.recv_type("presence").await;
    assert_eq!(p["online"], false);
    let last_seen = p["last_seen"].as_i64().expect("last_seen after going offline");
    assert!(last_seen > 0);
    // A new subscriber sees the stored last_seen.
    let mut cw2 = connect(app.addr, &watcher.token, Proto::Json).await;
    cw2.send(json!({"type":"presence_subscribe","id":2,"users":[u.id]})).await;
    let p = cw2.recv_type("presence").await;
    assert_eq!(p["last_seen"].as_i64(), Some(last_seen));
}
