//! `Application::build` binds the listener (port 0 in tests), connects storage, starts the
//! message writer and assembles the routers; `run` serves until the shutdown token fires, then
//! drains: stop accepting, close sessions with 1012 after answering what they accepted, let the
//! writer finish, close the database.

use crate::config::{Config, Environment, Role};
use anyhow::Context;
use jiebanke_chat_core::bus::LocalBus;
use jiebanke_chat_core::chat::ChatService;
use jiebanke_chat_core::commit::Committer;
use jiebanke_chat_core::events::{local_relay, run_relay, AlertService, EventHandler, RelayStats};
use jiebanke_chat_core::matching::{run_expiry, MatchPool, MatchService, MemoryMatchPool};
use jiebanke_chat_core::moderation::{parse_word_list, ModerationService, WordFilter};
use jiebanke_chat_core::ports::{Bus, OutboxStore, RelayFn, Store};
use jiebanke_cluster::{AmqpLink, RedisCluster};
use jiebanke_gateway::hub::Hub;
use jiebanke_gateway::metrics::Metrics;
use jiebanke_gateway::Gateway;
use jiebanke_rest::auth::{DevLogin, JwtKeys, LoginProvider, Secret, WeChatLogin};
use jiebanke_rest::{Check, RestState};
use jiebanke_storage::SqlStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Application {
    listener: TcpListener,
    /// `/metrics`' own listener (`JBK_METRICS_LISTEN`), if not `off`.
    metrics: Option<TcpListener>,
    http: crate::listener::ListenConfig,
    listener_stats: crate::listener::ListenerStats,
    router: axum::Router,
    gateway: Arc<Gateway>,
    store: SqlStore,
    writer: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    cluster: Option<Arc<RedisCluster>>,
    amqp: Option<Arc<AmqpLink>>,
    /// The outbox relay and the outbox gauges' refresher: aborted at exit (what they had not
    /// relayed stays in the outbox).
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the configured database (the data dir's SQLite file by default), migrated.
async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    // The data dir is the process's alone (one made by an older version was 0755).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making data dir {} private", config.data_dir.display()))?;
    }
    let url = match &config.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite:{}", config.data_dir.join("jiebanke.db").display()),
    };
    SqlStore::connect_with(&url, config.store).await.context("connecting to the database")
}

/// The data key: `JBK_DATA_KEY`, or in development the data dir's own.
fn data_key(config: &Config) -> anyhow::Result<jiebanke_chat_core::users::DataKey> {
    match &config.data_key {
        Some(k) => jiebanke_chat_core::users::DataKey::from_base64(k.expose()).map_err(|e| anyhow::anyhow!("JBK_DATA_KEY: {e}")),
        None if config.env == Environment::Production => anyhow::bail!("JBK_DATA_KEY is required in production"),
        None => dev_data_key(&config.data_dir),
    }
}

/// `jiebanke staff create`: makes a staff account on the configured database, from the command
/// line (the audit log records it as made by itself, from `cli`).
pub async fn create_staff(config: Config, username: &str, role: &str, password: &str) -> anyhow::Result<jiebanke_chat_core::staff::Enrolment> {
    let store = Arc::new(open_store(&config).await?);
    let key = Arc::new(data_key(&config)?);
    let filter = Arc::new(WordFilter::new(Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?);
    let moderation = Arc::new(ModerationService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(LocalBus::new()),
        filter,
        Arc::new(tokio::sync::Notify::new()),
        Vec::new(),
        store.clone(),
    ));
    let staff = jiebanke_chat_core::staff::StaffService::new(store, moderation, key);
    let input = jiebanke_chat_core::staff::NewStaffInput { username: username.to_owned(), password: password.to_owned(), role: role.to_owned() };
    staff.create(None, input).await.map_err(|e| match e {
        jiebanke_chat_core::CoreError::Fields(f) => {
            anyhow::anyhow!("{}", f.iter().map(|p| format!("{}: {}", p.field, p.problem)).collect::<Vec<_>>().join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    })
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = open_store(&config).await?;
        let jwt_secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None if config.env == Environment::Production => anyhow::bail!("JBK_JWT_SECRET is required in production"),
            None => dev_secret(&config.data_dir)?,
        };

        let shutdown = CancellationToken::new();
        let store_arc = Arc::new(store.clone());
        let local_bus = Arc::new(LocalBus::new());
        let cluster = match &config.cluster {
            Some(c) => Some(RedisCluster::new(c.clone(), store_arc.clone() as Arc<dyn Store>).context("configuring redis")?),
            None => None,
        };
        let bus: Arc<dyn Bus> = match &cluster {
            Some(rc) => Arc::new(rc.handle()),
            None => local_bus.clone(),
        };
        let (committer, writer) = Committer::spawn(store_arc.clone(), bus.clone(), config.commit);
        let mut chat = ChatService::new(store_arc.clone(), committer, bus.clone()).with_max_group(config.max_group_members);
        if let Some(rc) = &cluster {
            chat = chat.with_directory(Arc::new(rc.handle()));
        }
        let chat = Arc::new(chat);

        // Durable events: the outbox, its relay, and what consumes them.
        let wake = Arc::new(tokio::sync::Notify::new());
        let words = match &config.banned_words_file {
            Some(path) => read_words(path)?,
            None => Vec::new(),
        };
        let filter = Arc::new(WordFilter::new(words).map_err(|e| anyhow::anyhow!("JBK_BANNED_WORDS_FILE: {e}"))?);
        // The shop's orders and their payment provider: WeChat Pay when configured, else (never
        // in production) the local provider, whose keys live in the data dir.
        let data_key = Arc::new(data_key(&config)?);
        let local_pay = match config.env {
            Environment::Production => None,
            _ => Some(Arc::new(jiebanke_payments::local::LocalProvider::load_or_create(&config.data_dir).context("the local payment provider's keys")?)),
        };
        let provider: Arc<dyn jiebanke_chat_core::commerce::pay::PaymentProvider> = match (&config.wechat_pay, &local_pay) {
            (Some(w), _) => {
                let mut c = jiebanke_payments::wechat_pay::WechatPayConfig::from_files(&w.settings).context("WeChat Pay's keys")?;
                c.api_base = w.api_base.clone();
                Arc::new(jiebanke_payments::wechat_pay::WechatPay::new(c).context("WeChat Pay")?)
            }
            (None, Some(local)) => local.clone(),
            (None, None) => anyhow::bail!("production needs a payment provider: set the WeChat Pay settings (JBK_WECHATPAY_*)"),
        };
        // The local provider's confirm route exists only while it is the provider.
        let local_pay = if config.wechat_pay.is_some() { None } else { local_pay };
        let alerts = Arc::new(AlertService::new(store_arc.clone(), store_arc.clone(), store_arc.clone(), wake.clone()));
        let moderation = Arc::new(ModerationService::new(
            store_arc.clone(),
            store_arc.clone(),
            store_arc.clone(),
            bus.clone(),
            filter.clone(),
            wake.clone(),
            config.admins.clone(),
            store_arc.clone(),
        ));
        let orders = Arc::new(jiebanke_chat_core::commerce::orders::OrderService::new(
            store_arc.clone(),
            moderation.clone(),
            data_key.clone(),
            config.zone.clone(),
            provider,
            config.orders,
        ));
        let handler = Arc::new(EventHandler::new(store_arc.clone(), bus.clone()).with_orders(orders.clone()));
        let amqp = config.amqp.clone().map(AmqpLink::new);
        // Companion matching: the waiting requests are shared through Redis in cluster mode.
        let pool: Arc<dyn MatchPool> = match &cluster {
            Some(rc) => Arc::new(rc.match_pool(config.matching.clone())),
            None => Arc::new(MemoryMatchPool::new(config.matching.clone())),
        };
        let matching = Arc::new(MatchService::new(pool, store_arc.clone(), bus.clone(), config.matching.clone()));

        let metrics = Arc::new(Metrics::new());
        metrics.with_registry(|reg| reg.register_collector(Box::new(PaymentMetrics(orders.clone()))));
        let listener_stats = crate::listener::ListenerStats::default();
        metrics.with_registry(|reg| listener_stats.register(reg));
        let hub = Arc::new(Hub::new(metrics.clone()));
        if let Some(rc) = &cluster {
            rc.claim_node_id().await?;
            let counted = Arc::downgrade(&hub);
            rc.count_sessions_with(move || counted.upgrade().map(|h| h.session_count() as u64).unwrap_or(0));
        }
        match &cluster {
            Some(rc) => {
                let weak = Arc::downgrade(&chat);
                rc.start(
                    hub.clone(),
                    Box::new(move |conv| {
                        if let Some(chat) = weak.upgrade() {
                            chat.members_changed_elsewhere(conv);
                        }
                    }),
                )
                .await;
                tracing::info!(node = rc.node_id(), healthy = rc.healthy(), "cluster mode: joined through redis");
                metrics.with_registry(|reg| rc.stats.register(reg));
            }
            None => {
                local_bus.attach(hub.clone());
            }
        }
        // The sink is attached: events handled from now on reach the sessions.
        let relay: Arc<RelayFn> = match &amqp {
            Some(link) => {
                link.start(handler.clone()).await;
                tracing::info!(healthy = link.healthy(), "durable events through rabbitmq");
                metrics.with_registry(|reg| link.stats.register(reg));
                link.relay_fn()
            }
            None => local_relay(handler.clone()),
        };
        let relay_stats = Arc::new(RelayStats::default());
        let mut background = vec![tokio::spawn(run_relay(store_arc.clone(), relay, wake.clone(), config.outbox_poll, relay_stats))];
        background.push(tokio::spawn(outbox_gauges(store_arc.clone(), metrics.clone())));
        background.push(tokio::spawn(run_expiry(matching.clone(), Duration::from_secs(1), shutdown.clone().cancelled_owned())));
        #[cfg(unix)]
        if let Some(path) = config.banned_words_file.clone() {
            let filter = filter.clone();
            background.push(tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
                while hup.recv().await.is_some() {
                    match read_words(&path).and_then(|w| filter.replace(w).map_err(|e| anyhow::anyhow!("{e}"))) {
                        Ok(n) => tracing::info!(words = n, "banned-word list reloaded (SIGHUP)"),
                        Err(e) => tracing::warn!(error = %e, "banned-word list not reloaded; the old one stays"),
                    }
                }
            }));
        }

        let jwt = Arc::new(JwtKeys::new(&jwt_secret, config.token_ttl));
        let sessions = Arc::new(jiebanke_chat_core::sessions::SessionService::new(store_arc.clone(), bus.clone()));
        let gateway = Gateway::new(
            chat.clone(),
            alerts.clone(),
            moderation.clone(),
            matching,
            hub,
            jwt.clone(),
            sessions.clone(),
            config.gateway.clone(),
            metrics,
            shutdown.clone(),
        );

        let mut logins: Vec<Arc<dyn LoginProvider>> = Vec::new();
        if let Some(w) = &config.wechat {
            logins.push(Arc::new(WeChatLogin::new(w.app_id.clone(), w.secret.clone(), w.api_base.clone())));
        }
        if config.dev_login {
            if config.env == Environment::Production {
                anyhow::bail!("the dev login provider is refused in production");
            }
            logins.push(Arc::new(DevLogin));
        }
        let merchants = Arc::new(jiebanke_chat_core::merchants::MerchantsService::new(
            store_arc.clone(),
            store_arc.clone(),
            store_arc.clone(),
            moderation.clone(),
            data_key.clone(),
            wake.clone(),
        ));
        // Applications stored before the licence index existed get theirs (idempotent; a no-op
        // once done, and safe with several nodes starting at once).
        match merchants.fill_license_indexes().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(applications = n, "licence indexes filled"),
            Err(e) => anyhow::bail!("filling the licence indexes of merchant applications: {e}"),
        }
        let staff = Arc::new(jiebanke_chat_core::staff::StaffService::new(store_arc.clone(), moderation.clone(), data_key.clone()));
        let activity = Arc::new(jiebanke_chat_core::dashboard::ActivityTracker::new(store_arc.clone(), config.zone.clone()));
        let _ = gateway.activity.set(activity.clone());
        let online: Arc<dyn jiebanke_chat_core::dashboard::OnlineSessions> = match &cluster {
            Some(rc) => Arc::new(rc.handle()),
            None => Arc::new(jiebanke_gateway::hub::LocalSessions(gateway.hub.clone())),
        };
        let dashboard = Arc::new(jiebanke_chat_core::dashboard::DashboardService::new(store_arc.clone(), online, moderation.clone(), config.zone.clone()));
        let blobs: Arc<dyn jiebanke_chat_core::uploads::BlobStore> = Arc::new(match &config.s3 {
            Some(s3) => jiebanke_storage::ObjectBlobs::s3(s3).context("configuring object storage")?,
            None => jiebanke_storage::ObjectBlobs::local(&config.data_dir).context("the uploads directory")?,
        });
        let uploads = Arc::new(jiebanke_chat_core::uploads::UploadService::new(blobs.clone(), store_arc.clone(), config.uploads).with_public_base(config.uploads_public_base.clone()));
        // Every photo and avatar field written is checked to name its writer's upload.
        let photos: Arc<dyn jiebanke_chat_core::uploads::PhotoCheck> = uploads.clone();
        let users = Arc::new(jiebanke_chat_core::users::UsersService::new(
            store_arc.clone(),
            store_arc.clone(),
            chat.clone(),
            moderation.clone(),
            data_key,
            config.privacy_version.clone(),
            config.zone.clone(),
        ).with_matching(gateway.matching.clone()).with_photos(photos.clone()));
        let ready_blobs = config.s3.is_some().then(|| blobs.clone());
        let ready_store = store.clone();
        let ready_cluster = cluster.clone();
        let ready_amqp = amqp.clone();
        let words_file = config.banned_words_file.clone();
        let reload_filter = filter.clone();
        let catalog = Arc::new(jiebanke_chat_core::commerce::catalog::CatalogService::new(store_arc.clone(), merchants.clone(), moderation.clone()).with_photos(photos.clone()));
        // Unpaid orders are cancelled by whichever node holds the job's lease.
        let holder = match &cluster {
            Some(rc) => rc.node_id().to_owned(),
            // Unique per process and per application (tests run several in one process).
            None => format!("local-{}-{:08x}", std::process::id(), rand::random::<u32>()),
        };
        let claims = Arc::new(jiebanke_chat_core::commerce::claims::ClaimService::new(store_arc.clone(), merchants.clone(), moderation.clone(), config.orders).with_photos(photos.clone()));
        background.push(tokio::spawn(jiebanke_chat_core::commerce::orders::run_expiry(orders.clone(), claims.clone(), holder, config.order_expiry_every)));
        let rest = RestState {
            catalog,
            orders,
            claims,
            reviews: Arc::new(jiebanke_chat_core::commerce::reviews::ReviewService::new(store_arc.clone(), moderation.clone()).with_photos(photos.clone())),
            local_pay,
            chat,
            alerts,
            moderation,
            users,
            uploads,
            merchants,
            staff,
            activity,
            dashboard,
            qr: Arc::new(jiebanke_chat_core::logins::QrLoginService::new(store_arc.clone(), config.qr_ttl)),
            reload_words: Arc::new(move || match &words_file {
                Some(path) => {
                    let words = read_words(path).map_err(|e| e.to_string())?;
                    reload_filter.replace(words).map_err(|e| e.to_string())
                }
                None => Err("no banned-word file is configured (JBK_BANNED_WORDS_FILE)".into()),
            }),
            jwt,
            sessions,
            logins: Arc::new(logins),
            readiness: Arc::new(move || {
                let s = ready_store.clone();
                let rc = ready_cluster.clone();
                let mq = ready_amqp.clone();
                let blobs = ready_blobs.clone();
                Box::pin(async move {
                    let mut checks = vec![Check { name: "database", ok: s.ping().await, critical: true }];
                    if let Some(rc) = rc {
                        checks.push(Check { name: "redis", ok: rc.healthy(), critical: false });
                        checks.push(Check { name: "node_id", ok: !rc.duplicate_instance(), critical: false });
                    }
                    if let Some(mq) = mq {
                        checks.push(Check { name: "rabbitmq", ok: mq.healthy(), critical: false });
                    }
                    if let Some(b) = blobs {
                        checks.push(Check { name: "object_storage", ok: b.ping().await, critical: false });
                    }
                    checks
                })
            }),
            draining: shutdown.clone(),
            ip_limiter: Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(config.http_rate.0).allow_burst(config.http_rate.1),
            )),
            write_limiter: Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(config.write_rate.0).allow_burst(config.write_rate.1),
            )),
            lead_limiter: Arc::new(governor::RateLimiter::keyed(
                governor::Quota::with_period(Duration::from_secs(3600) / config.leads_per_hour.get())
                    .expect("a positive period")
                    .allow_burst(config.leads_per_hour),
            )),
            login_limiter: Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(config.login_rate).allow_burst(config.login_rate.saturating_mul(std::num::NonZeroU32::new(5).expect("nonzero"))),
            )),
        };
        // The pages (web/) go with the REST half: they are its clients. Product photos may be any
        // https:// URL (rules.rs), so images may come from any https origin.
        let pages = || jiebanke_web::router(jiebanke_web::WebConfig { image_origins: vec!["https:".into()] });
        let router = match config.role {
            Role::Full => jiebanke_rest::router(rest).merge(jiebanke_gateway::router(gateway.clone())).merge(pages()),
            Role::Gateway => jiebanke_rest::health_router(rest).merge(jiebanke_gateway::router(gateway.clone())),
            Role::Rest => jiebanke_rest::router(rest).merge(pages()),
        };
        let router = jiebanke_rest::with_fallbacks(router);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics = match config.metrics_listen {
            crate::config::MetricsListen::Off => None,
            crate::config::MetricsListen::At(addr) => {
                Some(TcpListener::bind(addr).await.with_context(|| format!("binding the metrics listener {addr} (JBK_METRICS_LISTEN)"))?)
            }
        };
        Ok(Application { listener, metrics, http: config.http.clone(), listener_stats, router, gateway, store, writer, shutdown, cluster, amqp, background })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Where `/metrics` is served, unless `JBK_METRICS_LISTEN=off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The whole router (REST and gateway), for driving the server without a socket (the
    /// fuzzing harness). A request needs `ConnectInfo<SocketAddr>` in its extensions, which
    /// the listener puts there.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Fire it to start the drain (what SIGTERM does).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run(self) -> anyhow::Result<()> {
        let Application { listener, metrics, http, listener_stats, router, gateway, store, writer, shutdown, cluster, amqp, background } = self;
        // `/metrics` on its own listener (an operator's address, never the app's port): plain
        // axum, ended with the shutdown.
        let metrics_task = match metrics {
            Some(l) => {
                tracing::info!(addr = %l.local_addr()?, "metrics serving at /metrics");
                let app = jiebanke_rest::with_fallbacks(jiebanke_gateway::metrics_router(gateway.clone()));
                let stop = shutdown.clone();
                Some(tokio::spawn(async move {
                    let serve = axum::serve(l, app.into_make_service()).with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(e) = serve.await {
                        tracing::warn!(error = %e, "the metrics listener stopped");
                    }
                }))
            }
            None => None,
        };
        tracing::info!(
            addr = %listener.local_addr()?,
            max_connections = http.max_connections,
            reserved = http.reserved_connections,
            per_ip = http.max_connections_per_ip,
            "jiebanke serving"
        );
        // Frames are small and each must leave at once: the listener sets TCP_NODELAY on every
        // socket (without it a frame written while the previous one is unacknowledged waits for
        // the client's delayed ACK, ~40 ms).
        let grace = gateway.config.drain_timeout + Duration::from_secs(3);
        let serve = crate::listener::Listener { listener, router, config: http, stats: listener_stats, shutdown: shutdown.clone() }
            .run(grace);
        let drain = {
            let gateway = gateway.clone();
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                tracing::info!(sessions = gateway.hub.session_count(), "draining");
                gateway.drain().await;
            }
        };
        let ((), ()) = tokio::join!(serve, drain);
        for task in background.iter().chain(metrics_task.as_ref()) {
            task.abort();
        }
        if let Some(link) = &amqp {
            link.stop();
        }
        if let Some(rc) = &cluster {
            rc.leave().await;
        }
        drop(gateway);
        // The writer ends once the last handle to it is gone; it stores what was queued first.
        if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
            tracing::warn!("message writer still busy at exit");
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Reads a banned-word list file (see `parse_word_list`).
fn read_words(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the banned-word list {}", path.display()))?;
    Ok(parse_word_list(&text))
}

/// `jbk_payment_callbacks_total{outcome}`: payment callbacks by what became of them (`paid`,
/// `duplicate`, `late_payment`, `not_paid`, refusals by why) and refunds asked of the provider,
/// read from the order service's counters at each scrape.
struct PaymentMetrics(Arc<jiebanke_chat_core::commerce::orders::OrderService>);

impl std::fmt::Debug for PaymentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentMetrics")
    }
}

impl prometheus_client::collector::Collector for PaymentMetrics {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let mut metric = encoder.encode_descriptor(
            "payment_callbacks",
            "Payment callbacks by outcome (paid, duplicate, late_payment, not_paid, or why refused), and refunds asked of the provider",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (outcome, n) in self.0.stats.outcomes() {
            let labels = [("outcome", outcome)];
            prometheus_client::metrics::counter::ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Keeps `jbk_outbox_pending` and `jbk_outbox_dead` current.
async fn outbox_gauges(ops: Arc<dyn OutboxStore>, metrics: Arc<Metrics>) {
    let pending = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    let dead = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    metrics.with_registry(|reg| {
        reg.register("outbox_pending", "Durable events waiting in the outbox to be relayed", pending.clone());
        reg.register("outbox_dead", "Durable events that could not be handled (kept in the outbox)", dead.clone());
    });
    loop {
        if let Ok(c) = ops.outbox_counts().await {
            pending.set(c.pending as i64);
            dead.set(c.dead as i64);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads a development secret kept in the data dir, or makes it there on first start.
///
/// Several processes may start on one fresh data dir at once (a cluster test, a compose `up`):
/// the file is written whole to a private temporary name (mode 0600) and then hard-linked to its
/// name, which fails if another process got there first. A reader therefore never sees a partial
/// file, and every process ends up with the one value that won.
fn dev_file_secret(path: &std::path::Path, make: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s);
    }
    let text = make()?;
    let tmp = path.with_extension(format!("tmp-{}-{:016x}", std::process::id(), rand::random::<u64>()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(text),
        // Another process on the same data dir made it first: use theirs (it is whole).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// The development data key: read from the data dir, or made there (mode 0600) on first start.
fn dev_data_key(dir: &std::path::Path) -> anyhow::Result<jiebanke_chat_core::users::DataKey> {
    use jiebanke_chat_core::users::DataKey;
    let path = dir.join("data-key");
    let text = dev_file_secret(&path, || DataKey::generate_base64().map_err(|e| anyhow::anyhow!("{e}")))?;
    DataKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// In development the token secret is generated once and kept in the data dir, so that tokens
/// survive a restart.
fn dev_secret(dir: &std::path::Path) -> anyhow::Result<Secret> {
    let path = dir.join("jwt-secret");
    let s = dev_file_secret(&path, || {
        let bytes: [u8; 32] = rand::random();
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    })?;
    if s.trim().len() < 32 {
        anyhow::bail!("{}: the development token secret must be at least 32 characters", path.display());
    }
    Ok(Secret::new(s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes racing to make a development secret all end up with the same whole value.
    /// (Before, a reader could see the file between its creation and its write and fail with
    /// "the data key must be 32 bytes".)
    #[test]
    fn racing_makers_of_a_dev_secret_agree_on_one_whole_value() {
        for round in 0..20 {
            let dir = std::env::temp_dir().join(format!("jbk-dev-secret-{}-{round}-{:016x}", std::process::id(), rand::random::<u64>()));
            std::fs::create_dir(&dir).unwrap();
            let path = dir.join("data-key");
            let values: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let path = path.clone();
                        s.spawn(move || {
                            dev_file_secret(&path, || Ok(format!("value-of-maker-{i}-in-round-{round}-padded-to-be-long"))).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(values.iter().all(|v| v == &values[0]), "round {round}: {values:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), values[0]);
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
