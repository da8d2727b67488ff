//! The real binary as a child process: kill -9 loses nothing that was acked, SIGTERM drains,
//! logs are JSON when asked. On SQLite and on MariaDB/MySQL.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acked_on_sqlite() {
    kill_9_loses_nothing_acked(TestDb::new(Db::Sqlite).await.unwrap(), &[]).await;
}

/// Without an fsync per commit, an acked message is still in the kernel's hands when the process
/// dies: kill -9 loses nothing (only a power loss could).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acked_on_sqlite_with_sync_normal() {
    kill_9_loses_nothing_acked(TestDb::new(Db::Sqlite).await.unwrap(), &[("JBK_SQLITE_SYNC", "normal")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acked_on_mysql() {
    if let Some(db) = TestDb::new(Db::MySql).await {
        kill_9_loses_nothing_acked(db, &[]).await;
    }
}

async fn kill_9_loses_nothing_acked(db: TestDb, env: &[(&str, &str)]) {
    let mut server = ServerProcess::start(&db, env).await;
    let http = reqwest::Client::new();
    let a = login(&http, &server.base(), "killer-a").await;
    let b = login(&http, &server.base(), "killer-b").await;
    let conv = direct(&http, &server.base(), &a, &b).await;
    let mut ca = connect(server.addr, &a.token, Proto::Json).await;
    let mut cb = connect(server.addr, &b.token, Proto::MsgPack).await;

    // Keep 32 sends in flight; kill -9 once 300 are acked, mid-traffic.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent: Vec<String> = Vec::new();
    let mut next = 0u64;
    let mut killed = false;
    while !killed {
        while sent.len() - acked.len() < 32 {
            let cmid = format!("k{next}");
            ca.send_text(next, &conv, &cmid, &format!("message {next}")).await;
            sent.push(cmid);
            next += 1;
        }
        let v = ca.recv().await;
        assert_eq!(v["type"], "ack", "{v}");
        acked.insert(v["cmid"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap());
        if acked.len() >= 300 {
            server.kill9();
            killed = true;
        }
    }
    // Whatever else arrives before the socket dies is an ack too.
    while let Some(Event::Frame(v)) = ca.next_event(Duration::from_secs(2)).await {
        if v["type"] == "ack" {
            acked.insert(v["cmid"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap());
        }
    }
    drop(cb.next_event(Duration::from_millis(10)).await);

    eprintln!("sent {}, acked {} when killed", sent.len(), acked.len());
    // Same data dir / database, new process.
    let server = ServerProcess::start_at(&db, server.addr.port(), env).await;
    let mut cb = connect(server.addr, &b.token, Proto::MsgPack).await;
    let log = cb.sync_all(&conv, 0).await;
    let seqs: Vec<u64> = log.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "dense seqs after the crash");
    let stored: BTreeMap<String, u64> =
        log.iter().map(|m| (m["cmid"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    assert_eq!(stored.len(), log.len(), "no cmid stored twice");
    for (cmid, seq) in &acked {
        assert_eq!(stored.get(cmid), Some(seq), "acked {cmid} at seq {seq} must survive kill -9");
    }
    // The client resends what was never acked; each is stored exactly once.
    let mut ca = connect(server.addr, &a.token, Proto::Json).await;
    for (i, cmid) in sent.iter().enumerate().filter(|(_, c)| !acked.contains_key(*c)) {
        let v = ca.say(10_000 + i as u64, &conv, cmid, "resend").await;
        assert_eq!(v["type"], "ack", "{v}");
        assert_eq!(v["duplicate"].as_bool(), Some(stored.contains_key(cmid)));
    }
    let log = cb.sync_all(&conv, 0).await;
    let cmids: HashSet<&str> = log.iter().map(|m| m["cmid"].as_str().unwrap()).collect();
    assert_eq!(cmids.len(), sent.len(), "every message stored once");
    assert_eq!(log.len(), sent.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_sessions_with_1012_and_loses_nothing_acked() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let mut server = ServerProcess::start(&db, &[]).await;
    let http = reqwest::Client::new();
    let a = login(&http, &server.base(), "drain-a").await;
    let b = login(&http, &server.base(), "drain-b").await;
    let conv = direct(&http, &server.base(), &a, &b).await;
    let mut ca = connect(server.addr, &a.token, Proto::Json).await;
    let mut cb = connect(server.addr, &b.token, Proto::Json).await;
    for i in 0..200u64 {
        ca.send_text(i, &conv, &format!("d{i}"), "before the drain").await;
    }
    server.sigterm();
    let mut acked = BTreeMap::new();
    let close = loop {
        match ca.next_event(WAIT).await {
            Some(Event::Frame(v)) => {
                if v["type"] == "ack" {
                    acked.insert(v["cmid"].as_str().unwrap().to_owned(), v["seq"].as_u64().unwrap());
                }
            }
            Some(Event::Closed(c)) => break c,
            None => panic!("no close after SIGTERM"),
        }
    };
    eprintln!("acked before the 1012 close: {}", acked.len());
    assert!(!acked.is_empty(), "sends read before the drain are answered");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1012);
    assert!(reason.contains("reconnect_after_ms="), "{reason}");
    let (code, _) = cb.expect_close(WAIT).await.expect("idle sessions are closed too");
    assert_eq!(code, 1012);
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "clean exit after the drain: {:?}\n{}", status.0, status.1.log_text());
    // Everything acked is there after a restart.
    let server = ServerProcess::start(&db, &[]).await;
    let mut cb = connect(server.addr, &b.token, Proto::Json).await;
    let log = cb.sync_all(&conv, 0).await;
    let stored: BTreeMap<String, u64> =
        log.iter().map(|m| (m["cmid"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    for (cmid, seq) in &acked {
        assert_eq!(stored.get(cmid), Some(seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_when_asked() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let server = ServerProcess::start(&db, &[("JBK_LOG_FORMAT", "json"), ("RUST_LOG", "debug,sqlx=warn,hyper=warn")]).await;
    let http = reqwest::Client::new();
    let a = login(&http, &server.base(), "log").await;
    let c = connect(server.addr, &a.token, Proto::Json).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.sigterm();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = server.log_text();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        n += 1;
    }
    assert!(n >= 2, "serving and session lines at least:\n{text}");
    assert!(text.contains("jiebanke serving"));
    let _ = json!({});
}

/// SIGHUP reloads the banned-word list from its file: the next messages are screened with the
/// new list. Each round sends a word of the old list and one of the new: exactly one of them is
/// flagged, the old one until the reload and the new one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_banned_word_list() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let words = db.dir.0.join("words.txt");
    std::fs::write(&words, "旧词\n").unwrap();
    let words_env = words.display().to_string();
    let server = ServerProcess::start(&db, &[("JBK_BANNED_WORDS_FILE", words_env.as_str()), ("JBK_ADMINS", "dev:hup-root")]).await;
    let http = reqwest::Client::new();
    let root = login(&http, &server.base(), "hup-root").await;
    let a = login(&http, &server.base(), "hup-a").await;
    let b = login(&http, &server.base(), "hup-b").await;
    let conv = direct(&http, &server.base(), &a, &b).await;
    let mut admin = connect(server.addr, &root.token, Proto::Json).await;
    let mut ca = connect(server.addr, &a.token, Proto::Json).await;

    ca.say(1, &conv, "n0", "新词").await;
    ca.say(2, &conv, "o0", "旧词").await;
    let first = admin.recv_type("moderation").await;
    assert_eq!(first["item"]["words"], json!(["旧词"]), "only the old list applies: {first}");

    std::fs::write(&words, "新词\n").unwrap();
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGHUP);
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 500, "the new list never applied");
        ca.say(10 + 2 * rounds, &conv, &format!("n{rounds}"), "新词").await;
        ca.say(11 + 2 * rounds, &conv, &format!("o{rounds}"), "旧词").await;
        let item = admin.recv_type("moderation").await;
        if item["item"]["words"] == json!(["新词"]) {
            break;
        }
        assert_eq!(item["item"]["words"], json!(["旧词"]), "{item}");
    }
    assert!(server.log_text().contains("banned-word list reloaded"));
}
