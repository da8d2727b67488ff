//! The one HTTP listener (gateway and REST alike): our own accept loop over hyper's HTTP/1.1
//! connections, because `axum::serve` has no timeouts and no caps.
//!
//! - **A permit before `accept`** (as mini-redis does): the process holds at most
//!   `max_connections` client sockets, so it never runs into its open-file limit. The last
//!   `reserved` of those permits are the reserve: a connection accepted on one may only ask for
//!   `/healthz` and `/readyz` (anything else gets 503 `overloaded`), is not kept alive
//!   and has a short header timeout, so that probes keep answering while the service is full.
//!   Past the reserve new clients wait in the kernel's backlog.
//! - **A cap per client IP** (an IPv6 client's /64), checked right after `accept`: a
//!   connection over it is closed at once and counted. Trusted proxies (`trusted_proxies`) are exempt: every client behind them
//!   shares their address.
//! - **Timeouts**: a new connection must send a whole request head within `header_timeout`; a
//!   request head, once begun, must end within `header_timeout`; a request body must arrive
//!   within `body_timeout` of the head (else 408 and the connection is closed); between two
//!   requests a kept-alive connection may be silent for `idle_timeout`. While a request is being
//!   answered nothing times out here (handlers bound their own work). A connection upgraded to a
//!   WebSocket leaves all this behind: the session's heartbeat watches it, and it keeps its
//!   permit until the socket closes.
//! - **The real client address**: the request's `ConnectInfo<SocketAddr>` is the TCP peer, or,
//!   when the peer is a trusted proxy, the address `X-Forwarded-For` / `X-Real-IP` names (see
//!   [`client_ip`]), so per-IP rate limits and logs see the client, not the proxy.
//! - `accept` failing with EMFILE/ENFILE (files opened elsewhere in the process) backs off
//!   (10 ms doubling to 1 s) and logs once per episode, not once per attempt.
//! - On shutdown the loop stops accepting and drops the listener; each connection finishes the
//!   request it is answering and closes (hyper's graceful shutdown).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use dashmap::DashMap;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The listener's limits (`JBK_HTTP_*`, `JBK_MAX_CONNECTIONS*`, `JBK_TRUSTED_PROXIES`).
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// A request head (and a new connection's first one) must be read within this.
    pub header_timeout: Duration,
    /// A request body must be read within this, counted from the end of its head.
    pub body_timeout: Duration,
    /// A kept-alive connection may be silent this long between requests.
    pub idle_timeout: Duration,
    /// Client sockets the process holds at most (HTTP and WebSocket), the reserve included.
    pub max_connections: usize,
    /// The last permits of `max_connections`, kept for `/healthz` and `/readyz`.
    pub reserved_connections: usize,
    /// Connections one client IP may hold (trusted proxies are exempt).
    pub max_connections_per_ip: usize,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// Header timeout of a connection accepted on a reserved permit.
const RESERVED_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Paths a connection on a reserved permit may ask for.
const OPS_PATHS: &[&str] = &["/healthz", "/readyz"];

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            reserved_connections: 32,
            max_connections_per_ip: 1000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The hard open-file limit less 1,024 for everything else the process opens (database pool,
/// Redis, RabbitMQ, files, the listener), at least 64.
pub fn default_max_connections() -> usize {
    let mut hard: u64 = 20_000;
    #[cfg(unix)]
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            hard = (lim.rlim_max as u64).min(1_000_000);
        }
    }
    (hard.saturating_sub(1024) as usize).max(64)
}

/// Parses `JBK_TRUSTED_PROXIES`: CIDRs or single addresses, comma separated.
pub fn parse_trusted_proxies(s: &str) -> anyhow::Result<Vec<IpNet>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("JBK_TRUSTED_PROXIES: {p:?} is not a CIDR (10.0.0.0/8) or an address"))
        })
        .collect()
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|n| n.contains(&ip))
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports) as
/// the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// What the per-IP cap counts: an IPv4 address, or an IPv6 address's /64 (one host, or one
/// subscriber's network, holds a whole /64).
fn per_ip_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy. Then
/// `X-Forwarded-For` is read from the right (the entry the nearest proxy appended) past every
/// trusted proxy, and the first address that is not one is the client; with no usable
/// `X-Forwarded-For`, `X-Real-IP`; with neither, the peer. A malformed entry stops the walk
/// (what stands left of it cannot be believed) and the last good address is taken.
pub fn client_ip(proxies: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(proxies, peer) {
        return peer;
    }
    let mut found: Option<IpAddr> = None;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
        .collect::<Vec<_>>();
    for entry in entries.iter().rev() {
        match parse_forwarded_addr(entry) {
            Some(ip) => {
                found = Some(ip);
                if !trusted(proxies, ip) {
                    return ip;
                }
            }
            None => break,
        }
    }
    if let Some(ip) = found {
        return ip;
    }
    if let Some(ip) = headers.get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(|v| parse_forwarded_addr(v.trim())) {
        return ip;
    }
    peer
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_forwarded_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    s.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// The listener's counters, registered under `jbk_http_*`.
#[derive(Clone, Default)]
pub struct ListenerStats {
    /// HTTP connections open now (upgraded WebSockets included until they close).
    pub open: Gauge,
    pub accepted: Counter,
    /// Connections closed at once or answered 503: `reason` = `per_ip` | `reserve`.
    pub shed: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Connections closed for being slow: `phase` = `header` | `idle` | `body`.
    pub timeouts: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// `accept` failures: `kind` = `emfile` | `other`.
    pub accept_errors: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Permits free now (outside the reserve).
    pub permits_free: Gauge,
}

impl ListenerStats {
    pub fn register(&self, reg: &mut Registry) {
        reg.register("http_connections", "HTTP connections open (WebSockets included until they close)", self.open.clone());
        reg.register("http_connections_accepted", "HTTP connections accepted", self.accepted.clone());
        reg.register("http_connections_shed", "Connections closed at once (per_ip) or answered 503 on a reserved permit (reserve)", self.shed.clone());
        reg.register("http_timeouts", "Connections closed for a slow request head, body, or a long idle keep-alive", self.timeouts.clone());
        reg.register("http_accept_errors", "accept() failures (emfile: out of file descriptors)", self.accept_errors.clone());
        reg.register("http_connection_permits_free", "Connection permits free outside the reserve", self.permits_free.clone());
    }
    fn timeout(&self, phase: &'static str) {
        self.timeouts.get_or_create(&vec![("phase", phase)]).inc();
    }
    fn shed(&self, reason: &'static str) {
        self.shed.get_or_create(&vec![("reason", reason)]).inc();
    }
}

/// Milliseconds on a monotonic clock since the first call.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What one connection's watchdog, its socket and its requests share.
struct ConnState {
    /// The HTTP connection is over (closed, or upgraded to a WebSocket): the socket lets go of
    /// this state at its next read, so that an upgraded session does not keep it.
    detached: AtomicBool,
    /// Requests being answered (hyper answers one at a time; an upgrade's answer counts until
    /// its body is gone).
    in_flight: AtomicU32,
    /// Requests started on this connection.
    served: AtomicU32,
    /// When the connection last became idle (accepted, or its last answer was sent).
    idle_since: AtomicU64,
    /// When the first byte after idling arrived (0: none yet).
    head_started: AtomicU64,
    /// The current request's body ran out of time.
    body_timed_out: AtomicBool,
    changed: Notify,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            detached: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
            served: AtomicU32::new(0),
            idle_since: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            body_timed_out: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    /// The moment the connection times out and why, or `None` while a request is answered.
    fn deadline(&self, header: Duration, idle: Duration) -> Option<(u64, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != 0 {
            return Some((head + header.as_millis() as u64, "header"));
        }
        let since = self.idle_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) == 0 {
            Some((since + header.as_millis() as u64, "header"))
        } else {
            Some((since + idle.as_millis() as u64, "idle"))
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.body_timed_out.store(false, Ordering::Release);
        self.changed.notify_one();
    }

    fn request_finished(&self) {
        self.idle_since.store(now_ms(), Ordering::Release);
        self.head_started.store(0, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }
}

/// What every connection's `Held` points to.
struct Shared {
    stats: ListenerStats,
    /// Open connections per `per_ip_key`.
    per_ip: DashMap<IpAddr, usize>,
}

/// What a client's socket holds until it closes: its permit and its place in the per-IP count.
/// Kept small: an upgraded WebSocket holds it for its whole life.
struct Held {
    _permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    per_ip: Option<IpAddr>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.stats.open.dec();
        if let Some(ip) = self.per_ip.take() {
            if let dashmap::Entry::Occupied(mut e) = self.shared.per_ip.entry(ip) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }
}

/// The client's socket: notes when a request head begins, and holds the connection's permit for
/// as long as the socket lives (through a WebSocket upgrade too).
struct ConnIo {
    tcp: TcpStream,
    /// Until the HTTP connection is over (`ConnState::detached`).
    state: Option<Arc<ConnState>>,
    _held: Held,
}

impl AsyncRead for ConnIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Some(s) = &self.state {
            if s.detached.load(Ordering::Acquire) {
                self.state = None;
            } else if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                if s.in_flight.load(Ordering::Acquire) == 0 && s.head_started.load(Ordering::Acquire) == 0 {
                    s.head_started.store(now_ms(), Ordering::Release);
                    s.changed.notify_one();
                }
            }
        }
        r
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// A request body that must be read within its deadline; past it, it fails and marks the
/// connection so that the answer becomes 408 and the connection closes.
struct TimedBody {
    inner: Incoming,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Arc<ConnState>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.state.body_timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err("request body not received in time".into())));
        }
        Poll::Pending
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body; when it is gone the request is over and the idle clock starts.
struct AnswerBody {
    inner: Body,
    state: Arc<ConnState>,
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        self.state.request_finished();
    }
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn json_error(status: StatusCode, code: &str, message: &str, retry_after_ms: Option<u64>) -> Response<Body> {
    let body = jiebanke_gateway::error_body::ErrorBody::new(code, message).retry_after(retry_after_ms);
    let mut r = Response::new(Body::from(serde_json::to_string(&body).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(ms) = retry_after_ms {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000).max(1)));
    }
    r
}

/// Everything the accept loop needs.
pub struct Listener {
    pub listener: TcpListener,
    pub router: axum::Router,
    pub config: ListenConfig,
    pub stats: ListenerStats,
    pub shutdown: CancellationToken,
}

impl Listener {
    /// Accepts and serves until `shutdown` fires, then lets every connection finish the request
    /// it is answering (at most `grace`) and returns.
    pub async fn run(self, grace: Duration) {
        let Listener { listener, router, config, stats, shutdown } = self;
        let cfg = Arc::new(config);
        let reserve = cfg.reserved_connections.min(cfg.max_connections.saturating_sub(1));
        let main = Arc::new(Semaphore::new(cfg.max_connections - reserve));
        let spare = Arc::new(Semaphore::new(reserve));
        let shared = Arc::new(Shared { stats: stats.clone(), per_ip: DashMap::new() });
        let conns = TaskTracker::new();
        let mut backoff = Duration::from_millis(10);
        let mut failing = false;
        loop {
            stats.permits_free.set(main.available_permits() as i64);
            // The permit first: with none free we do not accept, and the client waits in the
            // kernel's backlog instead of costing us a file descriptor.
            let (permit, reserved) = match main.clone().try_acquire_owned() {
                Ok(p) => (p, false),
                Err(_) => match spare.clone().try_acquire_owned() {
                    Ok(p) => (p, true),
                    Err(_) => tokio::select! {
                        p = main.clone().acquire_owned() => (p.expect("never closed"), false),
                        p = spare.clone().acquire_owned() => (p.expect("never closed"), true),
                        _ = shutdown.cancelled() => break,
                    },
                },
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.cancelled() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => {
                    if failing {
                        tracing::info!("accept works again");
                        failing = false;
                    }
                    backoff = Duration::from_millis(10);
                    a
                }
                Err(e) => {
                    let emfile = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM));
                    stats.accept_errors.get_or_create(&vec![("kind", if emfile { "emfile" } else { "other" })]).inc();
                    if emfile {
                        if !failing {
                            tracing::warn!(error = %e, "accept failed: out of file descriptors; backing off (logged once until it recovers)");
                            failing = true;
                        }
                        drop(permit);
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.cancelled() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    } else {
                        tracing::debug!(error = %e, "accept failed");
                    }
                    continue;
                }
            };
            stats.accepted.inc();
            // A permit of the reserve taken while waiting is traded for an ordinary one that has
            // come free since.
            let (permit, reserved) = match reserved {
                true => match main.clone().try_acquire_owned() {
                    Ok(p) => (p, false),
                    Err(_) => (permit, true),
                },
                false => (permit, false),
            };
            let peer_ip = canonical(peer.ip());
            let exempt = trusted(&cfg.trusted_proxies, peer_ip);
            let held_ip = if exempt {
                None
            } else {
                let key = per_ip_key(peer_ip);
                let mut e = shared.per_ip.entry(key).or_insert(0);
                if *e >= cfg.max_connections_per_ip {
                    drop(e);
                    stats.shed("per_ip");
                    // Closed at once, without reading: the client sees its connection reset or
                    // closed, and the permit is free again.
                    drop(tcp);
                    continue;
                }
                *e += 1;
                Some(key)
            };
            stats.open.inc();
            let held = Held { _permit: permit, shared: shared.clone(), per_ip: held_ip };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            conns.spawn(serve_connection(tcp, peer, held, reserved, router.clone(), cfg.clone(), stats.clone(), shutdown.clone()));
        }
        drop(listener);
        conns.close();
        if tokio::time::timeout(grace, conns.wait()).await.is_err() {
            tracing::warn!(left = conns.len(), "HTTP connections still open after the grace period");
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    held: Held,
    reserved: bool,
    router: axum::Router,
    cfg: Arc<ListenConfig>,
    stats: ListenerStats,
    shutdown: CancellationToken,
) {
    let state = Arc::new(ConnState::new());
    let io = ConnIo { tcp, state: Some(state.clone()), _held: held };
    // However the connection ends (closed, timed out, upgraded), the socket lets go of the state.
    struct Detach(Arc<ConnState>);
    impl Drop for Detach {
        fn drop(&mut self) {
            self.0.detached.store(true, Ordering::Release);
        }
    }
    let _detach = Detach(state.clone());
    let header_timeout = if reserved { cfg.header_timeout.min(RESERVED_HEADER_TIMEOUT) } else { cfg.header_timeout };
    let svc_state = state.clone();
    let svc_cfg = cfg.clone();
    let svc_stats = stats.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = svc_state.clone();
        let cfg = svc_cfg.clone();
        let stats = svc_stats.clone();
        let mut router = router.clone();
        async move {
            state.request_started();
            let client = SocketAddr::new(client_ip(&cfg.trusted_proxies, peer.ip(), req.headers()), peer.port());
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(client));
            let answer = if reserved && !OPS_PATHS.contains(&parts.uri.path()) {
                stats.shed("reserve");
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server is at its connection limit; retry later",
                    Some(1000),
                )
            } else {
                let body = TimedBody {
                    inner: body,
                    deadline: tokio::time::Instant::now() + cfg.body_timeout,
                    sleep: None,
                    state: state.clone(),
                };
                let req = Request::from_parts(parts, Body::new(body));
                let answer = match router.call(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if state.body_timed_out.load(Ordering::Acquire) {
                    stats.timeout("body");
                    json_error(StatusCode::REQUEST_TIMEOUT, "timeout", "the request body did not arrive in time", None)
                } else {
                    answer
                }
            };
            let (parts, body) = answer.into_parts();
            Ok::<_, std::convert::Infallible>(Response::from_parts(parts, AnswerBody { inner: body, state }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(!reserved).max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), svc).with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = state.deadline(header_timeout, cfg.idle_timeout);
        let changed = state.changed.notified();
        let sleep = async {
            match deadline {
                Some((at, _)) => {
                    let now = now_ms();
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = changed => {}
            _ = sleep => {
                if let Some((at, phase)) = state.deadline(header_timeout, cfg.idle_timeout) {
                    if at <= now_ms() {
                        stats.timeout(phase);
                        // Dropping the connection closes the socket.
                        return;
                    }
                }
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = parse_trusted_proxies("10.0.0.0/8, 192.168.1.7").unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // From an untrusted peer the header is ignored.
        assert_eq!(client_ip(&proxies, "198.51.100.1".parse().unwrap(), &h), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&proxies, proxy, &h), client);
        // A spoofed entry left of the real one is not believed: the rightmost untrusted wins.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.9.9.9")]);
        assert_eq!(client_ip(&proxies, proxy, &h), client);
        // Several header lines are one list, in order.
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(&proxies, proxy, &h), client);
        // X-Real-IP when there is no X-Forwarded-For; ports and brackets are understood.
        let h = headers(&[("x-real-ip", "203.0.113.9:4444")]);
        assert_eq!(client_ip(&proxies, "192.168.1.7".parse().unwrap(), &h), client);
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:80")]);
        assert_eq!(client_ip(&proxies, proxy, &h), "2001:db8::5".parse::<IpAddr>().unwrap());
        // Garbage stops the walk at the last good address; no header at all is the peer.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, garbage, 10.0.0.1")]);
        assert_eq!(client_ip(&proxies, proxy, &h), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&proxies, proxy, &HeaderMap::new()), proxy);
        // A v4-mapped peer is its v4 address.
        assert_eq!(client_ip(&proxies, "::ffff:10.1.2.3".parse().unwrap(), &headers(&[("x-real-ip", "203.0.113.9")])), client);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("").unwrap().is_empty());
    }

    #[test]
    fn the_per_ip_cap_counts_ipv6_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(per_ip_key(a), per_ip_key(b));
        assert_ne!(per_ip_key(a), per_ip_key(c));
        assert_eq!(per_ip_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(per_ip_key("10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let s = ConnState::new();
        let (h, i) = (Duration::from_secs(10), Duration::from_secs(60));
        let since = s.idle_since.load(Ordering::Relaxed);
        // A new connection has the header timeout to send its first request.
        assert_eq!(s.deadline(h, i), Some((since + 10_000, "header")));
        s.request_started();
        assert_eq!(s.deadline(h, i), None);
        s.request_finished();
        let since = s.idle_since.load(Ordering::Relaxed);
        assert_eq!(s.deadline(h, i), Some((since + 60_000, "idle")));
        s.head_started.store(since + 5, Ordering::Relaxed);
        assert_eq!(s.deadline(h, i), Some((since + 5 + 10_000, "header")));
    }
}
