//! Test support: a real server (in-process on a free port, or the real binary as a child process
//! for kill -9 and SIGTERM), a real HTTP client and a real WebSocket client.
#![allow(dead_code)]

pub mod images;

use futures_util::{SinkExt, StreamExt};
use jiebanke::{Application, Config};
use jiebanke_storage::testing::TestMySql;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("jbk-{tag}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    MySql,
}

/// A database for one test: a temp dir (always) and a MySQL database (for `Db::MySql`).
pub struct TestDb {
    pub dir: TempDir,
    pub mysql: Option<TestMySql>,
}

impl TestDb {
    /// `None` when MySQL is asked for and not there (the test then returns early; with
    /// `JBK_REQUIRE_SERVICES=1` it panics instead).
    pub async fn new(db: Db) -> Option<TestDb> {
        let dir = TempDir::new("app");
        let mysql = match db {
            Db::Sqlite => None,
            Db::MySql => Some(TestMySql::create().await?),
        };
        Some(TestDb { dir, mysql })
    }
    pub fn url(&self) -> Option<String> {
        self.mysql.as_ref().map(|m| m.url.clone())
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// `/metrics`' own listener (never the app's port).
    pub metrics: SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub http: reqwest::Client,
}

impl TestApp {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The base URL of the metrics listener (`{}/metrics`).
    pub fn metrics_base(&self) -> String {
        format!("http://{}", self.metrics)
    }
}

/// Starts the server in-process on a free port with `tweak` applied to the dev config.
pub async fn spawn_app(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::dev(db.dir.0.clone());
    config.database_url = db.url();
    // Tests open many sessions from one address quickly.
    config.gateway.handshake_rate = std::num::NonZeroU32::new(1000).unwrap();
    config.gateway.handshake_burst = std::num::NonZeroU32::new(1000).unwrap();
    tweak(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let addr = app.local_addr();
    let metrics = app.metrics_addr().expect("tests serve /metrics on a port of their own");
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run());
    TestApp { addr, metrics, shutdown, handle, http: reqwest::Client::new() }
}

/// Waits past the outbox's redelivery window, so that a check that something happened once has
/// given a second delivery the time to show. An event whose verdict was not recorded comes
/// again at the relay's next pass: at most `outbox_poll` later (the default, which every test
/// node keeps), or `RELAY_RETRY_MAX` after a failed pass; RabbitMQ's consumer retries in place
/// within the same bound. Twice the sum.
pub async fn past_redelivery_window() {
    let poll = Config::dev(std::path::PathBuf::new()).outbox_poll;
    tokio::time::sleep(2 * (poll + jiebanke_chat_core::events::RELAY_RETRY_MAX)).await;
}

pub struct LoggedIn {
    pub token: String,
    pub id: String,
}

/// Logs in and opens the user's settings to everyone (groups, presence), as the tests of chat
/// expect of strangers; `login_default` keeps the product's defaults.
pub async fn login(http: &reqwest::Client, base: &str, code: &str) -> LoggedIn {
    let me = login_default(http, base, code).await;
    let resp = http
        .patch(format!("{base}/api/v1/me/settings"))
        .bearer_auth(&me.token)
        .json(&json!({ "group_add_from": "everyone", "presence_to": "everyone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "open settings");
    me
}

/// Logs in, settings as they are.
pub async fn login_default(http: &reqwest::Client, base: &str, code: &str) -> LoggedIn {
    let resp = http.post(format!("{base}/api/v1/auth/login")).json(&json!({ "code": code })).send().await.unwrap();
    assert_eq!(resp.status(), 200, "login");
    let v: Value = resp.json().await.unwrap();
    LoggedIn { token: v["token"].as_str().unwrap().to_owned(), id: v["user"]["id"].as_str().unwrap().to_owned() }
}

/// Logs `code` in and makes them an approved merchant (`<code>花坊`, a florist), approved by
/// `admin` (a configured admin).
/// Uploads a one-pixel PNG as `token`'s user; its `/uploads/…` URL (photo and avatar fields take
/// only the writer's own uploads).
pub async fn upload_photo(http: &reqwest::Client, base: &str, token: &str) -> String {
    let part = reqwest::multipart::Part::bytes(images::one_pixel_png()).file_name("p.png").mime_str("image/png").unwrap();
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(token).multipart(reqwest::multipart::Form::new().part("file", part)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned()
}

/// A valid unified social credit code not used before in this process (one licence number, one
/// open or approved application).
pub fn next_license() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    jiebanke_chat_core::merchants::rules::CreditCode::numbered(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).as_str().to_owned()
}

pub async fn merchant(http: &reqwest::Client, base: &str, admin: &LoggedIn, code: &str) -> LoggedIn {
    let m = login(http, base, code).await;
    let (s, a) = post(http, format!("{base}/api/v1/merchants/applications"), &m.token, json!({"name": format!("{code}花坊"), "category": "florist", "license_no": next_license(), "contact_name": "王", "contact_phone": "+8613812345678"})).await;
    assert_eq!(s, 201, "{a}");
    let (s, _) = post(http, format!("{base}/api/v1/admin/merchant-applications/{}/approve", a["id"].as_str().unwrap()), &admin.token, json!({})).await;
    assert_eq!(s, 200);
    m
}

pub async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let resp = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn get(http: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let resp = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn direct(http: &reqwest::Client, base: &str, me: &LoggedIn, other: &LoggedIn) -> String {
    let (s, v) = post(http, format!("{base}/api/v1/conversations"), &me.token, json!({"kind":"direct","members":[other.id]})).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Json,
    MsgPack,
    /// No subprotocol header at all (JSON by default).
    None,
}

/// A real WebSocket client speaking jbk.v1.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub proto: Proto,
    pub hello: Value,
}

pub async fn connect(addr: SocketAddr, token: &str, proto: Proto) -> Client {
    try_connect(addr, token, proto).await.expect("websocket upgrade")
}

pub async fn try_connect(addr: SocketAddr, token: &str, proto: Proto) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    // The token travels as a second offered protocol (never in the URL, where proxies log it);
    // without a codec protocol, in the Authorization header.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    let offered = match proto {
        Proto::Json => format!("jbk.v1.json, jbk.auth.{token}"),
        Proto::MsgPack => format!("jbk.v1.msgpack, jbk.auth.{token}"),
        Proto::None => String::new(),
    };
    match HeaderValue::from_str(&offered) {
        Ok(v) if !offered.is_empty() => {
            req.headers_mut().insert("Sec-WebSocket-Protocol", v);
        }
        // A token no header can carry (the hostile tests send such) goes as a bearer token.
        _ => {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                req.headers_mut().insert("Authorization", v);
            }
            let codec = match proto {
                Proto::Json => Some("jbk.v1.json"),
                Proto::MsgPack => Some("jbk.v1.msgpack"),
                Proto::None => None,
            };
            if let Some(c) = codec {
                req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(c));
            }
        }
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let mut c = Client { ws, proto, hello: Value::Null };
    let hello = c.recv().await;
    assert_eq!(hello["type"], "hello", "first frame is hello: {hello}");
    c.hello = hello;
    Ok(c)
}

/// What a read returned when it was not a data frame.
#[derive(Debug)]
pub enum Event {
    Frame(Value),
    Closed(Option<(u16, String)>),
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        let msg = match self.proto {
            Proto::MsgPack => Message::Binary(rmp_serde::to_vec_named(&v).unwrap().into()),
            _ => Message::Text(v.to_string().into()),
        };
        self.ws.send(msg).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.unwrap();
    }

    /// Next data frame or close, skipping pings.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Event::Closed(None)),
                Ok(Some(Err(_))) => return Some(Event::Closed(None)),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    assert_ne!(self.proto, Proto::MsgPack, "a msgpack session gets binary frames");
                    return Some(Event::Frame(serde_json::from_str(t.as_str()).unwrap()));
                }
                Message::Binary(b) => {
                    assert_eq!(self.proto, Proto::MsgPack, "a json session gets text frames");
                    return Some(Event::Frame(rmp_serde::from_slice(&b).unwrap()));
                }
                Message::Close(f) => {
                    return Some(Event::Closed(f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))))
                }
                _ => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        match self.next_event(WAIT).await {
            Some(Event::Frame(v)) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame of type `ty`, skipping others (typing, presence, read...).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Asserts nothing but pings arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(e) = self.next_event(wait).await {
            panic!("expected silence, got {e:?}");
        }
    }

    /// Reads until the server closes; returns its close code and reason.
    pub async fn expect_close(&mut self, wait: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.next_event(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
                Some(Event::Closed(c)) => return c,
                Some(Event::Frame(_)) => continue,
                None => panic!("server did not close in time"),
            }
        }
    }

    pub async fn send_text(&mut self, id: u64, conv: &str, cmid: &str, text: &str) {
        self.send(json!({"type":"send","id":id,"conv":conv,"cmid":cmid,"body":{"kind":"text","text":text}})).await;
    }

    /// Sends and waits for the ack (skipping other frames); returns the ack.
    pub async fn say(&mut self, id: u64, conv: &str, cmid: &str, text: &str) -> Value {
        self.send_text(id, conv, cmid, text).await;
        loop {
            let v = self.recv().await;
            if (v["type"] == "ack" || v["type"] == "error") && v["id"] == id {
                return v;
            }
        }
    }

    /// All messages after `after`, following `more`.
    pub async fn sync_all(&mut self, conv: &str, mut after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for id in 1_000_000u64.. {
            self.send(json!({"type":"sync","id":id,"conv":conv,"after":after,"limit":200})).await;
            let h = loop {
                let v = self.recv().await;
                if v["type"] == "history" && v["id"] == id {
                    break v;
                }
                assert!(!(v["type"] == "error" && v["id"] == id), "sync failed: {v}");
            };
            let msgs = h["messages"].as_array().unwrap().clone();
            if let Some(last) = msgs.last() {
                after = last["seq"].as_u64().unwrap();
            }
            out.extend(msgs);
            if h["more"] != true {
                break;
            }
        }
        out
    }
}

/// The real binary as a child process (for kill -9 and SIGTERM).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// `/metrics`' own listener.
    pub metrics: SocketAddr,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl ServerProcess {
    pub async fn start(db: &TestDb, extra_env: &[(&str, &str)]) -> ServerProcess {
        Self::start_at(db, free_port(), extra_env).await
    }

    /// Starts on a given port (to restart "the same" server after a crash).
    pub async fn start_at(db: &TestDb, port: u16, extra_env: &[(&str, &str)]) -> ServerProcess {
        Self::start_role(db, "serve", port, extra_env).await
    }

    /// Starts `jiebanke <role>` (serve, gateway or rest) on `port`.
    pub async fn start_role(db: &TestDb, role: &str, port: u16, extra_env: &[(&str, &str)]) -> ServerProcess {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = db.dir.0.join(format!("server-{port}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        // Set by cargo for integration tests (examples/screenshots.rs shares this module, not this).
        let bin = option_env!("CARGO_BIN_EXE_jiebanke").expect("the jiebanke binary (integration tests only)");
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(role)
            .env("JBK_LISTEN", addr.to_string())
            .env("JBK_METRICS_LISTEN", metrics.to_string())
            .env("JBK_DATA_DIR", &db.dir.0)
            .env("JBK_HANDSHAKE_RATE", "1000")
            .env("JBK_HANDSHAKE_BURST", "1000")
            .env("JBK_MSG_RATE", "10000")
            .env("JBK_MSG_BURST", "10000")
            .env("JBK_HTTP_RATE", "100000")
            .env("JBK_HTTP_BURST", "100000")
            .env("JBK_WRITE_RATE", "100000")
            .env("JBK_WRITE_BURST", "100000")
            .env_remove("JBK_DATABASE_URL")
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(url) = db.url() {
            cmd.env("JBK_DATABASE_URL", url);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start jiebanke");
        let p = ServerProcess { child, addr, metrics, log };
        p.wait_ready().await;
        p
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL of the metrics listener (`{}/metrics`).
    pub fn metrics_base(&self) -> String {
        format!("http://{}", self.metrics)
    }

    /// `/readyz`'s status ("ready", "degraded", ...), or "down" if it does not answer.
    pub async fn ready_status(&self) -> String {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
        match http.get(format!("{}/readyz", self.base())).send().await {
            Ok(r) => r.json::<Value>().await.map(|v| v["status"].as_str().unwrap_or("?").to_owned()).unwrap_or_else(|_| "?".into()),
            Err(_) => "down".into(),
        }
    }

    /// Waits until `/readyz` says `status` (panics with the log after `within`).
    pub async fn wait_status(&self, status: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = self.ready_status().await;
            if now == status {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("readyz stayed {now}, wanted {status}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/readyz", self.base())).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
    }

    pub fn kill9(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key prefix on the machine's Redis for one test; its keys are deleted when dropped.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// `None` (SKIPPED) when no Redis answers, unless `JBK_REQUIRE_SERVICES=1` (then it panics).
    pub fn new() -> Option<TestRedis> {
        let url = std::env::var("JBK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let ok = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if let Err(e) = ok {
            if jiebanke_storage::testing::services_required() {
                panic!("Redis at {url} is required (JBK_REQUIRE_SERVICES=1): {e}");
            }
            jiebanke_storage::testing::skipped(&format!("Redis test, no server at {url}: {e}"));
            return None;
        }
        Some(TestRedis { url, prefix: format!("jbk_t_{:08x}", rand::random::<u32>()) })
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(mut c) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2))) else { return };
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut c).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut c);
        }
    }
}

/// A redis-server of the test's own, on a free port, that the test may kill and start again.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: TempDir,
}

impl OwnRedis {
    /// `None` (SKIPPED) if redis-server is not installed, unless services are required.
    pub async fn start() -> Option<OwnRedis> {
        let mut r = OwnRedis { port: free_port(), child: None, dir: TempDir::new("redis") };
        if let Err(e) = r.spawn().await {
            if jiebanke_storage::testing::services_required() {
                panic!("redis-server is required (JBK_REQUIRE_SERVICES=1): {e}");
            }
            jiebanke_storage::testing::skipped(&format!("own redis-server: {e}"));
            return None;
        }
        Some(r)
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    pub async fn spawn(&mut self) -> Result<(), String> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        for _ in 0..100 {
            if redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("redis-server did not answer".into())
    }
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A RabbitMQ vhost of the test's own on the machine's broker (guest may use it); deleted when
/// dropped.
pub struct TestRabbit {
    pub vhost: String,
    pub port: u16,
}

impl TestRabbit {
    /// `None` (SKIPPED) when no broker answers or rabbitmqctl is missing, unless
    /// `JBK_REQUIRE_SERVICES=1` (then it panics).
    pub fn new() -> Option<TestRabbit> {
        let port: u16 = std::env::var("JBK_TEST_AMQP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5672);
        let vhost = format!("jbk_t_{:08x}", rand::random::<u32>());
        let run = |args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new("rabbitmqctl").args(args).output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let reachable = std::net::TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_secs(2))
            .map_err(|e| e.to_string());
        let made = reachable
            .and_then(|_| run(&["add_vhost", &vhost]))
            .and_then(|_| run(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]));
        if let Err(e) = made {
            if jiebanke_storage::testing::services_required() {
                panic!("RabbitMQ at 127.0.0.1:{port} with rabbitmqctl is required (JBK_REQUIRE_SERVICES=1): {e}");
            }
            jiebanke_storage::testing::skipped(&format!("RabbitMQ test, no broker: {e}"));
            return None;
        }
        Some(TestRabbit { vhost, port })
    }
    /// The URL through `port` (the broker's, or a proxy's in front of it).
    pub fn url_via(&self, port: u16) -> String {
        format!("amqp://guest:guest@127.0.0.1:{port}/{}", self.vhost)
    }
    pub fn url(&self) -> String {
        self.url_via(self.port)
    }
}

impl Drop for TestRabbit {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").args(["delete_vhost", &self.vhost]).output();
    }
}

/// A TCP proxy in front of a service, that the test can cut (every connection through it is
/// closed and new ones are refused) and restore: a network outage of that service.
pub struct CutProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut_tx: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(target_port: u16) -> CutProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut_tx, cut_rx) = tokio::sync::watch::channel(0u64);
        let up2 = up.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = cut_rx.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target_port)).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CutProxy { port, up, cut_tx, task }
    }
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut_tx.send_modify(|g| *g += 1);
    }
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A metric's value from a node's `/metrics` (the sum over its label sets), or None.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = line.rsplit_once(' ')?;
        let bare = key.split('{').next().unwrap_or(key);
        if bare == name {
            *found.get_or_insert(0.0) += value.parse::<f64>().ok()?;
        }
    }
    found
}

pub async fn put(http: &reqwest::Client, url: String, token: &str) -> u16 {
    http.put(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

pub async fn delete(http: &reqwest::Client, url: String, token: &str) -> u16 {
    http.delete(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Logs in and returns the HTTP status and body (for refused logins).
pub async fn try_login(http: &reqwest::Client, base: &str, code: &str) -> (u16, Value) {
    let resp = http.post(format!("{base}/api/v1/auth/login")).json(&json!({ "code": code })).send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// A Redis Cluster of the test's own: three primaries (no replicas) on free ports, made with
/// `redis-cli --cluster create`; killed when dropped.
pub struct OwnRedisCluster {
    pub ports: Vec<u16>,
    children: Vec<std::process::Child>,
    _dir: TempDir,
}

impl OwnRedisCluster {
    /// `None` (SKIPPED) if redis-server or redis-cli is missing, unless services are required.
    pub async fn start() -> Option<OwnRedisCluster> {
        match Self::try_start().await {
            Ok(c) => Some(c),
            Err(e) => {
                if jiebanke_storage::testing::services_required() {
                    panic!("a Redis Cluster of redis-server processes is required (JBK_REQUIRE_SERVICES=1): {e}");
                }
                jiebanke_storage::testing::skipped(&format!("own Redis Cluster: {e}"));
                None
            }
        }
    }

    async fn try_start() -> Result<OwnRedisCluster, String> {
        let mut c = OwnRedisCluster { ports: Vec::new(), children: Vec::new(), _dir: TempDir::new("rcluster") };
        while c.ports.len() < 3 {
            // The cluster bus listens on port + 10000.
            let p = free_port();
            if p < 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() && !c.ports.contains(&p) {
                c.ports.push(p);
            }
        }
        for i in 0..c.ports.len() {
            let child = c.spawn_node(i).await?;
            c.children.push(child);
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(c.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend(["--cluster-replicas".into(), "0".into(), "--cluster-yes".into()]);
        let out = std::process::Command::new("redis-cli").args(&args).output().map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!("redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout)));
        }
        c.wait_ok().await?;
        Ok(c)
    }

    /// Starts shard `i` (again, with its cluster config file: it rejoins with its slots).
    async fn spawn_node(&self, i: usize) -> Result<std::process::Child, String> {
        let p = self.ports[i];
        let d = self._dir.0.join(p.to_string());
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", &p.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--cluster-config-file", "nodes.conf"])
            .arg("--dir")
            .arg(&d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        let url = format!("redis://127.0.0.1:{p}");
        for _ in 0..100 {
            if redis::Client::open(url.as_str())
                .and_then(|cl| cl.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut k| redis::cmd("PING").query::<String>(&mut k))
                .is_ok()
            {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("redis-server on {p} did not answer"))
    }

    /// kill -9 of shard `i`.
    pub fn kill9(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }

    /// Starts shard `i` again and waits for the cluster to be whole.
    pub async fn restart(&mut self, i: usize) {
        self.children[i] = self.spawn_node(i).await.expect("shard restarts");
        self.wait_ok().await.expect("cluster whole again");
    }

    /// Waits until every node sees the whole cluster (clients route by its slot map).
    async fn wait_ok(&self) -> Result<(), String> {
        let c = self;
        for _ in 0..400 {
            let all_ok = c.ports.iter().all(|p| {
                redis::Client::open(format!("redis://127.0.0.1:{p}"))
                    .and_then(|cl| cl.get_connection_with_timeout(Duration::from_millis(200)))
                    .and_then(|mut k| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut k))
                    .is_ok_and(|info| info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3"))
            });
            if all_ok {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the Redis Cluster did not reach cluster_state:ok".into())
    }

    /// The seed list for `JBK_REDIS_URL` (with `JBK_REDIS_CLUSTER=true`).
    pub fn urls(&self) -> String {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// Runs one command on every node and returns the answers.
    pub fn on_each<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Vec<T> {
        self.ports
            .iter()
            .map(|p| {
                let mut k = redis::Client::open(format!("redis://127.0.0.1:{p}")).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap();
                cmd.query::<T>(&mut k).unwrap()
            })
            .collect()
    }
}

impl Drop for OwnRedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TOTP secret as the API shows it (base32), back to bytes.
pub fn decode_base32(text: &str) -> Vec<u8> {
    jiebanke_chat_core::staff::totp::decode_base32(text).unwrap_or_else(|| panic!("not base32: {text}"))
}

/// A staff account made by `admin` and logged in through the console login (username,
/// password, the current TOTP code).
pub async fn staff_account(http: &reqwest::Client, base: &str, admin: &str, username: &str, role: &str) -> LoggedIn {
    let password = "matrix password 1234";
    let (s, e) = post(http, format!("{base}/api/v1/admin/staff"), admin, json!({"username": username, "password": password, "role": role})).await;
    assert_eq!(s, 201, "{e}");
    let secret = decode_base32(e["totp_secret"].as_str().unwrap());
    let step = jiebanke_chat_core::staff::totp::step_at(jiebanke_chat_core::now_ms());
    let code = format!("{:06}", jiebanke_chat_core::staff::totp::hotp(&secret, step, 6));
    let r = http.post(format!("{base}/api/v1/auth/staff/login")).json(&json!({"username": username, "password": password, "totp": code})).send().await.unwrap();
    assert_eq!(r.status(), 200, "staff login");
    let v: Value = r.json().await.unwrap();
    LoggedIn { token: v["token"].as_str().unwrap().to_owned(), id: v["user"]["id"].as_str().unwrap().to_owned() }
}
