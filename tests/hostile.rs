//! A hostile client against a real server: raw sockets that break RFC 6455 in each way there
//! is (with the close code each must get), connections that are slow or send nothing (with
//! the timeouts they must hit), the connection caps (shed while `/healthz` answers, and
//! recovered after), the trusted-proxy rule, and every loose-parsing case the strict wire
//! refuses.

mod common;
use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Reads until the peer closes the connection (`Ok(bytes read)`) or `wait` passes (`Err`).
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, &'static str> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Err("still open"),
            Ok(Ok(0)) => return Ok(all),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            // A reset closes it too (the per-IP cap closes without reading).
            Ok(Err(_)) => return Ok(all),
        }
    }
}

fn status_of(resp: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(resp);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body_of(resp: &[u8]) -> Value {
    let text = String::from_utf8_lossy(resp);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// One HTTP/1.1 request on a new connection; the whole answer (the server closes after it).
async fn raw_request(addr: SocketAddr, req: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    read_to_close(&mut s, Duration::from_secs(10)).await.expect("answered and closed")
}

async fn app_with(tweak: impl FnOnce(&mut jiebanke::Config)) -> (TestDb, TestApp) {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, tweak).await;
    (db, app)
}

// ---------------------------------------------------------------------------------------------
// Slow and idle connections

#[tokio::test]
async fn connections_that_never_finish_a_request_are_closed_by_their_timeouts() {
    let (_db, app) = app_with(|c| {
        c.http.header_timeout = Duration::from_millis(600);
        c.http.body_timeout = Duration::from_millis(600);
        c.http.idle_timeout = Duration::from_millis(900);
    })
    .await;
    let addr = app.addr;

    // A TCP connection that sends nothing.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let out = read_to_close(&mut idle, Duration::from_secs(10)).await.expect("an idle socket is closed");
    assert!(out.is_empty());

    // A request head begun and never ended.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    read_to_close(&mut half, Duration::from_secs(10)).await.expect("a half-sent head is closed");

    // A body of 100 announced bytes of which 12 come: 408 in the JSON shape, then closed.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":\"ab").await.unwrap();
    let out = read_to_close(&mut slow, Duration::from_secs(10)).await.expect("a half-sent body is answered");
    assert_eq!(status_of(&out), 408, "{}", String::from_utf8_lossy(&out));
    assert_eq!(body_of(&out)["code"], "timeout");

    // A body announced far past the limit is refused at once (not read for 10^10 bytes).
    let mut huge = TcpStream::connect(addr).await.unwrap();
    huge.write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{\"code\":\"ab\"}").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), huge.read(&mut buf)).await.expect("answered").unwrap();
    assert_eq!(status_of(&buf[..n]), 413, "{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(body_of(&buf[..n])["code"], "too_large");

    // A kept-alive connection, silent after its answer, is closed after the idle timeout.
    let mut ka = TcpStream::connect(addr).await.unwrap();
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = ka.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&buf[..n]), 200);
    let started = tokio::time::Instant::now();
    read_to_close(&mut ka, Duration::from_secs(10)).await.expect("an idle keep-alive is closed");
    // Not by the (shorter) header timeout: the idle clock applies between requests. No timing
    // assertion beyond "it did close"; the phase counters tell which rule closed it.
    let _ = started;

    let (base, mbase) = (app.base(), app.metrics_base());
    assert!(metric(&mbase, "jbk_http_timeouts_total").await.unwrap_or(0.0) >= 4.0);
    let text = reqwest::get(format!("{mbase}/metrics")).await.unwrap().text().await.unwrap();
    for phase in ["header", "body", "idle"] {
        let line = text
            .lines()
            .find(|l| l.starts_with("jbk_http_timeouts_total") && l.contains(&format!("phase=\"{phase}\"")))
            .unwrap_or_else(|| panic!("no {phase} timeout counted:\n{text}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
    // The server still serves.
    let (s, _) = try_login(&app.http, &base, "alice").await;
    assert_eq!(s, 200);
}

// ---------------------------------------------------------------------------------------------
// Connection caps

#[tokio::test]
async fn the_process_cap_sheds_new_clients_while_healthz_answers_and_recovers_after() {
    let (_db, app) = app_with(|c| {
        c.http.max_connections = 10;
        c.http.reserved_connections = 2;
        c.http.max_connections_per_ip = 1000;
        // Held sockets stay until the test closes them.
        c.http.header_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = app.addr;
    let base = app.base();
    // A client that keeps no connection open, so that the test counts every permit.
    let once = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let alice = login(&once, &base, "alice").await;

    // Eight permits: four WebSocket sessions and four sockets that send nothing.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(connect(addr, &alice.token, Proto::Json).await);
    }
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A new client now gets a reserved permit: only the probes answer.
    let out = raw_request(addr, "GET /api/v1/me HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&out), 503, "{}", String::from_utf8_lossy(&out));
    assert_eq!(body_of(&out)["code"], "overloaded");
    let out = raw_request(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&out), 200, "{}", String::from_utf8_lossy(&out));
    let out = raw_request(addr, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&out), 200, "{}", String::from_utf8_lossy(&out));

    // With the reserve held too, a new client waits in the backlog: no answer, no EMFILE.
    let r1 = TcpStream::connect(addr).await.unwrap();
    let r2 = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    waiting.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf)).await.is_err(),
        "past every permit the server does not accept"
    );

    // Everything recovers once the held sockets go.
    drop(idle);
    drop((r1, r2));
    let out = read_to_close(&mut waiting, Duration::from_secs(10)).await.expect("the waiting client is served");
    assert_eq!(status_of(&out), 200);
    let (s, _) = get(&once, format!("{base}/api/v1/me"), &alice.token).await;
    assert_eq!(s, 200);
    // The sessions held their permits throughout and still work.
    let mut c = sessions.pop().unwrap();
    c.send(json!({"type":"ping","id":1})).await;
    assert_eq!(c.recv_type("pong").await["id"], 1);
    assert!(metric(&app.metrics_base(), "jbk_http_connections_shed_total").await.unwrap_or(0.0) >= 1.0);
}

#[tokio::test]
async fn one_ip_cannot_hold_more_than_its_cap() {
    let (_db, app) = app_with(|c| {
        c.http.max_connections_per_ip = 3;
        c.http.header_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = app.addr;
    let held: Vec<TcpStream> = futures_util::future::join_all((0..3).map(|_| TcpStream::connect(addr))).await.into_iter().map(Result::unwrap).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The fourth is closed at once, without an answer.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let _ = fourth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let out = read_to_close(&mut fourth, Duration::from_secs(5)).await.expect("closed at once");
    assert_eq!(status_of(&out), 0, "no answer: {}", String::from_utf8_lossy(&out));
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = raw_request(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&out), 200);
    let text = reqwest::get(format!("{}/metrics", app.metrics_base())).await.unwrap().text().await.unwrap();
    assert!(text.lines().any(|l| l.starts_with("jbk_http_connections_shed_total{reason=\"per_ip\"} ") && !l.ends_with(" 0")), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The real client IP

async fn login_from(app: &TestApp, code: &str, forwarded: &str) -> u16 {
    app.http
        .post(format!("{}/api/v1/auth/login", app.base()))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let one = std::num::NonZeroU32::new(1).unwrap();
    // Trusted: each forwarded client has its own login bucket (burst 5).
    let (_db, app) = app_with(|c| {
        c.login_rate = one;
        c.http.trusted_proxies = jiebanke::listener::parse_trusted_proxies("127.0.0.1/32").unwrap();
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(login_from(&app, &format!("u{i}"), "203.0.113.1").await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(login_from(&app, "other", "203.0.113.2").await, 200, "another client behind the proxy");

    // Untrusted: the header is ignored, every request is the peer's.
    let (_db2, app2) = app_with(|c| c.login_rate = one).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(login_from(&app2, &format!("u{i}"), &format!("203.0.113.{i}")).await);
    }
    assert_eq!(statuses.last(), Some(&429), "a spoofed header buys nothing: {statuses:?}");
}

// ---------------------------------------------------------------------------------------------
// RFC 6455 close codes

/// Opens a WebSocket by hand and returns the socket after the 101.
async fn raw_ws(addr: SocketAddr, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert_eq!(status_of(&head), 101, "{}", String::from_utf8_lossy(&head));
    s
}

/// A client frame: `first` is FIN/RSV/opcode, masked with a fixed key unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads server frames until a close frame; returns its code and reason. Fails on a reset
/// before it (the close frame must reach the client).
async fn read_close(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Parse what we have: server frames are unmasked.
        let mut at = 0;
        while buf.len() >= at + 2 {
            let op = buf[at] & 0x0f;
            let mut len = (buf[at + 1] & 0x7f) as usize;
            let mut hdr = 2;
            if len == 126 {
                if buf.len() < at + 4 {
                    break;
                }
                len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
                hdr = 4;
            } else if len == 127 {
                if buf.len() < at + 10 {
                    break;
                }
                len = u64::from_be_bytes(buf[at + 2..at + 10].try_into().unwrap()) as usize;
                hdr = 10;
            }
            if buf.len() < at + hdr + len {
                break;
            }
            let payload = &buf[at + hdr..at + hdr + len];
            if op == 0x8 {
                assert!(payload.len() >= 2, "a close frame with a status code, got {payload:?}");
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
            at += hdr + len;
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => panic!("no close frame in time"),
            Ok(Ok(0)) => panic!("closed without a close frame"),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => panic!("connection reset before the close frame: {e}"),
        }
    }
}

#[tokio::test]
async fn protocol_errors_close_with_the_rfc_6455_codes() {
    let (_db, app) = app_with(|c| {
        c.gateway.max_frame_bytes = 1024;
        c.gateway.hard_max_bytes = 4096;
    })
    .await;
    let alice = login(&app.http, &app.base(), "alice").await;
    let mut close_payload = 1000u16.to_be_bytes().to_vec();
    close_payload.extend_from_slice(&[0xff, 0xfe]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("invalid UTF-8 in a text frame", frame(0x81, &[0x68, 0xff, 0xfe], true), 1007),
        ("invalid UTF-8 in a close reason", frame(0x88, &close_payload, true), 1007),
        ("a reserved bit set", frame(0x81 | 0x40, b"{}", true), 1002),
        ("an unknown data opcode", frame(0x83, b"{}", true), 1002),
        ("an unknown control opcode", frame(0x8b, b"", true), 1002),
        ("an unmasked client frame", frame(0x81, b"{}", false), 1002),
        ("a control frame over 125 bytes", frame(0x89, &[b'p'; 126], true), 1002),
        ("a fragmented control frame", frame(0x09, b"p", true), 1002),
        ("a continuation without a start", frame(0x80, b"{}", true), 1002),
        ("a new message inside a fragmented one", [frame(0x01, b"{\"ty", true), frame(0x81, b"{}", true)].concat(), 1002),
        ("a message over the hard cap", frame(0x82, &vec![b'x'; 5000], true), 1009),
    ];
    for (what, bytes, code) in cases {
        let mut s = raw_ws(app.addr, &alice.token).await;
        s.write_all(&bytes).await.unwrap();
        let (got, reason) = read_close(&mut s).await;
        assert_eq!(got, code, "{what}: reason {reason:?}");
        assert!(!reason.is_empty(), "{what}: the close frame says why");
        // Our close answered: the server ends the connection.
        let _ = s.write_all(&frame(0x88, &1000u16.to_be_bytes(), true)).await;
        read_to_close(&mut s, Duration::from_secs(5)).await.expect("closed after the handshake");
    }
    let text = reqwest::get(format!("{}/metrics", app.metrics_base())).await.unwrap().text().await.unwrap();
    assert!(text.contains("reason=\"protocol_error\""), "{text}");
    assert!(text.contains("reason=\"invalid_utf8\""), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The strict wire

async fn error_code(c: &mut Client, id: u64) -> String {
    loop {
        let v = c.recv().await;
        if v["type"] == "error" && (v["id"] == id || v["id"].is_null()) {
            return v["code"].as_str().unwrap().to_owned();
        }
        assert!(v["id"] != id, "expected an error for {id}, got {v}");
    }
}

#[tokio::test]
async fn loose_frames_are_refused_in_both_codecs() {
    let (_db, app) = app_with(|_| {}).await;
    let base = app.base();
    let alice = login(&app.http, &base, "alice").await;
    let bob = login(&app.http, &base, "bob").await;
    let conv = direct(&app.http, &base, &alice, &bob).await;
    let mut c = connect(app.addr, &alice.token, Proto::Json).await;
    assert_eq!(c.say(1, &conv, "ok-1", "hi").await["type"], "ack");

    let cases: Vec<(Value, &str)> = vec![
        (json!({"type":"sync","id":10,"conv":format!(" {conv}"),"after":0}), "invalid"),
        (json!({"type":"sync","id":11,"conv":format!("\u{3000} {conv}\t"),"after":0}), "invalid"),
        (json!({"type":"sync","id":12,"conv":format!("0{conv}"),"after":0}), "invalid"),
        (json!({"type":"sync","id":13,"conv":format!("+{conv}"),"after":0}), "invalid"),
        (json!({"type":"sync","id":14,"conv":(1u64 << 53) + 1,"after":0}), "invalid"),
        (json!({"type":"sync","id":15,"conv":conv,"after":1u64 << 63}), "invalid"),
        (json!({"type":"sync","id":16,"conv":conv,"after":u64::MAX}), "invalid"),
        (json!({"type":"read","id":17,"conv":conv,"seq":1u64 << 63}), "invalid"),
        (json!({"type":"sync","id":18,"conv":conv,"after":1.5}), "invalid"),
        (json!({"type":"send","id":19,"conv":conv,"cmid":"loose-1","body":["text","x"]}), "invalid"),
        (json!({"type":"send","id":20,"conv":conv,"cmid":"loose-2","body":{"kind":0,"text":"x"}}), "invalid"),
        (json!({"type":"send","id":21,"conv":conv,"cmid":"loose-3","body":{"kind":"text","text":["x"]}}), "invalid"),
        (json!({"type":"send","id":22,"conv":[conv],"cmid":"loose-4","body":{"kind":"text","text":"x"}}), "invalid"),
        (json!({"type":"presence_subscribe","id":23,"users":[format!(" {}", bob.id)]}), "invalid"),
        // The one text rule, as on REST: no NUL or other control characters (line breaks and
        // tabs are fine), no bidi controls, no tag characters, not only invisible characters.
        (json!({"type":"send","id":24,"conv":conv,"cmid":"loose-5","body":{"kind":"text","text":"a\u{0}b"}}), "invalid"),
        (json!({"type":"send","id":25,"conv":conv,"cmid":"loose-6","body":{"kind":"text","text":"\u{202E}gnp.exe"}}), "invalid"),
        (json!({"type":"send","id":26,"conv":conv,"cmid":"loose-7","body":{"kind":"text","text":"hi\u{E0041}"}}), "invalid"),
        (json!({"type":"send","id":27,"conv":conv,"cmid":"loose-8","body":{"kind":"text","text":"\u{200B}\u{3164}"}}), "invalid"),
        (json!({"type":"match_request","id":28,"destination":"\u{202E}ilaD","from":"2030-01-01","to":"2030-01-05"}), "invalid"),
        (json!({"type":"report","id":29,"conv":conv,"seq":1,"reason":"\u{200B}"}), "invalid"),
    ];
    for (i, (frame, code)) in cases.iter().enumerate() {
        c.send(frame.clone()).await;
        let id = frame["id"].as_u64().unwrap();
        assert_eq!(&error_code(&mut c, id).await, code, "{frame}");
        // A good frame between bad ones, so that the bad-frame limit (10 in a row) is not hit.
        c.send(json!({"type":"ping","id":1000 + i})).await;
        assert_eq!(c.recv_type("pong").await["id"], 1000 + i);
    }
    // A frame as an array (serde would read it as a sequence of fields).
    c.send_raw(Message::Text(json!(["sync", 30, conv, 0]).to_string().into())).await;
    assert_eq!(error_code(&mut c, 30).await, "bad_frame");
    // Nothing loose was stored: the conversation has the one message.
    let all = c.sync_all(&conv, 0).await;
    assert_eq!(all.len(), 1, "{all:?}");
    // A read past the last seq (below 2^63) is still capped at it.
    c.send(json!({"type":"read","id":31,"conv":conv,"seq":1u64 << 40})).await;
    c.send(json!({"type":"ping","id":32})).await;
    let pong = c.recv_type("pong").await;
    assert_eq!(pong["id"], 32);
    let (_, list) = get(&app.http, format!("{base}/api/v1/conversations"), &alice.token).await;
    let me = list["items"].as_array().unwrap().iter().find(|x| x["id"] == conv.as_str()).unwrap().clone();
    assert_eq!(me["read_seq"], 1, "{me}");

    // MessagePack: an integer map key, a bin-typed `type`.
    let mut m = connect(app.addr, &alice.token, Proto::MsgPack).await;
    // {"type":"ping","id":40, 1: "x"}
    let mut bytes = vec![0x83, 0xa4];
    bytes.extend_from_slice(b"type");
    bytes.extend_from_slice(&[0xa4]);
    bytes.extend_from_slice(b"ping");
    bytes.extend_from_slice(&[0xa2]);
    bytes.extend_from_slice(b"id");
    bytes.push(40);
    bytes.extend_from_slice(&[0x01, 0xa1, b'x']);
    m.send_raw(Message::Binary(bytes.into())).await;
    assert_eq!(error_code(&mut m, 40).await, "bad_frame");
    // {"type": bin "ping", "id": 41}
    let mut bytes = vec![0x82, 0xa4];
    bytes.extend_from_slice(b"type");
    bytes.extend_from_slice(&[0xc4, 0x04]);
    bytes.extend_from_slice(b"ping");
    bytes.extend_from_slice(&[0xa2]);
    bytes.extend_from_slice(b"id");
    bytes.push(41);
    m.send_raw(Message::Binary(bytes.into())).await;
    assert_eq!(error_code(&mut m, 41).await, "bad_frame");
    // The same loose cases as JSON, through MessagePack.
    for (i, (frame, code)) in cases.iter().enumerate() {
        m.send(frame.clone()).await;
        let id = frame["id"].as_u64().unwrap();
        assert_eq!(&error_code(&mut m, id).await, code, "msgpack {frame}");
        m.send(json!({"type":"ping","id":2000 + i})).await;
        assert_eq!(m.recv_type("pong").await["id"], 2000 + i);
    }
    m.send(json!({"type":"ping","id":42})).await;
    assert_eq!(m.recv_type("pong").await["id"], 42);
    let _ = c.ws.close(None).await;
}

#[tokio::test]
async fn loose_rest_input_is_refused_in_the_json_shape() {
    let (db, app) = app_with(|_| {}).await;
    let base = app.base();
    let alice = login(&app.http, &base, "alice").await;
    let bob = login(&app.http, &base, "bob").await;
    let conv = direct(&app.http, &base, &alice, &bob).await;

    // Path ids with white space or leading zeros are not conversation 1.
    for path in [format!("%20{conv}"), format!("{conv}%20"), format!("0{conv}"), format!("%E3%80%80{conv}")] {
        let (s, v) = get(&app.http, format!("{base}/api/v1/conversations/{path}"), &alice.token).await;
        assert_eq!(s, 404, "{path}: {v}");
        assert_eq!(v["code"], "not_found");
    }
    let (s, _) = get(&app.http, format!("{base}/api/v1/conversations/{conv}"), &alice.token).await;
    assert_eq!(s, 200);

    // Bodies: an array for a struct, a number for a string, ids with white space.
    let raw = |body: &'static str, path: &'static str, token: Option<String>| {
        let mut r = app.http.post(format!("{base}{path}")).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let resp = r.send().await.unwrap();
            let s = resp.status().as_u16();
            (s, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = raw(r#"["alice"]"#, "/api/v1/auth/login", None).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")), "{v}");
    let (s, v) = raw(r#"{"code":7}"#, "/api/v1/auth/login", None).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")), "{v}");
    let (s, v) = post(&app.http, format!("{base}/api/v1/conversations"), &alice.token, json!({"kind":"direct","members":[format!(" {}", bob.id)]})).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")), "{v}");
    let (s, v) = post(&app.http, format!("{base}/api/v1/conversations"), &alice.token, json!(["direct", [bob.id]])).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")), "{v}");
    let (s, v) = raw("{not json", "/api/v1/auth/login", None).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")), "{v}");

    // Unknown routes and wrong methods answer in the JSON shape too (a fuzzing find).
    let (s, v) = get(&app.http, format!("{base}/api/v1/conversations/"), &alice.token).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")), "{v}");
    // `/metrics` is not on the app's port (it has a listener of its own, for operators).
    let (s404, v) = get(&app.http, format!("{base}/metrics"), &alice.token).await;
    assert_eq!((s404, v["code"].as_str()), (404, Some("not_found")), "{v}");
    let m = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.text().await.unwrap().contains("jbk_payment_callbacks_total"));
    let resp = app.http.delete(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "method_not_allowed");

    // The one text rule, as on the socket: bidi controls, tag characters, control characters
    // and invisible-only names are refused, each naming its field.
    for (body, field) in [
        (json!({"nickname": "\u{202E}gnp.exe"}), "nickname"),
        (json!({"nickname": "\u{200B}\u{3164}"}), "nickname"),
        (json!({"nickname": "a\u{E0041}"}), "nickname"),
        (json!({"bio": "a\u{0}b"}), "bio"),
        (json!({"bio": "\u{2066}x\u{2069}"}), "bio"),
        (json!({"tags": ["\u{FEFF}"]}), "tags[0]"),
    ] {
        let r = app.http.patch(format!("{base}/api/v1/me")).bearer_auth(&alice.token).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some(field)), "{body}: {v}");
    }
    let r = app.http.patch(format!("{base}/api/v1/me")).bearer_auth(&alice.token).json(&json!({"bio": "两行\n\t文字"})).send().await.unwrap();
    assert_eq!(r.status(), 200, "line breaks and tabs in a bio");
    let (s, v) = post(&app.http, format!("{base}/api/v1/conversations"), &alice.token, json!({"kind": "group", "title": "\u{200B}", "members": [bob.id]})).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (422, Some("title")), "{v}");

    // The history's `limit` outside 1-200 is refused, never clamped.
    for limit in ["0", "201", "4294967295", "-1"] {
        let (s, v) = get(&app.http, format!("{base}/api/v1/conversations/{conv}/messages?limit={limit}"), &alice.token).await;
        assert_eq!((s, v["code"].as_str(), v["fields"][0]["field"].as_str()), (422, Some("invalid"), Some("limit")), "{limit}: {v}");
    }
    assert_eq!(get(&app.http, format!("{base}/api/v1/conversations/{conv}/messages?limit=200"), &alice.token).await.0, 200);

    // Seqs past 2^63 and repeated parameters.
    let (s, v) = get(&app.http, format!("{base}/api/v1/conversations/{conv}/messages?after={}", 1u64 << 63), &alice.token).await;
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid")), "{v}");
    let (s, v) = get(&app.http, format!("{base}/api/v1/conversations/{conv}/messages?after=0&after=1"), &alice.token).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")), "{v}");
    let resp = app.http.get(format!("{base}/ws?token=a&token=b")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("the JSON error body");
    assert_eq!(v["code"], "bad_request");
    // Logging out: a repeated or non-boolean `all`, and no token, in the JSON shape.
    for q in ["?all=1&all=0", "?all=yes", "?all="] {
        let r = app.http.post(format!("{base}/api/v1/auth/logout{q}")).bearer_auth(&alice.token).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_request", "{q}");
    }
    let r = app.http.post(format!("{base}/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].as_str().map(str::to_owned)), (401, Some("unauthorized".into())));
    // The token protocol: alone (no codec to select), two of them, or one of 8 KB.
    let ws_with = |protocols: String| {
        let http = app.http.clone();
        let url = format!("{base}/ws");
        async move {
            let r = http
                .get(url)
                .header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("Sec-WebSocket-Protocol", protocols)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null)["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    assert_eq!(ws_with(format!("jbk.auth.{}", alice.token)).await, (400, "invalid".to_owned()));
    assert_eq!(ws_with(format!("jbk.v1.json, jbk.auth.{}, jbk.auth.x", alice.token)).await, (400, "invalid".to_owned()));
    assert_eq!(ws_with(format!("jbk.v1.json, jbk.auth.{}", "a".repeat(8192))).await, (401, "unauthorized".to_owned()));

    // Tokens: a valid one of a user who does not exist; one issued or valid only in the future.
    let secret = std::fs::read_to_string(db.dir.0.join("jwt-secret")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let forge = |claims: Value| {
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes())).unwrap()
    };
    let ghost = forge(json!({"sub":"999999","iat":now,"exp":now + 600,"iss":"jiebanke"}));
    let future_iat = forge(json!({"sub":alice.id,"iat":now + 3600,"exp":now + 7200,"iss":"jiebanke"}));
    let future_nbf = forge(json!({"sub":alice.id,"iat":now,"nbf":now + 3600,"exp":now + 7200,"iss":"jiebanke"}));
    // Well-formed and signed with our key, but naming no session, or one never opened by a
    // login: refused (a token counts only while its session is live).
    let sessionless = forge(json!({"sub":alice.id,"iat":now,"exp":now + 600,"iss":"jiebanke"}));
    let unopened = forge(json!({"sub":alice.id,"iat":now,"exp":now + 600,"iss":"jiebanke","jti":"0123456789abcdef0123456789abcdef"}));
    for (what, t) in [("unknown user", &ghost), ("iat in the future", &future_iat), ("nbf in the future", &future_nbf), ("no session", &sessionless), ("a session never opened", &unopened)] {
        let (s, v) = get(&app.http, format!("{base}/api/v1/me"), t).await;
        assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{what}: {v}");
        let (s, _) = get(&app.http, format!("{base}/api/v1/conversations"), t).await;
        assert_eq!(s, 401, "{what}");
        let e = try_connect(app.addr, t, Proto::Json).await.err().unwrap_or_else(|| panic!("{what}: upgrade refused"));
        match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401, "{what}"),
            other => panic!("{what}: {other}"),
        }
    }
    let (s, _) = get(&app.http, format!("{base}/api/v1/me"), &alice.token).await;
    assert_eq!(s, 200, "a token of ours from a login works");
}

// ---------------------------------------------------------------------------------------------
// EMFILE

/// The connection cap set above what the file limit allows (a misconfiguration): accept runs
/// out of descriptors, backs off with one log line for the episode, counts it, and recovers
/// by itself once descriptors are free.
#[tokio::test]
async fn accept_out_of_descriptors_backs_off_quietly_and_recovers() {
    use std::os::unix::process::CommandExt;
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let port = free_port();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = db.dir.0.join("emfile.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jiebanke"));
    cmd.arg("serve")
        .env("JBK_LISTEN", addr.to_string())
        .env("JBK_METRICS_LISTEN", metrics_addr.to_string())
        .env("JBK_DATA_DIR", &db.dir.0)
        .env("JBK_MAX_CONNECTIONS", "5000")
        .env("JBK_MAX_CONNECTIONS_PER_IP", "5000")
        .env_remove("JBK_DATABASE_URL")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http.get(format!("http://{addr}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(tokio::time::Instant::now() < deadline, "{}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // More idle sockets than the process has descriptors left.
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let it hit the limit and back off for a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "did not recover: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = http.get(format!("http://{metrics_addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let emfile = text
        .lines()
        .find(|l| l.starts_with("jbk_http_accept_errors_total{kind=\"emfile\"}"))
        .unwrap_or_else(|| panic!("no emfile count:\n{text}"));
    let n: f64 = emfile.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{emfile}");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    let warnings = logged.matches("accept failed: out of file descriptors").count();
    assert!(warnings >= 1, "{logged}");
    // One line per episode, not per attempt (there were at least `n` attempts).
    assert!((warnings as f64) < n || n == 1.0, "{warnings} warnings for {n} failed accepts");
    assert!(logged.contains("accept works again"), "{logged}");
}

// ---------------------------------------------------------------------------------------------
// Request rates

#[tokio::test]
async fn rest_requests_are_limited_per_ip_and_writes_per_user() {
    let nz = |n| std::num::NonZeroU32::new(n).unwrap();
    let (_db, app) = app_with(|c| {
        c.http_rate = (nz(1), nz(8));
        c.write_rate = (nz(1), nz(2));
    })
    .await;
    let base = app.base();
    let alice = login_default(&app.http, &base, "alice").await;
    let bob = login_default(&app.http, &base, "bob").await;
    // Writes per user: two creations go through, the third is refused; bob still writes.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (s, _) = post(&app.http, format!("{base}/api/v1/conversations"), &alice.token, json!({"kind":"direct","members":[bob.id]})).await;
        statuses.push(s);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    let (s, _) = post(&app.http, format!("{base}/api/v1/conversations"), &bob.token, json!({"kind":"direct","members":[alice.id]})).await;
    assert_eq!(s, 200, "another user's writes are their own");
    // Reads are not writes; but every request counts against the address (burst 8: two logins
    // and four posts so far).
    let mut last = None;
    for _ in 0..5 {
        let resp = app.http.get(format!("{base}/api/v1/me")).bearer_auth(&alice.token).send().await.unwrap();
        if resp.status() == 429 {
            last = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 200);
    }
    let resp = last.expect("the address ran out of its burst");
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], "rate_limited");
    assert!(v["retry_after_ms"].as_u64().unwrap() >= 1, "{v}");
    // The OpenAPI document and its page are counted like the rest (a cell that refilled
    // meanwhile lets one through, not three).
    for path in ["/openapi.json", "/docs/"] {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let resp = app.http.get(format!("{base}{path}")).send().await.unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                assert!(resp.headers().contains_key("retry-after"), "{path}");
                break;
            }
        }
        assert_eq!(statuses.last(), Some(&429), "{path} past the address's limit: {statuses:?}");
    }
    // The probes are not counted.
    for _ in 0..20 {
        assert_eq!(app.http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    }
    let (s, _) = get(&app.http, format!("{base}/readyz"), "").await;
    assert_eq!(s, 200);
}
