//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` call them, and
//! `tests/fuzz_corpus.rs` replays the committed corpus and every crash found through them as
//! ordinary tests). Each returns normally for any input, or panics when the server broke its
//! contract: a panic, a 5xx, an error that is not the one JSON shape, or a connection left
//! hanging.
//!
//! - [`frames`]: the frame decoder, both codecs.
//! - [`tokens`]: the login code, the bearer-token parser and the `jscode2session` answer.
//! - [`rest_body`]: a real server's router (no socket) fed arbitrary bodies, queries and path
//!   ids on the endpoints that read them.
//! - [`session_stream`]: a real server on loopback fed arbitrary bytes after a WebSocket
//!   handshake, raw or cut into well-formed frames.

use crate::{Application, Config};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use jiebanke_chat_core::ports::TokenVerifier;
use jiebanke_gateway::frame::{self, Codec};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_service::Service;

/// The frame decoder in both codecs: never a panic, and what decodes has a known type.
pub fn frames(data: &[u8]) {
    for codec in [Codec::Json, Codec::MsgPack] {
        match frame::decode(codec, data) {
            Ok(f) => assert!(frame::CLIENT_TYPES.contains(&f.type_name())),
            Err(e) => assert!(["bad_frame", "invalid", "unknown_type"].contains(&e.code), "{}", e.code),
        }
    }
}

/// Keys that verify nothing but the harness's own tokens.
fn keys() -> &'static jiebanke_rest::auth::JwtKeys {
    static KEYS: OnceLock<jiebanke_rest::auth::JwtKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        jiebanke_rest::auth::JwtKeys::new(&jiebanke_rest::auth::Secret::new("fuzzing-secret-fuzzing-secret-0123"), Duration::from_secs(600))
    })
}

/// The login code parser, the token parser and the `jscode2session` answer, each on the input
/// (as text): no panic, and no input verifies as a token: none is signed with the harness's
/// secret (no seed is), so one that verifies would be a forgery.
pub fn tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = jiebanke_rest::auth::LoginCode::parse(&text);
    assert!(keys().verify(&text).is_err(), "an input that was never signed verified as a token");
    match jiebanke_rest::auth::code2session_outcome(&text) {
        Ok(id) => assert!(!id.subject.is_empty() && id.subject.len() <= 128),
        Err(jiebanke_rest::auth::Code2SessionError::Api(e)) => assert!(e.status.is_client_error()),
        Err(jiebanke_rest::auth::Code2SessionError::Unexpected(_)) => {}
    }
}

/// A server of the harness's own, in a data dir it made, on a runtime of its own.
struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    addr: SocketAddr,
    token: String,
    conv: String,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("jbk-fuzz-{:016x}", rand::random::<u64>()));
        let mut config = Config::dev(dir);
        config.store.sqlite_sync = jiebanke_storage::SqliteSync::Normal;
        config.login_rate = std::num::NonZeroU32::MAX;
        config.http_rate = (std::num::NonZeroU32::MAX, std::num::NonZeroU32::MAX);
        config.write_rate = (std::num::NonZeroU32::MAX, std::num::NonZeroU32::MAX);
        config.gateway.handshake_rate = std::num::NonZeroU32::MAX;
        config.gateway.handshake_burst = std::num::NonZeroU32::MAX;
        config.gateway.msg_rate = std::num::NonZeroU32::MAX;
        config.gateway.msg_burst = std::num::NonZeroU32::MAX;
        config.http.max_connections_per_ip = 100_000;
        config.http.header_timeout = Duration::from_secs(2);
        // The caller is an admin, so that the staff routes are reached past their role check.
        config.admins = vec![("dev".into(), "fuzz-a".into())];
        let (router, addr, token, conv) = rt.block_on(async {
            let app = Application::build(config).await.expect("server builds");
            let router = app.router();
            let addr = app.local_addr();
            tokio::spawn(app.run());
            let mut h = (router.clone(), addr);
            let (_, v) = call(&mut h.0, Method::POST, "/api/v1/auth/login", None, br#"{"code":"fuzz-a"}"#.to_vec()).await;
            let token = v["token"].as_str().expect("login").to_owned();
            let (_, b) = call(&mut h.0, Method::POST, "/api/v1/auth/login", None, br#"{"code":"fuzz-b"}"#.to_vec()).await;
            let bob = b["user"]["id"].as_str().expect("login").to_owned();
            let body = serde_json::json!({"kind":"direct","members":[bob]}).to_string().into_bytes();
            let (_, c) = call(&mut h.0, Method::POST, "/api/v1/conversations", Some(&token), body).await;
            let conv = c["id"].as_str().expect("conversation").to_owned();
            (router, addr, token, conv)
        });
        Harness { rt, router, addr, token, conv }
    })
}

/// One request through the router; its status and JSON body (Null if none).
async fn call(router: &mut axum::Router, method: Method, uri: &str, token: Option<&str>, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let content_type = if uri == "/api/v1/uploads" { "multipart/form-data; boundary=X" } else { "application/json" };
    let mut req = Request::builder().method(method).uri(uri).header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body)).expect("request");
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
    let resp = router.call(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Percent-encodes every byte, so that the input stays one path segment or query value.
fn pct(data: &[u8]) -> String {
    data.iter().map(|b| format!("%{b:02X}")).collect()
}

/// The REST endpoints that read a body, a query or a path id, fed the input (its first byte
/// picks the endpoint). Every answer is below 500, and every error is the one JSON shape.
pub fn rest_body(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let h = harness();
    let conv = &h.conv;
    let (method, uri, auth, body) = match pick % 42 {
        0 => (Method::POST, "/api/v1/auth/login".to_owned(), false, rest.to_vec()),
        1 => (Method::POST, "/api/v1/conversations".to_owned(), true, rest.to_vec()),
        2 => (Method::POST, format!("/api/v1/conversations/{conv}/members"), true, rest.to_vec()),
        3 => (Method::POST, "/api/v1/admin/orders".to_owned(), true, rest.to_vec()),
        4 => (Method::GET, format!("/api/v1/conversations/{conv}/messages?after={}&limit={}", pct(rest), pct(rest)), true, Vec::new()),
        5 => (Method::POST, format!("/api/v1/alerts/{}/ack", pct(rest)), true, Vec::new()),
        6 => (Method::GET, format!("/api/v1/conversations/{}", pct(rest)), true, Vec::new()),
        7 => (Method::DELETE, format!("/api/v1/conversations/{conv}/members/{}", pct(rest)), true, Vec::new()),
        8 => (Method::PATCH, "/api/v1/me".to_owned(), true, rest.to_vec()),
        9 => (Method::PATCH, "/api/v1/me/settings".to_owned(), true, rest.to_vec()),
        10 => (Method::PUT, "/api/v1/me/phone".to_owned(), true, rest.to_vec()),
        11 => (Method::PUT, "/api/v1/me/consent".to_owned(), true, rest.to_vec()),
        12 => (Method::PUT, format!("/api/v1/me/blocks/{}", pct(rest)), true, Vec::new()),
        13 => (Method::GET, format!("/api/v1/conversations?limit={}&cursor={}", pct(rest), pct(rest)), true, Vec::new()),
        14 => (Method::GET, format!("/api/v1/users/{}", pct(rest)), true, Vec::new()),
        15 => (Method::GET, format!("/uploads/{}", pct(rest)), false, Vec::new()),
        17 => (Method::POST, "/api/v1/merchants/applications".to_owned(), true, rest.to_vec()),
        18 => (Method::POST, "/api/v1/merchant-leads".to_owned(), false, rest.to_vec()),
        19 => (Method::POST, format!("/api/v1/admin/merchant-applications/{}/reject", pct(&rest[..rest.len().min(4)])), true, rest.to_vec()),
        20 => (Method::GET, format!("/api/v1/admin/audit?actor={}&action={}&cursor={}", pct(rest), pct(rest), pct(rest)), true, Vec::new()),
        21 => (Method::PUT, format!("/api/v1/admin/users/{}/role", pct(&rest[..rest.len().min(4)])), true, rest.to_vec()),
        22 => (Method::GET, format!("/api/v1/merchants?category={}&cursor={}", pct(rest), pct(rest)), false, Vec::new()),
        23 => (Method::POST, "/api/v1/auth/staff/login".to_owned(), false, rest.to_vec()),
        24 => (Method::POST, "/api/v1/admin/staff".to_owned(), true, rest.to_vec()),
        25 => (Method::GET, format!("/api/v1/auth/qr/{}", pct(rest)), false, Vec::new()),
        26 => (Method::POST, format!("/api/v1/auth/qr/{}/confirm", pct(rest)), true, Vec::new()),
        27 => (Method::POST, format!("/api/v1/admin/moderation/{}/resolve", pct(&rest[..rest.len().min(3)])), true, rest.to_vec()),
        28 => (Method::POST, format!("/api/v1/users/{}/report", pct(&rest[..rest.len().min(2)])), true, rest.to_vec()),
        29 => (Method::GET, format!("/api/v1/admin/moderation?status={}&kind={}&cursor={}", pct(rest), pct(rest), pct(rest)), true, Vec::new()),
        30 => (Method::GET, format!("/api/v1/admin/users?q={}&cursor={}", pct(rest), pct(rest)), true, Vec::new()),
        31 => (Method::POST, "/api/v1/merchant/products".to_owned(), true, rest.to_vec()),
        32 => (Method::PATCH, format!("/api/v1/merchant/products/{}", pct(&rest[..rest.len().min(2)])), true, rest.to_vec()),
        33 => (Method::GET, format!("/api/v1/products?merchant={}&q={}&cursor={}", pct(rest), pct(rest), pct(rest)), false, Vec::new()),
        34 => (Method::POST, "/api/v1/merchant/animals".to_owned(), true, rest.to_vec()),
        35 => (Method::POST, "/api/v1/orders".to_owned(), true, rest.to_vec()),
        36 => (Method::GET, format!("/api/v1/orders?state={}&limit={}&cursor={}", pct(rest), pct(rest), pct(rest)), true, Vec::new()),
        37 => (Method::POST, format!("/api/v1/orders/{}/refund", pct(&rest[..rest.len().min(3)])), true, rest.to_vec()),
        // WeChat Pay's callback, unsigned: refused in WeChat's own format (`code`, `message`).
        38 => (Method::POST, "/api/v1/payments/wechat/notify".to_owned(), false, rest.to_vec()),
        39 => (Method::POST, format!("/api/v1/payments/local/{}/confirm", pct(rest)), true, Vec::new()),
        40 => (Method::POST, format!("/api/v1/animals/{}/claims", pct(&rest[..rest.len().min(2)])), true, rest.to_vec()),
        41 => (Method::POST, format!("/api/v1/merchant/animals/{}/updates", pct(&rest[..rest.len().min(2)])), true, rest.to_vec()),
        // A multipart body (boundary `X`) as the fuzzer wrote it.
        _ => (Method::POST, "/api/v1/uploads".to_owned(), true, rest.to_vec()),
    };
    let mut router = h.router.clone();
    let token = auth.then_some(h.token.as_str());
    let (status, v) = h.rt.block_on(call(&mut router, method, &uri, token, body));
    assert!(status.as_u16() < 500, "{uri}: {status} {v}");
    if status.as_u16() >= 400 {
        assert!(v["code"].is_string() && v["message"].is_string(), "{uri}: {status} without the JSON error body: {v}");
    }
}

/// A masked client frame.
fn ws_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0xa1, 0xb2, 0xc3, 0xd4];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// The bytes the client sends after the handshake. First byte even: the rest as it is (raw
/// framing). Odd: the rest cut into frames: `[len][opcode-ish][payload...]` records, each
/// made a well-formed masked frame (its FIN, RSV and opcode bits as the record says, so the
/// codec's rules are fuzzed too), so that the fuzzer reaches the session's frame handling.
/// `$CONV` in a payload becomes the harness's conversation id.
pub fn session_bytes(data: &[u8], conv: &str) -> (bool, Vec<u8>) {
    let Some((&mode, rest)) = data.split_first() else { return (false, Vec::new()) };
    if mode % 2 == 0 {
        return (false, rest.to_vec());
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= rest.len() {
        let len = rest[at] as usize;
        let first = rest[at + 1];
        let end = (at + 2 + len).min(rest.len());
        let payload = String::from_utf8_lossy(&rest[at + 2..end]).replace("$CONV", conv);
        // Mostly text or binary with FIN; the record's own bits otherwise.
        let first = match first {
            0..=199 => 0x81,
            200..=239 => 0x82,
            b => b,
        };
        out.extend(ws_frame(first, payload.as_bytes()));
        at = end;
    }
    (true, out)
}

/// A real WebSocket session fed the input (see [`session_bytes`]). The server must answer the
/// upgrade, read what comes, and end the connection once the client stops sending (at once, or
/// after answering); it must still answer `/healthz` after.
pub fn session_stream(data: &[u8]) {
    let h = harness();
    let (framed, bytes) = session_bytes(data, &h.conv);
    h.rt.block_on(async {
        // Each connection from its own loopback source address (127.1.0.0/16, cycled), so that
        // a long campaign does not run out of ephemeral ports to TIME_WAIT.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 65_000;
        let src = std::net::Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250) as u8 + 2);
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from((src, 0))).expect("bind a loopback source");
        let mut s = sock.connect(h.addr).await.expect("connect");
        let req = format!(
            "GET /ws?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            h.token
        );
        s.write_all(req.as_bytes()).await.expect("handshake");
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.expect("101");
            head.push(b[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        // The server may close early (a protocol error): a failed write is fine.
        let _ = s.write_all(&bytes).await;
        if framed {
            // A clean end: the close handshake.
            let _ = s.write_all(&ws_frame(0x88, &1000u16.to_be_bytes())).await;
        }
        let _ = s.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the server kept a connection whose client had stopped");
        let mut router = h.router.clone();
        let (status, _) = call(&mut router, Method::GET, "/healthz", None, Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
    });
}
