//! Real-browser support for the page tests: headless Chromium driven by chromedriver over
//! WebDriver (fantoccini), a TCP proxy a test can cut to take one browser off the network, and
//! axe-core (vendored here, MIT/MPL licence beside it) injected into pages for accessibility.
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long a page may take to show what a test waits for (generous: two shared cores).
pub const PAGE_WAIT: Duration = Duration::from_secs(30);

/// One browser test at a time in this process: each starts Chromium instances of its own.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AXE: &str = include_str!("axe-4.14.1.min.js");

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        for n in names {
            let p = PathBuf::from(dir).join(n);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// A running chromedriver (killed on drop).
pub struct Driver {
    child: Child,
    pub url: String,
    chromium: PathBuf,
    profiles: Vec<super::common::TempDir>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// `None` (the test passes as SKIPPED) when Chromium or chromedriver is not installed, unless
    /// `JBK_REQUIRE_SERVICES=1` (CI), where that is a failure.
    pub async fn start() -> Option<Driver> {
        let driver = find_program("JBK_CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_program("JBK_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            if std::env::var("JBK_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("chromium and chromedriver are required (apt-get install -y chromium chromium-driver)");
            }
            jiebanke_storage::testing::skipped("chromium/chromedriver not installed");
            return None;
        };
        let port = super::common::free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Driver { child, url, chromium, profiles: Vec::new() })
    }

    /// A new headless browser (its own empty profile) with a window of `w`×`h` CSS pixels.
    pub async fn browser(&mut self, w: u32, h: u32) -> Page {
        let profile = super::common::TempDir::new("chromium");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--lang=zh-CN".to_owned(),
            format!("--window-size={w},{h}"),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        self.profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        let mut options = json!({ "binary": self.chromium, "args": args });
        if w < 600 {
            // A phone: its viewport exactly (a headless window is at least 500 wide) and touch.
            options["mobileEmulation"] = json!({ "deviceMetrics": { "width": w, "height": h, "pixelRatio": 1.0, "touch": true } });
        }
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::rustls().expect("tls roots").capabilities(caps).connect(&self.url).await.expect("browser session");
        Page { c: client, base: String::new() }
    }
}

/// One browser window on one of our pages.
pub struct Page {
    pub c: Client,
    /// e.g. `http://127.0.0.1:8080` (the server, or the proxy in front of it).
    pub base: String,
}

impl Page {
    pub async fn open(&self, hash: &str) {
        self.c.goto(&format!("{}/app/{hash}", self.base)).await.expect("goto");
    }

    /// Moves to another route of the app without reloading it (the socket stays up).
    pub async fn go(&self, hash: &str) {
        self.c.execute("location.hash = arguments[0]", vec![json!(hash)]).await.expect("set hash");
    }

    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.c.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}: {script}"))
    }

    /// Waits until `script` (a function body) returns something truthy; panics naming `what`.
    pub async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        loop {
            let v = self.c.execute(script, args.clone()).await.unwrap_or(Value::Null);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("return document.body ? document.body.innerText : ''", vec![]).await;
                panic!("page never showed {what}; it shows:\n{text}\nerrors: {:?}", self.errors().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_css(&self, css: &str) {
        self.until(css, "return !!document.querySelector(arguments[0])", vec![json!(css)]).await;
    }

    pub async fn click(&self, css: &str) {
        self.wait_css(css).await;
        self.eval("document.querySelector(arguments[0]).scrollIntoView({ block: 'center' })", vec![json!(css)]).await;
        self.c.find(Locator::Css(css)).await.expect("find").click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces the value of the input `css` with `text`, typed as keys.
    pub async fn fill(&self, css: &str, text: &str) {
        self.wait_css(css).await;
        let el = self.c.find(Locator::Css(css)).await.expect("find");
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.eval("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", vec![json!(css)]).await.as_str().unwrap_or_default().to_owned()
    }

    /// Every uncaught error and unhandled rejection the page collected (lib/errors.js).
    pub async fn errors(&self) -> Vec<String> {
        let v = self.c.execute("return window.__jbkErrors || []", vec![]).await.unwrap_or(json!([]));
        v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default()
    }

    pub async fn assert_no_errors(&self) {
        let errors = self.errors().await;
        assert!(errors.is_empty(), "JavaScript errors in the page: {errors:#?}");
    }

    /// Logs in through the login page with a dev code, accepts the privacy policy if asked, and
    /// waits for the tab bar.
    pub async fn login(&self, code: &str) {
        self.open("#/login").await;
        self.fill("#login-code", code).await;
        self.click("[data-test=login]").await;
        self.after_login().await;
    }

    /// After a login outside the login form (QR): accepts the privacy policy if asked and waits
    /// for the tab bar.
    pub async fn after_login(&self) {
        let at = self.until("the consent page or the tabs", "return document.querySelector('[data-test=accept]') ? 'consent' : (document.querySelector('.tabbar') ? 'tabs' : null)", vec![]).await;
        if at == json!("consent") {
            self.click("[data-test=accept]").await;
        }
        self.wait_css(".tabbar").await;
    }

    /// Runs axe-core on the page as it is; returns the serious and critical violations.
    pub async fn axe(&self) -> Vec<String> {
        let loaded = self.eval("return typeof window.axe === 'object'", vec![]).await;
        if loaded != json!(true) {
            self.c.execute(&format!("{AXE}\n;return typeof window.axe"), vec![]).await.expect("axe loads");
        }
        let out = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '')) }))))
                   .catch((e) => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await
            .expect("axe runs");
        out.as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious") | Some("critical")))
            .map(|v| format!("{} ({}): {} {:?}", v["id"], v["impact"], v["help"], v["nodes"]))
            .collect()
    }

    pub async fn close(self) {
        let _ = self.c.close().await;
    }
}

/// A TCP proxy in front of the server that a test can cut (every connection through it is
/// closed and new ones are refused) and restore: one browser's network going away and back.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for h in self.live.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c2, l2) = (cut.clone(), live.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else { continue };
                if c2.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                let mut l = l2.lock().unwrap();
                l.retain(|h| !h.is_finished());
                l.push(task.abort_handle());
            }
        });
        Proxy { addr, cut, live, accept }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The network goes away: open connections are closed, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for h in self.live.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
