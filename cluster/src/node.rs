//! `RedisCluster`: this node's link to the others through Redis. It is the `Bus` (events to the
//! sessions of every node) and the `PresenceDirectory` (who is online where) of cluster mode.
//!
//! Routing: each node subscribes to its own channel; `on:{user}` holds the nodes with a
//! session of the user. A publisher looks the members up and publishes each event once per
//! node that has some of them, naming those members (an order alert or a ban is routed the same
//! way, to its one user). Presence changes go to `pres:{user}`, which only nodes with a watcher
//! of the user subscribe to; membership changes and moderation items go to `all`, which every
//! node subscribes to (they are rare).
//!
//! Liveness: each node scores itself in `nodes` every `presence_ttl / 3`. A node that has not
//! for `presence_ttl` is dead: the first live node to remove it from `nodes` takes its users
//! out of their `on:` sets and publishes them offline if it was their last node.
//!
//! Outages: a lost subscription is re-established with backoff; then this node registers its
//! users again and tells its sessions to `resync` (what was published meanwhile did not reach
//! them). While Redis is down the node serves its own users; `healthy()` says false.

use crate::keys::Keys;
use crate::link::Conn;
use crate::order::{Item, Sequencer, Verdict};
use crate::wire;
use async_trait::async_trait;
use dashmap::DashSet;
use futures_util::StreamExt;
use jiebanke_chat_core::ports::{Bus, Event, EventSink, PresenceDirectory, Ready, Store};
use jiebanke_chat_core::{ConvId, CoreError, Message, Seq, SessionId, UserId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::AsyncCommands;
use std::collections::{BTreeMap, HashMap};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a held out-of-order message waits for the missing ones before they are read from
/// storage (public for the tests that wait past it).
pub const GAP_WAIT: Duration = Duration::from_millis(150);
/// Most events one publish pipeline carries.
const PUBLISH_BATCH: usize = 256;
/// Bound of every Redis command and connection attempt.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscription is checked with a PING.
const SUB_PING: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Prefix of every key and channel: several clusters (or tests) may share one Redis.
    pub prefix: String,
    pub node_id: String,
    /// A node silent for this long is dead and its users offline.
    pub presence_ttl: Duration,
    /// Events waiting to be published to Redis; when full, events are dropped (and counted):
    /// the members recover them with `sync`.
    pub publish_queue: usize,
    /// `redis_url` lists seed nodes of a Redis Cluster (comma separated): commands are routed by
    /// slot and pub/sub is sharded (SSUBSCRIBE/SPUBLISH).
    pub redis_cluster: bool,
}

impl ClusterConfig {
    pub fn new(redis_url: impl Into<String>, node_id: impl Into<String>) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            prefix: "jbk".into(),
            node_id: node_id.into(),
            presence_ttl: Duration::from_secs(30),
            publish_queue: 65_536,
            redis_cluster: false,
        }
    }
}

/// Counters for `/metrics` (`ClusterStats::register` names them).
#[derive(Default)]
pub struct ClusterStats {
    pub published: Counter,
    pub publish_dropped: Counter,
    pub received: Counter,
    pub received_bad: Counter,
    pub reconnects: Counter,
    pub gap_fills: Counter,
    pub reaped_nodes: Counter,
    /// 1 while `healthy()`, refreshed on each heartbeat.
    pub redis_up: Gauge,
}

impl ClusterStats {
    /// Registers every metric (names get the registry's prefix).
    pub fn register(&self, reg: &mut prometheus_client::registry::Registry) {
        reg.register("cluster_published", "Envelopes published to Redis", self.published.clone());
        reg.register("cluster_publish_dropped", "Events not published to Redis (queue full or Redis down)", self.publish_dropped.clone());
        reg.register("cluster_received", "Envelopes received from Redis", self.received.clone());
        reg.register("cluster_received_bad", "Undecodable envelopes dropped", self.received_bad.clone());
        reg.register("cluster_reconnects", "Redis subscription losses", self.reconnects.clone());
        reg.register("cluster_gap_fills", "Out-of-order gaps read from the database", self.gap_fills.clone());
        reg.register("cluster_reaped_nodes", "Dead nodes whose users this node took offline", self.reaped_nodes.clone());
        reg.register("cluster_redis_up", "1 while the Redis link is healthy", self.redis_up.clone());
    }
}

enum Control {
    Subscribe(String, oneshot::Sender<bool>),
    Unsubscribe(String),
}

/// The pushes (sharded pub/sub messages, disconnections) a Redis Cluster connection may queue
/// for the subscriber; past it they are dropped and the sessions told to resync.
const PUSH_QUEUE: usize = 65_536;

// Built once per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Single { client: redis::Client, conn: ConnectionManager },
    Cluster {
        client: redis::cluster::ClusterClient,
        /// Connected on first use (the cluster may be down when the node starts), then kept:
        /// it reconnects to each shard by itself.
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
        pushes: Mutex<Option<mpsc::Receiver<redis::PushInfo>>>,
        push_overflow: Arc<AtomicBool>,
    },
}

pub struct RedisCluster {
    cfg: ClusterConfig,
    keys: Keys,
    backend: Backend,
    store: Arc<dyn Store>,
    sink: OnceLock<Arc<dyn EventSink>>,
    on_members: OnceLock<Box<dyn Fn(ConvId) + Send + Sync>>,
    /// Users with a session on this node (the directory's view of this node).
    local_users: DashSet<UserId>,
    /// How many sessions this node has: published with each heartbeat for the dashboard.
    local_sessions: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
    /// Presence watches per watched user (see `Bus::watch`).
    watched: Mutex<HashMap<UserId, u32>>,
    /// To the subscriber task. Unbounded, but each entry comes from one watch or unwatch, which
    /// sessions bound (`max_presence_watch` each).
    control: mpsc::UnboundedSender<Control>,
    control_rx: Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    outq: mpsc::Sender<Event>,
    outq_rx: Mutex<Option<mpsc::Receiver<Event>>>,
    seq: Sequencer,
    sub_ok: AtomicBool,
    pub_ok: AtomicBool,
    beat_ok: AtomicBool,
    /// This process's token beside its node id, so that two live processes started with the
    /// same `JBK_NODE_ID` notice each other.
    instance: String,
    /// Another instance beat for this node id since our last beat (`/readyz` is degraded).
    duplicate: AtomicBool,
    instance_script: redis::Script,
    online_script: redis::Script,
    offline_script: redis::Script,
    pub stats: ClusterStats,
    stop: CancellationToken,
}

/// Writes this instance's beat for the node id and returns the value it replaced.
const INSTANCE_LUA: &str = r"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return old";
/// Deletes the node id's beat if it is still this instance's.
const INSTANCE_DEL_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then redis.call('DEL', KEYS[1]) end
return 0";

/// SADD the node; true if that made the set go from empty to one node: the user came online.
const ONLINE_LUA: &str = r"
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0";
/// SREM the node; true if that emptied the set: the user went offline.
const OFFLINE_LUA: &str = r"
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0";

fn unavailable(e: impl std::fmt::Display) -> CoreError {
    CoreError::unavailable(format!("redis: {e}"))
}

impl RedisCluster {
    /// Prepares the link; nothing is sent until `start`. A Redis that is down now is not an
    /// error: the node starts degraded and connects when it can.
    pub fn new(cfg: ClusterConfig, store: Arc<dyn Store>) -> anyhow::Result<Arc<Self>> {
        let backend = if cfg.redis_cluster {
            let seeds: Vec<&str> = cfg.redis_url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            let (tx, rx) = mpsc::channel::<redis::PushInfo>(PUSH_QUEUE);
            let push_overflow = Arc::new(AtomicBool::new(false));
            let overflow = push_overflow.clone();
            let client = redis::cluster::ClusterClientBuilder::new(seeds)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .connection_timeout(REDIS_TIMEOUT)
                .response_timeout(REDIS_TIMEOUT)
                .retries(2)
                .push_sender(move |info: redis::PushInfo| {
                    if tx.try_send(info).is_err() {
                        overflow.store(true, Ordering::Relaxed);
                    }
                    Ok::<(), std::convert::Infallible>(())
                })
                .build()?;
            Backend::Cluster { client, conn: tokio::sync::Mutex::new(None), pushes: Mutex::new(Some(rx)), push_overflow }
        } else {
            let client = redis::Client::open(cfg.redis_url.as_str())?;
            let conn = ConnectionManager::new_lazy_with_config(
                client.clone(),
                ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500)),
            )?;
            Backend::Single { client, conn }
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        let (outq, outq_rx) = mpsc::channel(cfg.publish_queue.max(1));
        Ok(Arc::new(RedisCluster {
            keys: Keys::new(&cfg.prefix),
            cfg,
            backend,
            store,
            sink: OnceLock::new(),
            on_members: OnceLock::new(),
            local_users: DashSet::new(),
            local_sessions: OnceLock::new(),
            watched: Mutex::new(HashMap::new()),
            control,
            control_rx: Mutex::new(Some(control_rx)),
            outq,
            outq_rx: Mutex::new(Some(outq_rx)),
            seq: Sequencer::default(),
            sub_ok: AtomicBool::new(false),
            pub_ok: AtomicBool::new(true),
            beat_ok: AtomicBool::new(false),
            instance: format!("{:016x}", rand::random::<u64>()),
            duplicate: AtomicBool::new(false),
            instance_script: redis::Script::new(INSTANCE_LUA),
            online_script: redis::Script::new(ONLINE_LUA),
            offline_script: redis::Script::new(OFFLINE_LUA),
            stats: ClusterStats::default(),
            stop: CancellationToken::new(),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// The cluster's Redis key prefix (what the match pool's keys start with).
    pub(crate) fn prefix(&self) -> &str {
        &self.cfg.prefix
    }

    pub(crate) async fn command_conn(&self) -> redis::RedisResult<Conn> {
        self.conn().await
    }

    /// A connection for commands (cheap: a handle to the shared one).
    async fn conn(&self) -> redis::RedisResult<Conn> {
        match &self.backend {
            Backend::Single { conn, .. } => Ok(Conn::Single(conn.clone())),
            Backend::Cluster { client, conn, .. } => {
                let mut slot = conn.lock().await;
                if let Some(c) = &*slot {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let c = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_connection())
                    .await
                    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "redis cluster connection timed out")))??;
                *slot = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
        }
    }

    /// Makes sure no other live process uses this node id. If another instance's beat is there,
    /// it is watched for at most the presence TTL: if it advances, that process is alive and this
    /// one must not start (`Err`); if it does not (a predecessor killed with `kill -9`), it
    /// expires and this node goes on. With Redis unreachable the check is skipped (logged): the
    /// node starts degraded as usual, and the heartbeat's check catches a duplicate later.
    pub async fn claim_node_id(self: &Arc<Self>) -> anyhow::Result<()> {
        let key = self.keys.instance(&self.cfg.node_id);
        let ttl = self.cfg.presence_ttl;
        let read = |key: String| async move {
            let mut conn = self.conn().await?;
            let v: Option<String> = tokio::time::timeout(REDIS_TIMEOUT, conn.get(&key))
                .await
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "redis timed out")))??;
            Ok::<_, redis::RedisError>(v)
        };
        let first = match read(key.clone()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "redis unreachable: the node id's uniqueness is not checked at start");
                return Ok(());
            }
        };
        let Some(first) = first else { return Ok(()) };
        tracing::info!(node = %self.cfg.node_id, "another instance beat for this node id; waiting to see whether it is alive");
        let started = tokio::time::Instant::now();
        let step = (ttl / 6).max(Duration::from_millis(50));
        while started.elapsed() < ttl + step {
            tokio::time::sleep(step).await;
            match read(key.clone()).await {
                Ok(None) => return Ok(()),
                Ok(Some(v)) if v != first => {
                    anyhow::bail!(
                        "another live process is already node {:?} (its heartbeat advances): give each process its own JBK_NODE_ID",
                        self.cfg.node_id
                    )
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "redis unreachable while checking the node id; starting");
                    return Ok(());
                }
            }
        }
        // Expired keys go away by themselves; a key still unchanged after the TTL is stale.
        Ok(())
    }

    /// Whether another live process beats for this node id (see `claim_node_id`).
    pub fn duplicate_instance(&self) -> bool {
        self.duplicate.load(Ordering::Relaxed)
    }

    /// Starts the subscriber, the publisher and the heartbeat. `sink` gets the events for this
    /// node's sessions; `on_members` is called when another node changed a conversation's
    /// members. Returns once the first subscription is up, or after `REDIS_TIMEOUT` degraded.
    pub async fn start(self: &Arc<Self>, sink: Arc<dyn EventSink>, on_members: Box<dyn Fn(ConvId) + Send + Sync>) {
        let _ = self.sink.set(sink);
        let _ = self.on_members.set(on_members);
        let control_rx = self.control_rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let outq_rx = self.outq_rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (Some(control_rx), Some(outq_rx)) = (control_rx, outq_rx) else {
            return; // started already
        };
        // A node restarted under the same id takes its old registrations back first.
        if let Err(e) = self.clear_node(&self.cfg.node_id.clone()).await {
            tracing::warn!(error = %e, "could not clear this node's earlier registrations");
        }
        let (up_tx, up_rx) = oneshot::channel();
        tokio::spawn(self.clone().subscriber(control_rx, up_tx));
        tokio::spawn(self.clone().publisher(outq_rx));
        tokio::spawn(self.clone().heartbeat());
        let _ = tokio::time::timeout(REDIS_TIMEOUT, up_rx).await;
    }

    /// Whether the subscription, the last publish and the last heartbeat all went through.
    pub fn healthy(&self) -> bool {
        self.sub_ok.load(Ordering::Relaxed) && self.pub_ok.load(Ordering::Relaxed) && self.beat_ok.load(Ordering::Relaxed)
    }

    /// Leaves the cluster at shutdown: unregisters this node's users (publishing those who go
    /// offline) and the node, then stops the tasks. Sessions should be closed first.
    pub async fn leave(self: &Arc<Self>) {
        let me = self.cfg.node_id.clone();
        let _ = tokio::time::timeout(REDIS_TIMEOUT * 2, async {
            if let Err(e) = self.clear_node(&me).await {
                tracing::warn!(error = %e, "could not unregister this node's users");
            }
            if let Ok(mut conn) = self.conn().await {
                let _: Result<(), _> = conn.zrem(self.keys.nodes(), &me).await;
                let _: Result<(), _> = conn.hdel(self.keys.node_sessions(), &me).await;
                // A successor under the same id need not wait for our beat to expire.
                let _: Result<i64, _> = redis::Script::new(INSTANCE_DEL_LUA)
                    .key(self.keys.instance(&me))
                    .arg(&self.instance)
                    .invoke_async(&mut conn)
                    .await;
            }
        })
        .await;
        // Let the publisher send the last presence changes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stop.cancel();
    }

    fn sink(&self) -> Option<&Arc<dyn EventSink>> {
        self.sink.get()
    }

    // ---- delivery on this node ----

    /// Delivers a message to those of `targets` with a session here, in seq order per user.
    fn deliver_message(self: &Arc<Self>, targets: &[UserId], message: &Arc<Message>, origin: &Option<SessionId>) {
        let Some(sink) = self.sink() else { return };
        let mut now = Vec::new();
        for u in targets.iter().filter(|u| self.local_users.contains(*u)) {
            match self.seq.offer(*u, (message.clone(), origin.clone())) {
                Verdict::Deliver(items) if items.len() == 1 && items[0].0.seq == message.seq => now.push(*u),
                Verdict::Deliver(items) => self.deliver_items(*u, items),
                Verdict::Held { first: true } => self.schedule_fill(*u, message.conv),
                Verdict::Held { .. } | Verdict::Duplicate => {}
            }
        }
        if !now.is_empty() {
            sink.deliver(&Event::Message { members: now.into(), origin: origin.clone(), message: message.clone() });
        }
    }

    fn deliver_items(&self, user: UserId, items: Vec<Item>) {
        let Some(sink) = self.sink() else { return };
        let to: Arc<[UserId]> = Arc::from(vec![user]);
        for (message, origin) in items {
            sink.deliver(&Event::Message { members: to.clone(), origin, message });
        }
    }

    /// After `GAP_WAIT`, reads what is still missing for (user, conv) from storage.
    fn schedule_fill(self: &Arc<Self>, user: UserId, conv: ConvId) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GAP_WAIT).await;
            let Some((after, before)) = this.seq.gap(user, conv) else { return };
            this.stats.gap_fills.inc();
            let want = (before - after - 1).min(200) as u32;
            let fetched = match this.store.history(conv, Seq::new(after), want).await {
                Ok(page) => page.into_iter().map(Arc::new).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, %conv, "gap not read from storage; the client syncs");
                    Vec::new()
                }
            };
            let items = this.seq.fill(user, conv, fetched);
            this.deliver_items(user, items);
        });
    }

    fn receive(self: &Arc<Self>, payload: &[u8]) {
        self.stats.received.inc();
        let got = match wire::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                self.stats.received_bad.inc();
                tracing::warn!(error = %e, "bad event from redis dropped");
                return;
            }
        };
        if got.node == self.cfg.node_id {
            return;
        }
        match &got.event {
            Event::Message { members, origin, message } => self.deliver_message(members, message, origin),
            Event::MembersChanged { conv } => {
                if let Some(f) = self.on_members.get() {
                    f(*conv)
                }
            }
            Event::Read { .. }
            | Event::Typing { .. }
            | Event::Presence { .. }
            | Event::OrderAlert { .. }
            | Event::Moderation { .. }
            | Event::MessageDeleted { .. }
            | Event::MatchProposal { .. }
            | Event::MatchExpired { .. }
            | Event::MerchantReviewed { .. }
            | Event::ClaimUpdate { .. }
            | Event::Erased { .. }
            | Event::PresenceHidden { .. }
            | Event::LoggedOut { .. }
            | Event::Banned { .. } => {
                if let Some(sink) = self.sink() {
                    sink.deliver(&got.event)
                }
            }
            Event::Resync => {}
        }
    }

    // ---- the subscriber ----

    async fn subscriber(self: Arc<Self>, mut control: mpsc::UnboundedReceiver<Control>, up: oneshot::Sender<()>) {
        let mut up = Some(up);
        let mut backoff = Duration::from_millis(100);
        let mut first = true;
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let once = match &self.backend {
                Backend::Single { .. } => self.subscribe_once(&mut control, &mut up, first).await,
                Backend::Cluster { .. } => self.subscribe_sharded_once(&mut control, &mut up, first).await,
            };
            match once {
                Ok(()) => return, // stopped
                Err(e) => {
                    if self.sub_ok.swap(false, Ordering::Relaxed) {
                        backoff = Duration::from_millis(100);
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "redis subscription lost");
                }
            }
            first = false;
            self.stats.reconnects.inc();
            // While down, watches cannot be confirmed; they are subscribed on reconnect.
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    _ = self.stop.cancelled() => return,
                    c = control.recv() => match c {
                        Some(Control::Subscribe(_, reply)) => { let _ = reply.send(false); }
                        Some(Control::Unsubscribe(_)) => {}
                        None => return,
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// The channels this node listens to: its own, the broadcast one, its watched users'.
    fn channels(&self) -> Vec<String> {
        let mut channels = vec![self.keys.node_channel(&self.cfg.node_id), self.keys.broadcast_channel()];
        let watched: Vec<UserId> = self.watched.lock().unwrap_or_else(|e| e.into_inner()).keys().copied().collect();
        channels.extend(watched.iter().map(|u| self.keys.presence_channel(*u)));
        channels
    }

    /// The channels are subscribed: register the node's users (routes to this node are only
    /// useful from now on), report up, and after an outage tell the sessions to resync.
    async fn subscribed(&self, up: &mut Option<oneshot::Sender<()>>, first: bool) -> redis::RedisResult<()> {
        self.register_all().await?;
        self.sub_ok.store(true, Ordering::Relaxed);
        if let Some(up) = up.take() {
            let _ = up.send(());
        }
        if !first {
            tracing::info!("redis subscription back; sessions told to resync");
            if let Some(s) = self.sink() {
                s.deliver(&Event::Resync);
            }
        }
        Ok(())
    }

    /// One subscription's life: connect, subscribe, register, then serve until it breaks.
    async fn subscribe_once(
        self: &Arc<Self>,
        control: &mut mpsc::UnboundedReceiver<Control>,
        up: &mut Option<oneshot::Sender<()>>,
        first: bool,
    ) -> anyhow::Result<()> {
        let Backend::Single { client, .. } = &self.backend else { anyhow::bail!("not a single redis") };
        let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await??;
        let (mut sink, mut stream) = pubsub.split();
        for chunk in self.channels().chunks(1000) {
            tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(chunk)).await??;
        }
        self.subscribed(up, first).await?;
        let mut ping = tokio::time::interval(SUB_PING);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                msg = stream.next() => match msg {
                    Some(m) => self.receive(m.get_payload_bytes()),
                    None => anyhow::bail!("subscription stream ended"),
                },
                c = control.recv() => match c {
                    Some(Control::Subscribe(ch, reply)) => {
                        let r = tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(&ch)).await;
                        let ok = matches!(r, Ok(Ok(())));
                        let _ = reply.send(ok);
                        if !ok { anyhow::bail!("subscribe failed"); }
                    }
                    Some(Control::Unsubscribe(ch)) => {
                        tokio::time::timeout(REDIS_TIMEOUT, sink.unsubscribe(&ch)).await??;
                    }
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await??;
                }
            }
        }
    }

    /// Redis Cluster: one subscription's life on sharded pub/sub. The cluster connection
    /// resubscribes by itself after a shard's connection drops; since messages may have been
    /// lost meanwhile, a disconnection starts over here (subscribe again, register, resync).
    async fn subscribe_sharded_once(
        self: &Arc<Self>,
        control: &mut mpsc::UnboundedReceiver<Control>,
        up: &mut Option<oneshot::Sender<()>>,
        first: bool,
    ) -> anyhow::Result<()> {
        let Backend::Cluster { pushes, push_overflow, .. } = &self.backend else { anyhow::bail!("not a redis cluster") };
        let Some(mut rx) = pushes.lock().unwrap_or_else(|e| e.into_inner()).take() else { anyhow::bail!("push receiver in use") };
        let r = self.sharded_session(&mut rx, push_overflow, control, up, first).await;
        *pushes.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        r
    }

    async fn sharded_session(
        self: &Arc<Self>,
        rx: &mut mpsc::Receiver<redis::PushInfo>,
        push_overflow: &AtomicBool,
        control: &mut mpsc::UnboundedReceiver<Control>,
        up: &mut Option<oneshot::Sender<()>>,
        first: bool,
    ) -> anyhow::Result<()> {
        let conn = self.conn().await?;
        let Conn::Cluster(mut cc) = conn else { anyhow::bail!("not a redis cluster") };
        // What queued before this subscription is stale (and the disconnection it reported is
        // the reason we are here).
        while rx.try_recv().is_ok() {}
        push_overflow.store(false, Ordering::Relaxed);
        // One SSUBSCRIBE per channel: the channels of one command must share a slot.
        for ch in &self.channels() {
            tokio::time::timeout(REDIS_TIMEOUT, cc.ssubscribe(ch)).await??;
        }
        self.subscribed(up, first).await?;
        let mut ping = tokio::time::interval(SUB_PING);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                push = rx.recv() => match push {
                    Some(p) => match p.kind {
                        redis::PushKind::SMessage | redis::PushKind::Message => {
                            if let Some(redis::Value::BulkString(payload)) = p.data.get(1) {
                                self.receive(payload);
                            }
                        }
                        redis::PushKind::Disconnection => anyhow::bail!("a redis cluster connection dropped"),
                        _ => {}
                    },
                    None => anyhow::bail!("push channel closed"),
                },
                c = control.recv() => match c {
                    Some(Control::Subscribe(ch, reply)) => {
                        let ok = matches!(tokio::time::timeout(REDIS_TIMEOUT, cc.ssubscribe(&ch)).await, Ok(Ok(())));
                        let _ = reply.send(ok);
                        if !ok { anyhow::bail!("ssubscribe failed"); }
                    }
                    Some(Control::Unsubscribe(ch)) => {
                        tokio::time::timeout(REDIS_TIMEOUT, cc.sunsubscribe(&ch)).await??;
                    }
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    if push_overflow.swap(false, Ordering::Relaxed) {
                        tracing::warn!("redis cluster pushes overflowed; sessions told to resync");
                        if let Some(s) = self.sink() {
                            s.deliver(&Event::Resync);
                        }
                    }
                    let _: redis::Value = tokio::time::timeout(REDIS_TIMEOUT, redis::cmd("PING").query_async(&mut cc)).await??;
                }
            }
        }
    }

    /// Puts this node and all its users (back) in the directory.
    async fn register_all(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn().await?;
        let me = self.cfg.node_id.as_str();
        let _: () = conn.zadd(self.keys.nodes(), me, crate::now_ms()).await?;
        let users: Vec<UserId> = self.local_users.iter().map(|u| *u).collect();
        for chunk in users.chunks(1000) {
            let mut cmds = Vec::with_capacity(chunk.len() * 2);
            for u in chunk {
                let mut a = redis::cmd("SADD");
                a.arg(self.keys.on(*u)).arg(me);
                let mut b = redis::cmd("SADD");
                b.arg(self.keys.node_users(me)).arg(u.get());
                cmds.push(a);
                cmds.push(b);
            }
            let _: Vec<redis::Value> = conn.batch(cmds).await?;
        }
        self.beat_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    // ---- the publisher ----

    async fn publisher(self: Arc<Self>, mut rx: mpsc::Receiver<Event>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        loop {
            let n = tokio::select! {
                n = rx.recv_many(&mut batch, PUBLISH_BATCH) => n,
                _ = self.stop.cancelled() => return,
            };
            if n == 0 {
                return;
            }
            match tokio::time::timeout(REDIS_TIMEOUT * 2, self.publish_batch(&batch)).await {
                Ok(Ok(sent)) => {
                    self.pub_ok.store(true, Ordering::Relaxed);
                    self.stats.published.inc_by(sent);
                }
                res => {
                    let was_ok = self.pub_ok.swap(false, Ordering::Relaxed);
                    self.stats.publish_dropped.inc_by(batch.len() as u64);
                    if was_ok {
                        let err = match res {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timeout".into(),
                        };
                        tracing::warn!(error = %err, events = batch.len(), "events not published to redis; other nodes' members will sync");
                    }
                }
            }
            batch.clear();
        }
    }

    /// Routes and publishes a batch in two round trips: the member lookups, then the publishes.
    async fn publish_batch(&self, batch: &[Event]) -> redis::RedisResult<u64> {
        let conn = self.conn().await?;
        let me = self.cfg.node_id.as_str();
        let mut need: Vec<UserId> = batch.iter().flat_map(|e| audience(e).into_owned()).collect();
        need.sort_unstable();
        need.dedup();
        let mut routes: HashMap<UserId, Vec<String>> = HashMap::with_capacity(need.len());
        for chunk in need.chunks(1000) {
            let cmds = chunk
                .iter()
                .map(|u| {
                    let mut c = redis::cmd("SMEMBERS");
                    c.arg(self.keys.on(*u));
                    c
                })
                .collect();
            let nodes: Vec<Vec<String>> = conn.batch(cmds).await?;
            for (u, n) in chunk.iter().zip(nodes) {
                if n.iter().any(|x| x != me) {
                    routes.insert(*u, n);
                }
            }
        }
        let mut p: Vec<redis::Cmd> = Vec::new();
        let mut sent = 0u64;
        for ev in batch {
            match ev {
                Event::Message { .. }
                | Event::Read { .. }
                | Event::Typing { .. }
                | Event::MessageDeleted { .. }
                | Event::OrderAlert { .. }
                | Event::MatchProposal { .. }
                | Event::MatchExpired { .. }
                | Event::MerchantReviewed { .. }
                | Event::ClaimUpdate { .. }
                | Event::Erased { .. }
            | Event::PresenceHidden { .. }
            | Event::LoggedOut { .. }
            | Event::Banned { .. } => {
                    let mut by_node: BTreeMap<&str, Vec<UserId>> = BTreeMap::new();
                    for m in audience(ev).iter() {
                        for n in routes.get(m).into_iter().flatten().filter(|n| n.as_str() != me) {
                            by_node.entry(n.as_str()).or_default().push(*m);
                        }
                    }
                    for (node, to) in by_node {
                        if let Some(bytes) = wire::encode(me, ev, &to) {
                            p.push(conn.publish_cmd(self.keys.node_channel(node), bytes));
                            sent += 1;
                        }
                    }
                }
                Event::Presence { user, .. } => {
                    if let Some(bytes) = wire::encode(me, ev, &[]) {
                        p.push(conn.publish_cmd(self.keys.presence_channel(*user), bytes));
                        sent += 1;
                    }
                }
                Event::MembersChanged { .. } | Event::Moderation { .. } => {
                    if let Some(bytes) = wire::encode(me, ev, &[]) {
                        p.push(conn.publish_cmd(self.keys.broadcast_channel(), bytes));
                        sent += 1;
                    }
                }
                Event::Resync => {}
            }
        }
        if sent > 0 {
            let _: Vec<redis::Value> = conn.batch(p).await?;
        }
        Ok(sent)
    }

    // ---- liveness ----

    async fn heartbeat(self: Arc<Self>) {
        let every = (self.cfg.presence_ttl / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stop.cancelled() => return,
            }
            let r = tokio::time::timeout(REDIS_TIMEOUT * 2, self.beat()).await;
            self.stats.redis_up.set(i64::from(matches!(r, Ok(Ok(()))) && self.healthy()));
            match r {
                Ok(Ok(())) => self.beat_ok.store(true, Ordering::Relaxed),
                res => {
                    if self.beat_ok.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = ?res.err().map(|_| "timeout"), "redis heartbeat failed");
                    }
                }
            }
        }
    }

    async fn beat(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let me = self.cfg.node_id.clone();
        let now = crate::now_ms();
        // Our instance's beat; what it replaced tells whether another process beat meanwhile.
        let previous: Option<String> = self
            .instance_script
            .key(self.keys.instance(&me))
            .arg(format!("{} {now}", self.instance))
            .arg(self.cfg.presence_ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        let foreign = previous.as_deref().is_some_and(|p| p.split(' ').next() != Some(self.instance.as_str()));
        if foreign != self.duplicate.swap(foreign, Ordering::Relaxed) {
            if foreign {
                tracing::error!(
                    node = %me,
                    "another live process beats for this node id: give each process its own JBK_NODE_ID (readyz degraded)"
                );
            } else {
                tracing::info!(node = %me, "no other process beats for this node id any more");
            }
        }
        if let Some(count) = self.local_sessions.get() {
            let _: () = conn.hset(self.keys.node_sessions(), &me, count()).await?;
        }
        let added: i64 = conn.zadd(self.keys.nodes(), &me, now).await?;
        if added == 1 && self.sub_ok.load(Ordering::Relaxed) {
            // This node was gone from the directory (Redis restarted, or others took it for
            // dead during a stall): register again, and the sessions may have missed events.
            tracing::warn!("this node was missing from the directory; registering again");
            self.register_all().await?;
            if let Some(s) = self.sink() {
                s.deliver(&Event::Resync);
            }
        }
        let deadline = now - self.cfg.presence_ttl.as_millis() as i64;
        let dead: Vec<String> = conn.zrangebyscore(self.keys.nodes(), "-inf", deadline).await?;
        for node in dead.into_iter().filter(|n| *n != me) {
            let won: i64 = conn.zrem(self.keys.nodes(), &node).await?;
            if won == 1 {
                let _: () = conn.hdel(self.keys.node_sessions(), &node).await?;
                tracing::info!(%node, "node silent past the presence ttl; its users go offline");
                self.stats.reaped_nodes.inc();
                self.clear_node(&node).await?;
            }
        }
        Ok(())
    }

    /// Takes `node` out of the `on:` sets of its users; publishes those left with no node
    /// offline (and stores their last_seen).
    async fn clear_node(self: &Arc<Self>, node: &str) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let key = self.keys.node_users(node);
        let users: Vec<i64> = conn.smembers(&key).await?;
        let now = crate::now_ms();
        for raw in users {
            let Ok(user) = UserId::new(raw) else { continue };
            if node == self.cfg.node_id && self.local_users.contains(&user) {
                continue;
            }
            let gone: i64 = self.offline_script.key(self.keys.on(user)).arg(node).invoke_async(&mut conn).await?;
            let _: () = conn.srem(&key, raw).await?;
            if gone == 1 {
                if let Err(e) = self.store.set_last_seen(user, now).await {
                    tracing::warn!(error = %e, %user, "last_seen not stored");
                }
                self.publish(Event::Presence { user, online: false, last_seen: Some(now) });
            }
        }
        Ok(())
    }
}

/// The members an event is for, if it is routed by member.
fn audience(e: &Event) -> std::borrow::Cow<'_, [UserId]> {
    use std::borrow::Cow;
    match e {
        Event::Message { members, .. }
        | Event::Read { members, .. }
        | Event::Typing { members, .. }
        | Event::MessageDeleted { members, .. } => Cow::Borrowed(members),
        Event::OrderAlert { alert } => Cow::Borrowed(std::slice::from_ref(&alert.merchant)),
        Event::Banned { user } | Event::Erased { user } | Event::LoggedOut { user, .. } => Cow::Borrowed(std::slice::from_ref(user)),
        Event::PresenceHidden { watcher, .. } => Cow::Borrowed(std::slice::from_ref(watcher)),
        Event::MatchProposal { proposal } => Cow::Owned(vec![proposal.waited.user, proposal.found.user]),
        Event::MatchExpired { request } => Cow::Borrowed(std::slice::from_ref(&request.user)),
        Event::MerchantReviewed { notice } => Cow::Borrowed(std::slice::from_ref(&notice.user)),
        Event::ClaimUpdate { notice } => Cow::Owned(notice.claims.iter().map(|(u, _)| *u).collect()),
        _ => Cow::Borrowed(&[]),
    }
}

/// The bus needs `Arc<Self>` to schedule gap fills; `Bus` is implemented on the `Arc`'s target
/// through this handle.
impl Bus for RedisClusterHandle {
    fn publish(&self, event: Event) {
        self.0.publish(event)
    }
    fn watch(&self, user: UserId) -> Ready {
        self.0.watch(user)
    }
    fn unwatch(&self, user: UserId) {
        self.0.unwatch(user)
    }
}

/// `Arc<RedisCluster>` as the `Bus` and `PresenceDirectory` ports.
#[derive(Clone)]
pub struct RedisClusterHandle(pub Arc<RedisCluster>);

#[async_trait]
impl PresenceDirectory for RedisClusterHandle {
    async fn node_online(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        self.0.node_online(user).await
    }
    async fn node_offline(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        self.0.node_offline(user).await
    }
    async fn online(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        self.0.online(user).await
    }
}

#[async_trait]
impl jiebanke_chat_core::dashboard::OnlineSessions for RedisClusterHandle {
    /// The sessions of every live node (those that beat within the presence TTL), as each
    /// published with its last heartbeat.
    async fn online_sessions(&self) -> jiebanke_chat_core::error::Result<u64> {
        let c = &self.0;
        let r = async {
            let mut conn = c.conn().await?;
            let since = crate::now_ms() - c.cfg.presence_ttl.as_millis() as i64;
            let live: Vec<String> = conn.zrangebyscore(c.keys.nodes(), since, "+inf").await?;
            if live.is_empty() {
                return redis::RedisResult::Ok(0u64);
            }
            let counts: Vec<Option<u64>> = redis::cmd("HMGET").arg(c.keys.node_sessions()).arg(&live).query_async(&mut conn).await?;
            Ok(counts.into_iter().flatten().sum())
        };
        tokio::time::timeout(REDIS_TIMEOUT, r).await.map_err(unavailable)?.map_err(unavailable)
    }
}

impl RedisCluster {
    /// Where this node's session count comes from (the gateway's hub), for the heartbeat.
    pub fn count_sessions_with(&self, count: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.local_sessions.set(Box::new(count));
    }

    pub fn handle(self: &Arc<Self>) -> RedisClusterHandle {
        RedisClusterHandle(self.clone())
    }

    fn publish(self: &Arc<Self>, event: Event) {
        // Here first, at once and in publish order; then to the other nodes.
        match &event {
            Event::Message { members, origin, message } => self.deliver_message(members, message, origin),
            Event::MembersChanged { .. } => {}
            _ => {
                if let Some(s) = self.sink() {
                    s.deliver(&event)
                }
            }
        }
        if matches!(event, Event::Resync) {
            return;
        }
        if self.outq.try_send(event).is_err() {
            let n = self.stats.publish_dropped.inc();
            if (n + 1).is_power_of_two() {
                tracing::warn!(dropped = n + 1, "redis publish queue full; events dropped, members will sync");
            }
        }
    }

    fn watch(&self, user: UserId) -> Ready {
        let first = {
            let mut w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            let n = w.entry(user).or_insert(0);
            *n += 1;
            *n == 1
        };
        if !first {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        let _ = self.control.send(Control::Subscribe(self.keys.presence_channel(user), tx));
        Box::pin(async move {
            match tokio::time::timeout(REDIS_TIMEOUT, rx).await {
                Ok(Ok(true)) => Ok(()),
                _ => Err(unavailable("presence subscription not confirmed")),
            }
        })
    }

    fn unwatch(&self, user: UserId) {
        let last = {
            let mut w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            match w.get_mut(&user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    w.remove(&user);
                    true
                }
                None => false,
            }
        };
        if last {
            let _ = self.control.send(Control::Unsubscribe(self.keys.presence_channel(user)));
        }
    }

    async fn node_online(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        self.local_users.insert(user);
        let me = self.cfg.node_id.as_str();
        let r = async {
            let mut conn = self.conn().await?;
            let came: i64 = self.online_script.key(self.keys.on(user)).arg(me).invoke_async(&mut conn).await?;
            let _: () = conn.sadd(self.keys.node_users(me), user.get()).await?;
            redis::RedisResult::Ok(came == 1)
        };
        tokio::time::timeout(REDIS_TIMEOUT, r).await.map_err(unavailable)?.map_err(unavailable)
    }

    async fn node_offline(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        self.local_users.remove(&user);
        self.seq.forget_user(user);
        let me = self.cfg.node_id.as_str();
        let r = async {
            let mut conn = self.conn().await?;
            let gone: i64 = self.offline_script.key(self.keys.on(user)).arg(me).invoke_async(&mut conn).await?;
            let _: () = conn.srem(self.keys.node_users(me), user.get()).await?;
            redis::RedisResult::Ok(gone == 1)
        };
        tokio::time::timeout(REDIS_TIMEOUT, r).await.map_err(unavailable)?.map_err(unavailable)
    }

    async fn online(&self, user: UserId) -> jiebanke_chat_core::error::Result<bool> {
        if self.local_users.contains(&user) {
            return Ok(true);
        }
        let mut conn = self.conn().await.map_err(unavailable)?;
        let n: i64 = tokio::time::timeout(REDIS_TIMEOUT, conn.scard(self.keys.on(user)))
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        Ok(n > 0)
    }
}
