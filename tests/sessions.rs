//! Login sessions end to end: every token names its session; logging out ends it (or, with
//! `?all=true`, every session of the user) on REST and at the upgrade, and closes the sockets
//! opened with it at once, with 4005 `logged_out`, on this node and on another node of a
//! cluster; disabling a staff account ends its sessions; the socket's token travels as a
//! second offered protocol that the server never echoes.

mod common;
use common::*;
use jiebanke_chat_core::staff::totp;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn logout(http: &reqwest::Client, base: &str, token: &str, all: bool) -> u16 {
    let q = if all { "?all=true" } else { "" };
    http.post(format!("{base}/api/v1/auth/logout{q}")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// The upgrade's status when refused, or 101.
async fn upgrade_status(addr: std::net::SocketAddr, token: &str) -> u16 {
    match try_connect(addr, token, Proto::Json).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

async fn closes_with(c: &mut Client, code: u16, reason: &str) {
    let got = c.expect_close(WAIT).await;
    assert_eq!(got, Some((code, reason.to_owned())));
}

/// A message from `c` in `conv` is acked: the socket still works.
async fn still_open(c: &mut Client, conv: &str, n: u64) {
    let ack = c.say(n, conv, &format!("alive-{n}"), "还在 (still here)").await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

async fn logout_ends_one_session_or_all(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    // Three logins of one user: three sessions (a phone, a tablet, a browser).
    let (a, b, c) = (login(http, &base, "so-anna").await, login(http, &base, "so-anna").await, login(http, &base, "so-anna").await);
    let bob = login(http, &base, "so-bob").await;
    let conv = direct(http, &base, &a, &bob).await;
    let (mut a_ws, mut a_ws2) = (connect(app.addr, &a.token, Proto::Json).await, connect(app.addr, &a.token, Proto::MsgPack).await);
    let mut b_ws = connect(app.addr, &b.token, Proto::Json).await;

    // One session ends: both of its sockets close with 4005, the others stay.
    assert_eq!(logout(http, &base, &a.token, false).await, 204);
    closes_with(&mut a_ws, 4005, "logged_out").await;
    closes_with(&mut a_ws2, 4005, "logged_out").await;
    still_open(&mut b_ws, &conv, 1).await;
    let (s, v) = get(http, format!("{base}/api/v1/me"), &a.token).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");
    assert_eq!(upgrade_status(app.addr, &a.token).await, 401, "no new socket with it");
    assert_eq!(logout(http, &base, &a.token, false).await, 401, "its token is no more");
    assert_eq!(get(http, format!("{base}/api/v1/me"), &b.token).await.0, 200);
    assert_eq!(get(http, format!("{base}/api/v1/me"), &c.token).await.0, 200, "another session of the user goes on");

    // All of them: every socket of the user closes, every token of theirs is refused.
    let mut c_ws = connect(app.addr, &c.token, Proto::Json).await;
    let mut bob_ws = connect(app.addr, &bob.token, Proto::Json).await;
    let (s, v) = post(http, format!("{base}/api/v1/auth/logout?all=maybe"), &b.token, json!({})).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")), "{v}");
    assert_eq!(logout(http, &base, &b.token, true).await, 204);
    closes_with(&mut b_ws, 4005, "logged_out").await;
    closes_with(&mut c_ws, 4005, "logged_out").await;
    for t in [&b.token, &c.token] {
        assert_eq!(get(http, format!("{base}/api/v1/me"), t).await.0, 401);
        assert_eq!(upgrade_status(app.addr, t).await, 401);
    }
    still_open(&mut bob_ws, &conv, 2).await;
    // A new login is a new session.
    let again = login(http, &base, "so-anna").await;
    assert_eq!(get(http, format!("{base}/api/v1/me"), &again.token).await.0, 200);
    app.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_one_session_or_all_sqlite() {
    logout_ends_one_session_or_all(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_one_session_or_all_mysql() {
    logout_ends_one_session_or_all(Db::MySql).await;
}

/// Disabling a staff account ends its sessions at once (its socket closes with 4005, its token
/// answers 401); changing a role does not.
async fn disabled_staff_sessions_end(db: Db) {
    let Some(tdb) = TestDb::new(db).await else { return };
    let app = spawn_app(&tdb, |c| c.admins = vec![("dev".into(), "ds-root".into())]).await;
    let (base, http) = (app.base(), &app.http);
    let root = login(http, &base, "ds-root").await;
    let password = "correct horse battery staple";
    let (s, e) = post(http, format!("{base}/api/v1/admin/staff"), &root.token, json!({"username": "sam", "password": password, "role": "operator"})).await;
    assert_eq!(s, 201, "{e}");
    let (sam_id, secret) = (e["id"].as_str().unwrap().to_owned(), decode_base32(e["totp_secret"].as_str().unwrap()));
    let code = format!("{:06}", totp::hotp(&secret, totp::step_at(jiebanke_chat_core::now_ms()), 6));
    let r = http.post(format!("{base}/api/v1/auth/staff/login")).json(&json!({"username": "sam", "password": password, "totp": code})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sam = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let mut sam_ws = connect(app.addr, &sam, Proto::Json).await;
    // A role change leaves the session alone.
    let (s, v) = http.put(format!("{base}/api/v1/admin/users/{sam_id}/role")).bearer_auth(&root.token).json(&json!({"role": "admin"})).send().await.map(|r| (r.status().as_u16(), ())).unwrap();
    assert_eq!(s, 200, "{v:?}");
    assert_eq!(get(http, format!("{base}/api/v1/admin/staff"), &sam).await.0, 200, "an admin now, same session");
    let (s, d) = post(http, format!("{base}/api/v1/admin/staff/{sam_id}/disable"), &root.token, json!({})).await;
    assert_eq!(s, 200, "{d}");
    closes_with(&mut sam_ws, 4005, "logged_out").await;
    let (s, v) = get(http, format!("{base}/api/v1/me"), &sam).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");
    assert_eq!(upgrade_status(app.addr, &sam).await, 401);
    app.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_staff_sessions_end_sqlite() {
    disabled_staff_sessions_end(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_staff_sessions_end_mysql() {
    disabled_staff_sessions_end(Db::MySql).await;
}

/// Upgrades with the token in `Sec-WebSocket-Protocol` (and elsewhere), answering the status and
/// the protocol the server selected.
async fn upgrade_with(addr: std::net::SocketAddr, query: Option<&str>, bearer: Option<&str>, protocols: &str) -> (u16, Option<String>, Value) {
    let url = match query {
        Some(t) => format!("ws://{addr}/ws?token={t}"),
        None => format!("ws://{addr}/ws"),
    };
    let mut req = url.into_client_request().unwrap();
    if !protocols.is_empty() {
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocols).unwrap());
    }
    if let Some(t) = bearer {
        req.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, resp)) => {
            use futures_util::StreamExt;
            let selected = resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
            let hello = match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => serde_json::from_str(t.as_str()).unwrap(),
                other => panic!("{other:?}"),
            };
            (101, selected, hello)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap_or(Value::Null);
            (r.status().as_u16(), None, body)
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_travels_as_a_protocol_never_echoed() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let app = spawn_app(&tdb, |_| {}).await;
    let (base, http) = (app.base(), &app.http);
    let (a, b) = (login(http, &base, "tp-a").await, login(http, &base, "tp-b").await);
    let auth = |t: &str| format!("jbk.auth.{t}");

    let (s, selected, hello) = upgrade_with(app.addr, None, None, &format!("jbk.v1.json, {}", auth(&a.token))).await;
    assert_eq!((s, selected.as_deref(), hello["type"].as_str(), hello["user"].as_str()), (101, Some("jbk.v1.json"), Some("hello"), Some(a.id.as_str())), "{hello}");
    let (s, selected, _) = upgrade_with(app.addr, None, None, &format!("{}, jbk.v1.json", auth(&a.token))).await;
    assert_eq!((s, selected.as_deref()), (101, Some("jbk.v1.json")), "the order does not matter; the token is never selected");
    // The same token twice (query and protocol) is one token.
    assert_eq!(upgrade_with(app.addr, Some(&a.token), None, &format!("jbk.v1.json, {}", auth(&a.token))).await.0, 101);
    // A token protocol alone: there is no codec protocol to select.
    let (s, _, v) = upgrade_with(app.addr, None, None, &auth(&a.token)).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid")), "{v}");
    // Two different tokens in one upgrade, however they come.
    for (query, bearer, protocols) in [
        (Some(b.token.as_str()), None, format!("jbk.v1.json, {}", auth(&a.token))),
        (None, Some(b.token.as_str()), format!("jbk.v1.json, {}", auth(&a.token))),
        (Some(b.token.as_str()), Some(a.token.as_str()), "jbk.v1.json".to_owned()),
        (None, None, format!("jbk.v1.json, {}, {}", auth(&a.token), auth(&b.token))),
    ] {
        let (s, _, v) = upgrade_with(app.addr, query, bearer, &protocols).await;
        assert_eq!((s, v["code"].as_str()), (400, Some("invalid")), "{protocols}: {v}");
    }
    // A bad token in the protocol is a 401 at the upgrade, as anywhere else.
    let (s, _, v) = upgrade_with(app.addr, None, None, "jbk.v1.json, jbk.auth.not-a-token").await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");
    // The discouraged query form still works for old clients.
    assert_eq!(upgrade_with(app.addr, Some(&a.token), None, "jbk.v1.json").await.0, 101);
    app.shutdown.cancel();
}

/// Two nodes on one database and one Redis: a logout on node 1 closes the session's socket on
/// node 2 at once (and node 2 refuses the token), while the user's other session on node 2
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_reaches_every_node() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let env = |node: &'static str| {
        vec![
            ("JBK_REDIS_URL", redis.url.clone()),
            ("JBK_REDIS_PREFIX", redis.prefix.clone()),
            ("JBK_NODE_ID", node.to_owned()),
            ("JBK_JWT_SECRET", "sessions-test-secret-0123456789abcdef".to_owned()),
        ]
    };
    let start = |node: &'static str| {
        let env = env(node);
        let db = &db;
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let p = ServerProcess::start_role(db, "serve", free_port(), &env).await;
            p.wait_status("ready", Duration::from_secs(10)).await;
            p
        }
    };
    let (n1, n2) = (start("s1").await, start("s2").await);
    let http = reqwest::Client::new();
    let (one, two) = (login(&http, &n1.base(), "ln-anna").await, login(&http, &n1.base(), "ln-anna").await);
    let bob = login(&http, &n1.base(), "ln-bob").await;
    let conv = direct(&http, &n1.base(), &one, &bob).await;
    let mut one_ws = connect(n2.addr, &one.token, Proto::Json).await;
    let mut two_ws = connect(n2.addr, &two.token, Proto::Json).await;
    assert_eq!(logout(&http, &n1.base(), &one.token, false).await, 204);
    closes_with(&mut one_ws, 4005, "logged_out").await;
    assert_eq!(get(&http, format!("{}/api/v1/me", n2.base()), &one.token).await.0, 401);
    assert_eq!(upgrade_status(n2.addr, &one.token).await, 401);
    still_open(&mut two_ws, &conv, 1).await;
    assert_eq!(logout(&http, &n2.base(), &two.token, true).await, 204);
    closes_with(&mut two_ws, 4005, "logged_out").await;
}
