//! Prometheus metrics of the gateway, rendered at `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;

/// A counter family with one label, whose usual values have their counters looked up once:
/// counting a frame is then a short string comparison and an atomic add, with no allocation or
/// hashing on the hot path. Other values fall back to the family.
struct Labeled {
    family: Family<Labels, Counter>,
    label: &'static str,
    known: Vec<(&'static str, Counter)>,
}

impl Labeled {
    fn new(label: &'static str, known: &[&'static str]) -> Self {
        let family = Family::<Labels, Counter>::default();
        let known = known.iter().map(|v| (*v, family.get_or_create(&vec![(label, (*v).to_owned())]).clone())).collect();
        Labeled { family, label, known }
    }
    fn inc(&self, value: &str) {
        match self.known.iter().find(|(v, _)| *v == value) {
            Some((_, c)) => {
                c.inc();
            }
            None => {
                self.family.get_or_create(&vec![(self.label, value.to_owned())]).inc();
            }
        }
    }
}

/// Frame types counted from the start (others are counted too, on first use).
const FRAMES_IN: &[&str] = &["send", "ping", "sync", "read", "typing", "alert_ack", "bad"];
const FRAMES_OUT: &[&str] = &["msg", "ack", "pong", "read", "typing", "presence", "history", "hello", "error"];

pub struct Metrics {
    /// Held only while rendering; the metrics themselves are lock-free atomics.
    registry: Mutex<Registry>,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub online_users: Gauge,
    frames_in: Labeled,
    frames_out: Labeled,
    errors: Family<Labels, Counter>,
    closes: Family<Labels, Counter>,
    pub ack_latency: Histogram,
    pub handshakes_rejected: Counter,
    pub match_requests: Counter,
    /// Proposals made on this node (each counted once, by the node of the request that found it).
    pub match_proposals: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jbk");
        let connections = Gauge::default();
        let connections_total = Counter::default();
        let online_users = Gauge::default();
        let frames_in = Labeled::new("type", FRAMES_IN);
        let frames_out = Labeled::new("type", FRAMES_OUT);
        let errors = Family::<Labels, Counter>::default();
        let closes = Family::<Labels, Counter>::default();
        // 0.25 ms .. ~4 s
        let ack_latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.00025, 2.0, 15));
        let handshakes_rejected = Counter::default();
        let match_requests = Counter::default();
        let match_proposals = Counter::default();
        registry.register("ws_connections", "Open WebSocket sessions", connections.clone());
        registry.register("ws_connections_opened", "WebSocket sessions opened", connections_total.clone());
        registry.register("online_users", "Users with at least one session on this node", online_users.clone());
        registry.register("ws_frames_in", "Frames received, by type", frames_in.family.clone());
        registry.register("ws_frames_out", "Frames sent, by type", frames_out.family.clone());
        registry.register("ws_errors", "Error frames sent, by code", errors.clone());
        registry.register("ws_closes", "Sessions closed by the server, by reason", closes.clone());
        registry.register("ack_latency_seconds", "From a send frame read to its ack queued", ack_latency.clone());
        registry.register("ws_handshakes_rejected", "Upgrades refused (auth, rate limit, protocol)", handshakes_rejected.clone());
        registry.register("match_requests", "Companion match requests taken", match_requests.clone());
        registry.register("match_proposals", "Companion match proposals made", match_proposals.clone());
        Metrics {
            registry: Mutex::new(registry),
            connections,
            connections_total,
            online_users,
            frames_in,
            frames_out,
            errors,
            closes,
            ack_latency,
            handshakes_rejected,
            match_requests,
            match_proposals,
        }
    }

    pub fn frame_in(&self, ty: &'static str) {
        self.frames_in.inc(ty);
    }
    pub fn frame_out(&self, ty: &'static str) {
        self.frames_out.inc(ty);
    }
    pub fn error(&self, code: &str) {
        self.errors.get_or_create(&vec![("code", code.to_owned())]).inc();
    }
    pub fn close(&self, reason: &'static str) {
        self.closes.get_or_create(&vec![("reason", reason.to_owned())]).inc();
    }

    /// Lets metrics kept elsewhere (the cluster adapter's) register, under the `jbk_` prefix.
    pub fn with_registry(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut out, &reg);
        out
    }
}
