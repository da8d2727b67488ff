//! Bad input and limits: every case gets a typed error frame or an HTTP error with a code, the
//! connection lives where the contract says so, and the server keeps serving.

mod common;
use common::*;
use serde_json::{json, Value};
use std::num::NonZeroU32;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn setup(tweak: impl FnOnce(&mut jiebanke::Config)) -> (TestDb, TestApp) {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, tweak).await;
    (db, app)
}

async fn expect_error(c: &mut Client, code: &str) -> Value {
    let v = c.recv_type("error").await;
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    v
}

async fn still_alive(c: &mut Client) {
    c.send(json!({"type":"ping","id":"alive"})).await;
    assert_eq!(c.recv_type("pong").await["id"], "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_typed_errors_and_the_session_lives() {
    let (_db, app) = setup(|_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;

    c.send_raw(Message::Text("{not json".into())).await;
    let e = expect_error(&mut c, "bad_frame").await;
    assert!(e["id"].is_null());
    c.send_raw(Message::Text("[1,2,3]".into())).await;
    expect_error(&mut c, "bad_frame").await;
    c.send(json!({"type":"teleport","id":5})).await;
    let e = expect_error(&mut c, "unknown_type").await;
    assert_eq!(e["id"], 5);
    c.send(json!({"id":"no-type"})).await;
    let e = expect_error(&mut c, "invalid").await;
    assert_eq!(e["id"], "no-type");
    c.send(json!({"type":"send","id":6,"conv":"1","cmid":"x"})).await; // no body
    let e = expect_error(&mut c, "invalid").await;
    assert_eq!(e["id"], 6);
    c.send(json!({"type":"sync","id":7,"conv":"1","after":"yesterday"})).await; // wrong type
    let e = expect_error(&mut c, "invalid").await;
    assert_eq!(e["id"], 7);
    still_alive(&mut c).await;
    c.send(json!({"type":"send","id":8,"conv":"abc","cmid":"x","body":{"kind":"text","text":"hi"}})).await;
    assert_eq!(expect_error(&mut c, "invalid").await["id"], 8);
    c.send(json!({"type":"send","id":9,"conv":"1","cmid":"has space","body":{"kind":"text","text":"hi"}})).await;
    assert_eq!(expect_error(&mut c, "invalid").await["id"], 9);
    c.send(json!({"type":"send","id":10,"conv":"1","cmid":"x","body":{"kind":"text","text":"   "}})).await;
    assert_eq!(expect_error(&mut c, "invalid").await["id"], 10);
    c.send(json!({"type":"send","id":11,"conv":"1","cmid":"x","body":{"kind":"video","url":"x"}})).await;
    assert_eq!(expect_error(&mut c, "invalid").await["id"], 11);
    still_alive(&mut c).await;

    let mut m = connect(app.addr, &a.token, Proto::MsgPack).await;
    m.send_raw(Message::Binary(vec![0xc1, 0xff].into())).await;
    expect_error(&mut m, "bad_frame").await;
    still_alive(&mut m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_is_enforced() {
    let (_db, app) = setup(|_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let stranger = login(&app.http, &app.base(), "s").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut s = connect(app.addr, &stranger.token, Proto::Json).await;
    let e = s.say(1, &conv, "x", "let me in").await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("forbidden")));
    s.send(json!({"type":"sync","id":2,"conv":conv})).await;
    assert_eq!(expect_error(&mut s, "forbidden").await["id"], 2);
    s.send(json!({"type":"read","id":3,"conv":conv,"seq":1})).await;
    assert_eq!(expect_error(&mut s, "forbidden").await["id"], 3);
    let e = s.say(4, "99999", "y", "nowhere").await;
    assert_eq!(e["code"], "not_found");
    // cmid reused in another conversation by the same sender: a conflict, not a silent mix-up.
    let mut ca = connect(app.addr, &a.token, Proto::Json).await;
    assert_eq!(ca.say(5, &conv, "dup", "one").await["type"], "ack");
    let g = post(&app.http, format!("{}/api/v1/conversations", app.base()), &a.token, json!({"kind":"group","title":"t","members":[]})).await.1;
    let e = ca.say(6, g["id"].as_str().unwrap(), "dup", "two").await;
    assert_eq!(e["code"], "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames() {
    let (_db, app) = setup(|c| c.gateway.max_frame_bytes = 1024).await;
    let a = login(&app.http, &app.base(), "a").await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    assert_eq!(c.hello["max_frame_bytes"], 1024);
    let big = "x".repeat(2000);
    c.send(json!({"type":"send","id":1,"conv":"1","cmid":"big","body":{"kind":"text","text":big}})).await;
    let e = expect_error(&mut c, "too_large").await;
    assert!(e["id"].is_null());
    still_alive(&mut c).await;
    // Above the transport cap (1 MiB here) the frame cannot be read at all: close 1009.
    c.send_raw(Message::Text("y".repeat(2 * 1024 * 1024).into())).await;
    let (code, _) = c.expect_close(WAIT).await.expect("close frame");
    assert_eq!(code, 1009);
    let (s, _) = get(&app.http, format!("{}/healthz", app.base()), "").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_bad_frames_in_a_row_close_with_a_reason() {
    let (_db, app) = setup(|_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    // A good frame resets the count: 9 bad, a good one, 9 bad, a good one, 9 bad again are 27
    // bad frames and the session still answers (without the reset the 10th would close it).
    for _ in 0..3 {
        for _ in 0..9 {
            c.send_raw(Message::Text("nope".into())).await;
        }
        still_alive(&mut c).await;
    }
    // Ten in a row (the default `max_bad_frames`) close it.
    for _ in 0..10 {
        c.send_raw(Message::Text("nope".into())).await;
    }
    let (code, reason) = c.expect_close(WAIT).await.expect("close frame");
    assert_eq!((code, reason.as_str()), (1008, "too_many_bad_frames"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_rate_limit() {
    let (_db, app) = setup(|c| {
        c.gateway.msg_rate = NonZeroU32::new(1).unwrap();
        c.gateway.msg_burst = NonZeroU32::new(3).unwrap();
    })
    .await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    for i in 0..6u64 {
        c.send(json!({"type":"sync","id":i,"conv":conv})).await;
    }
    let mut limited = 0;
    let mut answered = 0;
    while limited + answered < 6 {
        let v = c.recv().await;
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited");
            assert!(v["retry_after_ms"].as_u64().unwrap() > 0);
            limited += 1;
        } else {
            assert_eq!(v["type"], "history");
            answered += 1;
        }
    }
    assert_eq!(answered, 3, "the burst passes");
    assert_eq!(limited, 3);
    still_alive(&mut c).await; // pings are not limited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_checked_before_the_upgrade() {
    let (_db, app) = setup(|c| {
        c.gateway.handshake_rate = NonZeroU32::new(1).unwrap();
        c.gateway.handshake_burst = NonZeroU32::new(3).unwrap();
    })
    .await;
    let a = login(&app.http, &app.base(), "a").await;
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap_or(Value::Null);
            (r.status().as_u16(), body["code"].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    assert_eq!(status(try_connect(app.addr, "", Proto::Json).await.err().unwrap()), (401, "unauthorized".into()));
    assert_eq!(status(try_connect(app.addr, "garbage", Proto::Json).await.err().unwrap()), (401, "unauthorized".into()));
    // A subprotocol we do not speak.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws?token={}", app.addr, a.token),
    )
    .unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    let e = tokio_tungstenite::connect_async(req).await.err().unwrap();
    assert_eq!(status(e), (400, "invalid".into()));
    // The fourth attempt from this address within the second is over the burst of 3.
    let e = try_connect(app.addr, &a.token, Proto::Json).await.err().unwrap();
    assert_eq!(status(e), (429, "rate_limited".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_off_without_slowing_others() {
    let (_db, app) = setup(|c| {
        c.gateway.outbound_queue = 64;
        c.gateway.msg_burst = NonZeroU32::new(10_000).unwrap();
        c.gateway.msg_rate = NonZeroU32::new(10_000).unwrap();
    })
    .await;
    let base = app.base();
    let sender = login(&app.http, &base, "sender").await;
    let slow = login(&app.http, &base, "slow").await;
    let fast = login(&app.http, &base, "fast").await;
    let (_, g) = post(&app.http, format!("{base}/api/v1/conversations"), &sender.token, json!({"kind":"group","title":"g","members":[slow.id, fast.id]})).await;
    let conv = g["id"].as_str().unwrap().to_owned();
    let mut cs = connect(app.addr, &sender.token, Proto::Json).await;
    let mut cslow = connect(app.addr, &slow.token, Proto::Json).await; // never reads until the end
    let mut cfast = connect(app.addr, &fast.token, Proto::Json).await;
    let text = "流".repeat(4000); // ~12 KB a message: the slow reader's socket buffers fill up
    let n = 2000u64;
    // The fast reader keeps up by construction: the sender never gets more than one window
    // (50 < the queue of 64) ahead of what it has read, however busy the machine is.
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let read = read.clone();
        tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                let v = cfast.recv().await;
                assert_eq!(v["type"], "msg", "{v}");
                got += 1;
                read.store(got, std::sync::atomic::Ordering::SeqCst);
            }
            got
        })
    };
    // The sender reads its acks as it goes (in windows of 50), as a real client does.
    for w in 0..n / 50 {
        while read.load(std::sync::atomic::Ordering::SeqCst) < w * 50 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for i in 0..50 {
            cs.send_text(w * 50 + i, &conv, &format!("c{w}-{i}"), &text).await;
        }
        for _ in 0..50 {
            let v = cs.recv().await;
            assert_eq!(v["type"], "ack", "{v}");
        }
    }
    assert_eq!(tokio::time::timeout(WAIT, reader).await.unwrap().unwrap(), n, "the fast reader got everything");
    // The slow one was disconnected (its queue of 64 overflowed), with 4008 on the wire.
    assert!(matches!(cslow.expect_close(Duration::from_secs(30)).await, Some((4008, _)) | None));
    let metrics = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("jbk_ws_closes_total{reason=\"slow_consumer\"} 1"), "{metrics}");
    // Nothing was lost for the slow one: it reconnects and syncs everything.
    let mut again = connect(app.addr, &slow.token, Proto::Json).await;
    assert_eq!(again.sync_all(&conv, 0).await.len() as u64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_connections_are_closed_after_missed_heartbeats() {
    let (_db, app) = setup(|c| {
        c.gateway.heartbeat = Duration::from_millis(100);
        c.gateway.heartbeat_timeout = Duration::from_millis(400);
    })
    .await;
    let a = login(&app.http, &app.base(), "a").await;
    // A live client that pings keeps its session past several timeouts.
    let mut live = connect(app.addr, &a.token, Proto::Json).await;
    // A client that goes silent (does not even read, so it answers no ping) is closed.
    let mut dead = connect(app.addr, &a.token, Proto::Json).await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        still_alive(&mut live).await;
    }
    // The server closed it (the close frame, 4002, may be lost behind the pongs the client
    // owes, so the metric is the witness).
    let _ = dead.expect_close(WAIT).await;
    let metrics = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("jbk_ws_closes_total{reason=\"heartbeat_timeout\"} 1"), "{metrics}");
    assert!(metrics.contains("jbk_ws_connections 1"), "only the live session is left: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_frames_errors_and_ack_latency() {
    let (_db, app) = setup(|_| {}).await;
    let a = login(&app.http, &app.base(), "a").await;
    let b = login(&app.http, &app.base(), "b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    c.say(1, &conv, "m", "hi").await;
    c.send(json!({"type":"teleport"})).await;
    expect_error(&mut c, "unknown_type").await;
    let text = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
    for needle in [
        "jbk_ws_connections 1",
        "jbk_ws_frames_in_total{type=\"send\"} 1",
        "jbk_ws_frames_out_total{type=\"ack\"} 1",
        "jbk_ws_errors_total{code=\"unknown_type\"} 1",
        "jbk_ack_latency_seconds_count 1",
        "jbk_online_users 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

/// Mutated frames in both codecs: each gets an answer or is handled, the session lives (pings in
/// between reset the bad-frame count), the process keeps serving, and no session task is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_kills_the_session_or_the_server() {
    let (_db, app) = setup(|c| {
        c.gateway.msg_burst = NonZeroU32::new(10_000).unwrap();
        c.gateway.msg_rate = NonZeroU32::new(10_000).unwrap();
    })
    .await;
    let a = login(&app.http, &app.base(), "fuzz-a").await;
    let b = login(&app.http, &app.base(), "fuzz-b").await;
    let conv = direct(&app.http, &app.base(), &a, &b).await;
    let seeds = [
        json!({"type":"send","id":1,"conv":conv,"cmid":"f","body":{"kind":"text","text":"hi"}}),
        json!({"type":"sync","id":2,"conv":conv,"after":0,"limit":5}),
        json!({"type":"read","id":3,"conv":conv,"seq":1}),
        json!({"type":"presence_subscribe","id":4,"users":[b.id]}),
        json!({"type":"typing","conv":conv}),
    ];
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for proto in [Proto::Json, Proto::MsgPack] {
        let mut c = connect(app.addr, &a.token, proto).await;
        for i in 0..300u64 {
            let seed = &seeds[(next() % seeds.len() as u64) as usize];
            let mut bytes = match proto {
                Proto::MsgPack => rmp_serde::to_vec_named(seed).unwrap(),
                _ => seed.to_string().into_bytes(),
            };
            for _ in 0..(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes.truncate(at.max(1)),
                    _ => bytes.insert(at, next() as u8),
                }
            }
            let msg = match proto {
                Proto::MsgPack => Message::Binary(bytes.into()),
                _ => Message::Text(String::from_utf8_lossy(&bytes).into_owned().into()),
            };
            c.send_raw(msg).await;
            if i % 5 == 4 {
                still_alive(&mut c).await;
            }
        }
        still_alive(&mut c).await;
    }
    let (s, _) = get(&app.http, format!("{}/healthz", app.base()), "").await;
    assert_eq!(s, 200);
    // Every session task ended once its socket closed.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
        if text.contains("jbk_ws_connections 0") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sessions left open:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_frames_are_answered() {
    use futures_util::StreamExt;
    let (_db, app) = setup(|_| {}).await;
    let a = login(&app.http, &app.base(), "pinger").await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    c.send_raw(Message::Ping(b"are-you-there".to_vec().into())).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, c.ws.next()).await.expect("pong in time").unwrap().unwrap();
        if let Message::Pong(p) = m {
            assert_eq!(&p[..], b"are-you-there");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_idle_sessions_every_heartbeat() {
    use futures_util::StreamExt;
    let (_db, app) = setup(|c| {
        c.gateway.heartbeat = Duration::from_millis(200);
        c.gateway.heartbeat_timeout = Duration::from_secs(60);
    })
    .await;
    let a = login(&app.http, &app.base(), "idle").await;
    let mut c = connect(app.addr, &a.token, Proto::Json).await;
    // An idle session gets the server's pings (the hub's ticker wakes it), several of them.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pings < 3 {
        let m = tokio::time::timeout_at(deadline, c.ws.next()).await.expect("pings in time").unwrap().unwrap();
        if matches!(m, Message::Ping(_)) {
            pings += 1;
        }
    }
    still_alive(&mut c).await;
}
