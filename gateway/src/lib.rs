//! The WebSocket gateway: keeps every mini-program's persistent session, speaks the `jbk.v1`
//! protocol (docs/protocol.md) in JSON or MessagePack, and enforces the limits (frame size,
//! rates, queues, heartbeats). Business rules live in chat-core; this crate owns the wire.
//!
//! Layout:
//! - `error_body`: the one error body of every HTTP refusal (REST, the upgrade, the listener).
//! - `frame`: wire frames and codecs.
//! - `hub`: open sessions by user, presence watchers; the bus's event sink.
//! - `session`: one connection's reader loop and writer task (`session/io.rs`: the socket's read
//!   and write sides).
//! - `metrics`: Prometheus metrics.
//! - `strict`: the one strict parser of client input (both codecs and the REST bodies).

pub mod error_body;
pub mod frame;
pub mod hub;
pub mod metrics;
mod session;
pub mod strict;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use frame::Codec;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hub::{CloseReason, Hub};
use jiebanke_chat_core::chat::ChatService;
use jiebanke_chat_core::events::AlertService;
use jiebanke_chat_core::matching::MatchService;
use jiebanke_chat_core::moderation::ModerationService;
use jiebanke_chat_core::CoreError;
use jiebanke_chat_core::ports::TokenVerifier;
use jiebanke_chat_core::sessions::SessionService;
use jiebanke_chat_core::SessionId;
use metrics::Metrics;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The gateway's limits. Every queue and rate is bounded here.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest frame accepted; a larger one gets a `too_large` error and the session lives on.
    pub max_frame_bytes: usize,
    /// Transport cap: a message above it cannot even be read and closes the session (1009).
    pub hard_max_bytes: usize,
    /// How often the server pings; clients should send something at least this often.
    pub heartbeat: Duration,
    /// Silence after which a session is closed as dead (4002).
    pub heartbeat_timeout: Duration,
    /// Frames queued per session before it is closed as a slow consumer (4008).
    pub outbound_queue: usize,
    /// Requests one session may have in progress; past that its frames wait unread.
    pub max_inflight: usize,
    /// Frames per second a session may send, and the burst above that.
    pub msg_rate: NonZeroU32,
    pub msg_burst: NonZeroU32,
    /// Upgrades per second one IP address may make, and the burst above that.
    pub handshake_rate: NonZeroU32,
    pub handshake_burst: NonZeroU32,
    /// Bad frames in a row before the session is closed (1008).
    pub max_bad_frames: u32,
    /// Users one session may watch the presence of.
    pub max_presence_watch: usize,
    /// How long a draining session may take to answer its accepted requests.
    pub drain_timeout: Duration,
    /// Bytes read from a socket at a time. The transport allocates (and zeroes) this much per
    /// session, so it is most of an idle session's memory: keep it small.
    pub read_buffer_bytes: usize,
    /// Frames are buffered up to this many bytes before a write; a flush writes them anyway.
    pub write_buffer_bytes: usize,
    /// Most bytes a session's transport may hold unwritten; past it the session is closed.
    pub max_write_buffer_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_frame_bytes: 64 * 1024,
            hard_max_bytes: 1024 * 1024,
            heartbeat: Duration::from_secs(25),
            heartbeat_timeout: Duration::from_secs(75),
            outbound_queue: 1024,
            max_inflight: 64,
            msg_rate: NonZeroU32::new(50).expect("nonzero"),
            msg_burst: NonZeroU32::new(100).expect("nonzero"),
            handshake_rate: NonZeroU32::new(20).expect("nonzero"),
            handshake_burst: NonZeroU32::new(100).expect("nonzero"),
            max_bad_frames: 10,
            max_presence_watch: 500,
            drain_timeout: Duration::from_secs(10),
            read_buffer_bytes: 1024,
            write_buffer_bytes: 64 * 1024,
            max_write_buffer_bytes: 4 * 1024 * 1024,
        }
    }
}

impl GatewayConfig {
    /// How often the node's ticker looks for sessions with a heartbeat duty.
    pub fn heartbeat_tick(&self) -> Duration {
        self.heartbeat.min(Duration::from_secs(5))
    }

    /// A session is pinged on the first tick at least this long after its last ping: the tick
    /// nearest to one heartbeat.
    pub fn ping_after(&self) -> Duration {
        self.heartbeat.saturating_sub(self.heartbeat_tick() / 2)
    }

    /// A jittered reconnect delay for the drain close reason, so clients do not all come back
    /// in the same millisecond.
    pub fn reconnect_hint_ms(&self) -> u64 {
        500 + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0)
            % 2500)
    }
}

/// Everything the gateway's handlers share.
pub struct Gateway {
    pub chat: Arc<ChatService>,
    pub alerts: Arc<AlertService>,
    pub moderation: Arc<ModerationService>,
    pub matching: Arc<MatchService>,
    pub hub: Arc<Hub>,
    pub tokens: Arc<dyn TokenVerifier>,
    /// Login sessions: checked at the upgrade and again once the socket is registered.
    pub logins: Arc<SessionService>,
    pub config: GatewayConfig,
    pub metrics: Arc<Metrics>,
    /// Cancelled on SIGTERM: no new sessions; open ones answer what they accepted, then close.
    pub shutdown: CancellationToken,
    /// Every session task, so that shutdown can wait for the last one.
    pub sessions: TaskTracker,
    /// Marks users active for the day (the dashboard's daily active users), if set.
    pub activity: std::sync::OnceLock<Arc<jiebanke_chat_core::dashboard::ActivityTracker>>,
    /// Upgrades per client IP. Its memory is trimmed when it tracks many addresses.
    handshakes: DefaultKeyedRateLimiter<IpAddr>,
    session_prefix: String,
    next_session: AtomicU64,
    /// The heartbeat ticker (`Hub::tick_all`), started with the first session.
    ticker: std::sync::Once,
}

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chat: Arc<ChatService>,
        alerts: Arc<AlertService>,
        moderation: Arc<ModerationService>,
        matching: Arc<MatchService>,
        hub: Arc<Hub>,
        tokens: Arc<dyn TokenVerifier>,
        logins: Arc<SessionService>,
        config: GatewayConfig,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let quota = Quota::per_second(config.handshake_rate).allow_burst(config.handshake_burst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Arc::new(Gateway {
            chat,
            alerts,
            moderation,
            matching,
            hub,
            tokens,
            logins,
            config,
            metrics,
            shutdown,
            sessions: TaskTracker::new(),
            activity: std::sync::OnceLock::new(),
            handshakes: RateLimiter::keyed(quota),
            session_prefix: format!("{:x}", (nanos ^ std::process::id() as u64) & 0xff_ffff),
            next_session: AtomicU64::new(1),
            ticker: std::sync::Once::new(),
        })
    }

    /// Starts, once, the task that every `min(heartbeat, 5 s)` wakes the sessions with a
    /// heartbeat duty (`Hub::tick_all`); it ends with the shutdown.
    fn start_ticker(&self) {
        self.ticker.call_once(|| {
            let hub = Arc::downgrade(&self.hub);
            let shutdown = self.shutdown.clone();
            let period = self.config.heartbeat_tick();
            let (ping_after, timeout) = (self.config.ping_after(), self.config.heartbeat_timeout);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = every.tick() => match hub.upgrade() {
                            Some(hub) => hub.tick_all(ping_after, timeout),
                            None => break,
                        },
                    }
                }
            });
        });
    }

    /// Closes every session with 1012 after it answered what it accepted, and waits for them.
    pub async fn drain(&self) {
        self.shutdown.cancel();
        // A session registered after this sees the cancelled token itself.
        self.hub.close_all(CloseReason::Shutdown);
        self.sessions.close();
        if tokio::time::timeout(self.config.drain_timeout + Duration::from_secs(3), self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(left = self.sessions.len(), "sessions still open after the drain timeout");
        }
    }
}

/// `/ws`.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new().route("/ws", get(upgrade)).with_state(gw)
}

/// `/metrics` (OpenMetrics text), for the listener of its own (`JBK_METRICS_LISTEN`): never on
/// the app's port.
pub fn metrics_router(gw: Arc<Gateway>) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(gw)
}

async fn metrics_text(State(gw): State<Arc<Gateway>>) -> Response {
    gw.metrics.online_users.set(gw.chat.online_users() as i64);
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        gw.metrics.render(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
}

fn refuse(gw: &Gateway, status: StatusCode, code: &str, message: &str, retry_after_ms: Option<u64>) -> Response {
    gw.metrics.handshakes_rejected.inc();
    (status, Json(error_body::ErrorBody::new(code, message).retry_after(retry_after_ms))).into_response()
}

async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<WsQuery>, QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return refuse(&gw, e.status(), "bad_request", &e.body_text(), None),
    };
    // A repeated or malformed parameter (`?token=a&token=b`) gets the JSON error body too.
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return refuse(&gw, StatusCode::BAD_REQUEST, "bad_request", &e.body_text(), None),
    };
    if gw.shutdown.is_cancelled() {
        return refuse(&gw, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "server is draining", None);
    }
    if gw.handshakes.len() > 100_000 {
        gw.handshakes.retain_recent();
    }
    if let Err(not_until) = gw.handshakes.check_key(&peer.ip()) {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).as_millis().max(1) as u64;
        return refuse(&gw, StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many connection attempts", Some(wait));
    }
    // The protocols the client offers: codecs, and perhaps its token as `jbk.auth.<token>`
    // (never echoed: the server selects the codec's protocol).
    let requested: Vec<String> = ws
        .requested_protocols()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
        .filter(|p| !p.is_empty())
        .collect();
    let offered = match offered_protocols(&requested) {
        Ok(o) => o,
        Err(why) => return refuse(&gw, StatusCode::BAD_REQUEST, "invalid", why, None),
    };
    // The token comes in the protocol (preferred), `Authorization: Bearer`, or `?token=`
    // (discouraged: proxies log URLs). Two different ones are refused.
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_owned);
    let tokens: Vec<String> = [offered.token, bearer, query.token].into_iter().flatten().collect();
    if tokens.iter().any(|t| *t != tokens[0]) {
        return refuse(&gw, StatusCode::BAD_REQUEST, "invalid", "two different tokens in one upgrade", None);
    }
    let Some(token) = tokens.into_iter().next() else {
        return refuse(&gw, StatusCode::UNAUTHORIZED, "unauthorized", "missing token", None);
    };
    let claims = match gw.tokens.verify(&token) {
        Ok(c) => c,
        Err(_) => return refuse(&gw, StatusCode::UNAUTHORIZED, "unauthorized", "invalid or expired token", None),
    };
    match gw.logins.check(&claims).await {
        Ok(()) => {}
        Err(CoreError::Unauthorized(_)) => return refuse(&gw, StatusCode::UNAUTHORIZED, "unauthorized", "this session has ended; log in again", None),
        Err(_) => return refuse(&gw, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily unavailable, retry later", Some(1000)),
    }
    let user = claims.user;
    let admin = match gw.moderation.session_allowed(user).await {
        // Staff sessions (operators and admins) get the moderation feed.
        Ok(u) => {
            if let Some(a) = gw.activity.get() {
                a.seen(u.id);
            }
            u.role.is_staff()
        }
        Err(CoreError::Banned) => return refuse(&gw, StatusCode::FORBIDDEN, "banned", "this account is banned", None),
        Err(CoreError::Unavailable(_)) => {
            return refuse(&gw, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily unavailable, retry later", Some(1000))
        }
        Err(_) => return refuse(&gw, StatusCode::UNAUTHORIZED, "unauthorized", "unknown user", None),
    };
    let codec = offered.codec;
    let mut ws = ws
        .max_message_size(gw.config.hard_max_bytes)
        .max_frame_size(gw.config.hard_max_bytes)
        .read_buffer_size(gw.config.read_buffer_bytes)
        .write_buffer_size(gw.config.write_buffer_bytes)
        .max_write_buffer_size(gw.config.max_write_buffer_bytes.max(gw.config.write_buffer_bytes + gw.config.hard_max_bytes));
    if let Some(c) = codec {
        ws.set_selected_protocol(HeaderValue::from_static(c.protocol()));
    }
    let codec = codec.unwrap_or(Codec::Json);
    let id = SessionId::new(format!("{}-{}", gw.session_prefix, gw.next_session.fetch_add(1, Ordering::Relaxed)));
    let tracker = gw.sessions.clone();
    gw.start_ticker();
    ws.on_upgrade(move |socket| tracker.track_future(session::run(gw, socket, claims, admin, codec, id)))
}

/// What the client offers in `Sec-WebSocket-Protocol`.
struct Offered {
    /// The first codec protocol we speak; `None` when none is offered (JSON then).
    codec: Option<Codec>,
    /// The token of a `jbk.auth.<token>` protocol.
    token: Option<String>,
}

/// The protocol that carries the token: `jbk.auth.<token>`.
pub const AUTH_PROTOCOL_PREFIX: &str = "jbk.auth.";

/// Reads the offered protocols: at most one token (two different ones are refused), and a
/// codec we speak whenever anything is offered (a token alone, or only unknown protocols, are
/// refused: the server must have a codec protocol to select).
fn offered_protocols(requested: &[String]) -> Result<Offered, &'static str> {
    let mut token: Option<String> = None;
    let mut codec = None;
    let mut others = false;
    for p in requested {
        if let Some(t) = p.strip_prefix(AUTH_PROTOCOL_PREFIX) {
            match &token {
                Some(seen) if seen != t => return Err("two different tokens in one upgrade"),
                _ => token = Some(t.to_owned()),
            }
        } else if let Some(c) = Codec::from_protocol(p) {
            codec = codec.or(Some(c));
        } else {
            others = true;
        }
    }
    if codec.is_none() && token.is_some() {
        return Err("a jbk.auth protocol needs a codec protocol beside it (jbk.v1.json or jbk.v1.msgpack)");
    }
    if codec.is_none() && others {
        return Err("unsupported subprotocol; use jbk.v1.json or jbk.v1.msgpack");
    }
    Ok(Offered { codec, token })
}
