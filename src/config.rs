//! Configuration: typed, layered (defaults, then `JBK_*` environment variables, then flags).
//! Secrets are wrapped so they never print.

use clap::{Args, Parser, Subcommand, ValueEnum};
use jiebanke_gateway::GatewayConfig;
use jiebanke_rest::auth::Secret;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "jiebanke", version, about = "Jiebanke (结伴客) realtime backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the WebSocket gateway and the REST service in one process on one port.
    Serve(ServeArgs),
    /// Runs the WebSocket gateway alone (cluster mode: needs JBK_REDIS_URL).
    Gateway(ServeArgs),
    /// Runs the REST service alone (cluster mode: needs JBK_REDIS_URL).
    Rest(ServeArgs),
    /// Manages staff accounts (the console logins) on the configured database.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Fills the configured store with a small demo world (travellers, chats, a flower shop, a
    /// farm, orders) and prints the login codes; then `serve` shows it. Development only;
    /// re-running it adds nothing.
    Demo(ServeArgs),
}

/// A command that does not serve: it does its work on the configured store and exits.
#[derive(Debug)]
pub enum Management {
    Staff(StaffCommand),
    Demo(ServeArgs),
}

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Makes a staff account (the first admin, for one) and prints its TOTP secret once. The
    /// password is read from JBK_STAFF_PASSWORD, or else from the first line of stdin.
    Create {
        /// 3-32 of a-z, 0-9, '.', '_', '-', starting with a letter.
        #[arg(long)]
        username: String,
        /// `admin` or `operator`.
        #[arg(long, default_value = "admin")]
        role: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

/// Which halves of the backend this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Full,
    Gateway,
    Rest,
}

impl Command {
    /// The role and arguments of a serving command; `Err` for a management command.
    pub fn into_parts(self) -> Result<(Role, ServeArgs), Management> {
        match self {
            Command::Serve(a) => Ok((Role::Full, a)),
            Command::Gateway(a) => Ok((Role::Gateway, a)),
            Command::Rest(a) => Ok((Role::Rest, a)),
            Command::Staff(c) => Err(Management::Staff(c)),
            Command::Demo(a) => Err(Management::Demo(a)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSyncArg {
    Full,
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "JBK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where a CDN in front of the object storage serves uploads (`https://…`): photo fields may
    /// name uploads under it as well as `/uploads/…`.
    #[arg(long, env = "JBK_UPLOADS_PUBLIC_BASE")]
    pub uploads_public_base: Option<String>,
    /// Where `/metrics` is served, apart from the app's port: an address, `0` (a free port on
    /// 127.0.0.1, logged) or `off`.
    #[arg(long, env = "JBK_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// Where the embedded database and generated secrets live.
    #[arg(long, env = "JBK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `mysql://user:pass@host:port/db`; default: SQLite in the data dir.
    #[arg(long, env = "JBK_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, env = "JBK_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    /// HS256 secret for tokens; required in production, generated into the data dir otherwise.
    #[arg(long, env = "JBK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// 32 bytes, base64: seals personal data (phone numbers) and keys their blind indexes.
    /// Required in production, generated into the data dir otherwise. Losing it loses the data.
    #[arg(long, env = "JBK_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<String>,
    /// S3-compatible object storage for uploads (Tencent COS, AWS S3, MinIO...): the bucket. Unset:
    /// uploads are files under `<data dir>/uploads` (one node only: set this in cluster mode).
    #[arg(long, env = "JBK_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// The object storage endpoint, e.g. `https://cos.ap-shanghai.myqcloud.com`.
    #[arg(long, env = "JBK_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "JBK_S3_REGION", default_value = "ap-shanghai")]
    pub s3_region: String,
    /// The most pixels (width × height, read from the header) an uploaded photo may have; each
    /// side is also at most 8192. Larger ones are refused with 422 before anything is stored.
    #[arg(long, env = "JBK_UPLOAD_MAX_PIXELS", default_value_t = jiebanke_chat_core::uploads::DEFAULT_MAX_PIXELS)]
    pub upload_max_pixels: u64,
    #[arg(long, env = "JBK_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "JBK_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// The business timezone (IANA name): what "today" and "this year" mean (birth years now,
    /// delivery days later). The tz database is compiled in.
    #[arg(long, env = "JBK_TIMEZONE", default_value = "Asia/Shanghai")]
    pub timezone: String,
    /// The privacy policy version users must accept (the login answer says if they have).
    #[arg(long, env = "JBK_PRIVACY_VERSION", default_value = "2026-11-01")]
    pub privacy_version: String,
    #[arg(long, env = "JBK_TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub token_ttl_secs: u64,
    /// Enables the dev login provider (the code is the identity). Default: on in development,
    /// and refused in production.
    #[arg(long, env = "JBK_DEV_LOGIN")]
    pub dev_login: Option<bool>,
    #[arg(long, env = "JBK_WECHAT_APPID")]
    pub wechat_appid: Option<String>,
    #[arg(long, env = "JBK_WECHAT_SECRET", hide_env_values = true)]
    pub wechat_secret: Option<String>,
    #[arg(long, env = "JBK_WECHAT_API_BASE", default_value = "https://api.weixin.qq.com")]
    pub wechat_api_base: String,
    /// WeChat Pay v3: the merchant id. With the settings below it makes WeChat Pay the payment
    /// provider (else, outside production, the local one).
    #[arg(long, env = "JBK_WECHATPAY_MCHID")]
    pub wechatpay_mchid: Option<String>,
    /// The app id payments are for (default `JBK_WECHAT_APPID`).
    #[arg(long, env = "JBK_WECHATPAY_APPID")]
    pub wechatpay_appid: Option<String>,
    /// The merchant API certificate's serial number.
    #[arg(long, env = "JBK_WECHATPAY_SERIAL")]
    pub wechatpay_serial: Option<String>,
    /// The merchant API private key file (`apiclient_key.pem`).
    #[arg(long, env = "JBK_WECHATPAY_KEY_FILE")]
    pub wechatpay_key_file: Option<PathBuf>,
    /// The APIv3 key (32 characters).
    #[arg(long, env = "JBK_WECHATPAY_APIV3_KEY", hide_env_values = true)]
    pub wechatpay_apiv3_key: Option<String>,
    /// The platform's keys: `SERIAL=path` pairs, comma separated (platform certificates by their
    /// serial, or the public key by its `PUB_KEY_ID_…`).
    #[arg(long, env = "JBK_WECHATPAY_PLATFORM_KEYS")]
    pub wechatpay_platform_keys: Option<String>,
    /// Where WeChat Pay sends callbacks: `https://<host>/api/v1/payments/wechat/notify`.
    #[arg(long, env = "JBK_WECHATPAY_NOTIFY_URL")]
    pub wechatpay_notify_url: Option<String>,
    #[arg(long, env = "JBK_WECHATPAY_API_BASE", default_value = "https://api.mch.weixin.qq.com")]
    pub wechatpay_api_base: String,
    #[arg(long, env = "JBK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long, env = "JBK_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    #[arg(long, env = "JBK_HEARTBEAT_MS", default_value_t = 25_000)]
    pub heartbeat_ms: u64,
    /// Silence before a session is closed; default 3 heartbeats.
    #[arg(long, env = "JBK_HEARTBEAT_TIMEOUT_MS")]
    pub heartbeat_timeout_ms: Option<u64>,
    #[arg(long, env = "JBK_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    #[arg(long, env = "JBK_MSG_RATE", default_value_t = 50)]
    pub msg_rate: u32,
    #[arg(long, env = "JBK_MSG_BURST", default_value_t = 100)]
    pub msg_burst: u32,
    #[arg(long, env = "JBK_HANDSHAKE_RATE", default_value_t = 20)]
    pub handshake_rate: u32,
    #[arg(long, env = "JBK_HANDSHAKE_BURST", default_value_t = 100)]
    pub handshake_burst: u32,
    #[arg(long, env = "JBK_LOGIN_RATE", default_value_t = 20)]
    pub login_rate: u32,
    /// Website leads (`POST /api/v1/merchant-leads`, no login) per client IP per hour (the burst
    /// too).
    #[arg(long, env = "JBK_LEADS_PER_HOUR", default_value_t = 10)]
    pub leads_per_hour: u32,
    /// How long a QR login ticket waits for the phone's confirmation.
    #[arg(long, env = "JBK_QR_TTL_MS", default_value_t = 120_000)]
    pub qr_ttl_ms: u64,
    /// An order unpaid this long is cancelled and its stock returned (1000-86400000).
    #[arg(long, env = "JBK_ORDER_PAY_TIMEOUT_MS", default_value_t = 900_000)]
    pub order_pay_timeout_ms: u64,
    /// How often the expiry of unpaid orders runs (one node at a time), 100-60000.
    #[arg(long, env = "JBK_ORDER_EXPIRY_EVERY_MS", default_value_t = 5_000)]
    pub order_expiry_every_ms: u64,
    /// REST requests per second per client IP (the probes are not counted), and the burst.
    #[arg(long, env = "JBK_HTTP_RATE", default_value_t = 100)]
    pub http_rate: u32,
    #[arg(long, env = "JBK_HTTP_BURST", default_value_t = 200)]
    pub http_burst: u32,
    /// REST writes (every method but GET and HEAD) per second per user, and the burst.
    #[arg(long, env = "JBK_WRITE_RATE", default_value_t = 10)]
    pub write_rate: u32,
    #[arg(long, env = "JBK_WRITE_BURST", default_value_t = 50)]
    pub write_burst: u32,
    #[arg(long, env = "JBK_DRAIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub drain_timeout_ms: u64,
    /// Most members a group conversation may have.
    #[arg(long, env = "JBK_MAX_GROUP_MEMBERS", default_value_t = 500)]
    pub max_group_members: usize,
    /// SQLite durability: `full` fsyncs every commit (survives power loss); `normal` does not
    /// (survives `kill -9`, may lose the last commits on power loss).
    #[arg(long, env = "JBK_SQLITE_SYNC", value_enum, default_value = "full")]
    pub sqlite_sync: SqliteSyncArg,
    /// Bytes read from a socket at a time; the transport keeps this much per session.
    #[arg(long, env = "JBK_WS_READ_BUFFER", default_value_t = 1024)]
    pub ws_read_buffer: usize,
    /// Most messages stored in one transaction (group commit).
    #[arg(long, env = "JBK_COMMIT_BATCH", default_value_t = 4096)]
    pub commit_batch: usize,
    /// Cluster mode: the Redis that carries events between nodes and holds global presence.
    #[arg(long, env = "JBK_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// `JBK_REDIS_URL` lists seed nodes of a Redis Cluster (comma separated): keys are routed
    /// by slot and pub/sub is sharded (SSUBSCRIBE/SPUBLISH, Redis 7+).
    #[arg(long, env = "JBK_REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,
    /// This node's id in the cluster (default: generated at start).
    #[arg(long, env = "JBK_NODE_ID")]
    pub node_id: Option<String>,
    /// Prefix of the Redis keys and channels, so that several clusters can share one Redis.
    #[arg(long, env = "JBK_REDIS_PREFIX", default_value = "jbk")]
    pub redis_prefix: String,
    /// A node silent this long is dead and its users are shown offline (cluster mode).
    #[arg(long, env = "JBK_PRESENCE_TTL_MS", default_value_t = 30_000)]
    pub presence_ttl_ms: u64,
    /// Durable events (order alerts, moderation items) through RabbitMQ: `amqp://user:pass@host:5672/vhost`.
    /// Without it the outbox is relayed in-process.
    #[arg(long, env = "JBK_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Prefix of the RabbitMQ exchanges and queues.
    #[arg(long, env = "JBK_AMQP_PREFIX", default_value = "jbk")]
    pub amqp_prefix: String,
    /// How long a companion match request waits (at most until its travel window ends).
    #[arg(long, env = "JBK_MATCH_TTL_MS", default_value_t = 600_000)]
    pub match_ttl_ms: u64,
    /// Match requests waiting in all, and for one destination; past either a new request is
    /// refused `unavailable`.
    #[arg(long, env = "JBK_MATCH_MAX_WAITING", default_value_t = 100_000)]
    pub match_max_waiting: usize,
    #[arg(long, env = "JBK_MATCH_MAX_PER_DESTINATION", default_value_t = 5_000)]
    pub match_max_per_destination: usize,
    /// How often the outbox is looked at for events written on other nodes.
    #[arg(long, env = "JBK_OUTBOX_POLL_MS", default_value_t = 250)]
    pub outbox_poll_ms: u64,
    /// The banned-word list: one word per line, `#` comments. Reloaded on SIGHUP and by
    /// `POST /api/v1/admin/banned-words/reload`.
    #[arg(long, env = "JBK_BANNED_WORDS_FILE")]
    pub banned_words_file: Option<PathBuf>,
    /// Identities made admins at login: `provider:subject` separated by commas (for example
    /// `wechat:oAbc123,dev:root`).
    #[arg(long, env = "JBK_ADMINS", default_value = "")]
    pub admins: String,
    /// A request head (and a new connection's first one) must arrive within this.
    #[arg(long, env = "JBK_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_timeout_ms: u64,
    /// A request body must arrive within this after its head (else 408).
    #[arg(long, env = "JBK_HTTP_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub http_body_timeout_ms: u64,
    /// A kept-alive HTTP connection may be silent this long between requests.
    #[arg(long, env = "JBK_HTTP_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub http_idle_timeout_ms: u64,
    /// Client sockets (HTTP and WebSocket) the process holds at most; default: the hard
    /// open-file limit less 1,024.
    #[arg(long, env = "JBK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The last connection permits, kept for /healthz and /readyz.
    #[arg(long, env = "JBK_RESERVED_CONNECTIONS", default_value_t = 32)]
    pub reserved_connections: usize,
    /// Connections one client IP may hold (trusted proxies are exempt).
    #[arg(long, env = "JBK_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: usize,
    /// Proxies whose X-Forwarded-For / X-Real-IP are believed: CIDRs or addresses, comma separated.
    #[arg(long, env = "JBK_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

/// Where `/metrics` is served (`JBK_METRICS_LISTEN`): never on the app's port, which faces the
/// internet; payment outcomes and online counts are for the operator's Prometheus only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    /// Port 0 picks a free one (logged at start).
    At(SocketAddr),
}

impl MetricsListen {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "off" => Ok(MetricsListen::Off),
            "0" => Ok(MetricsListen::At(SocketAddr::from(([127, 0, 0, 1], 0)))),
            other => other
                .parse()
                .map(MetricsListen::At)
                .map_err(|_| anyhow::anyhow!("JBK_METRICS_LISTEN must be an address (127.0.0.1:9464), 0 or off, not {other:?}")),
        }
    }
}

/// The server's settings after parsing and checking.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: MetricsListen,
    /// `JBK_UPLOADS_PUBLIC_BASE`: a CDN's base URL for uploads, if any.
    pub uploads_public_base: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub env: Environment,
    pub jwt_secret: Option<Secret>,
    /// The data key's base64 (checked); `None` in development: generated into the data dir.
    pub data_key: Option<Secret>,
    pub privacy_version: String,
    pub zone: jiebanke_chat_core::BusinessZone,
    /// Object storage for uploads; `None`: the data dir.
    pub s3: Option<jiebanke_storage::S3Config>,
    /// How large an uploaded photo may be once decoded.
    pub uploads: jiebanke_chat_core::uploads::ImageLimits,
    pub token_ttl: Duration,
    pub dev_login: bool,
    pub wechat: Option<WeChatConfig>,
    /// WeChat Pay, when configured: the payment provider.
    pub wechat_pay: Option<WechatPayConfig>,
    pub log_format: LogFormat,
    pub gateway: GatewayConfig,
    pub login_rate: NonZeroU32,
    /// Website leads per client IP per hour.
    pub leads_per_hour: NonZeroU32,
    /// How long a QR login ticket lives.
    pub qr_ttl: Duration,
    /// The order use cases' settings (the payment timeout).
    pub orders: jiebanke_chat_core::commerce::orders::OrderConfig,
    /// How often the expiry of unpaid orders runs.
    pub order_expiry_every: Duration,
    /// REST requests per client IP: rate per second and burst.
    pub http_rate: (NonZeroU32, NonZeroU32),
    /// REST writes per user: rate per second and burst.
    pub write_rate: (NonZeroU32, NonZeroU32),
    pub max_group_members: usize,
    pub commit: jiebanke_chat_core::commit::CommitConfig,
    pub store: jiebanke_storage::StoreOptions,
    pub role: Role,
    /// Cluster mode when set.
    pub cluster: Option<jiebanke_cluster::ClusterConfig>,
    /// Durable events through RabbitMQ when set.
    pub amqp: Option<jiebanke_cluster::AmqpConfig>,
    pub outbox_poll: Duration,
    pub matching: jiebanke_chat_core::matching::MatchConfig,
    pub banned_words_file: Option<PathBuf>,
    /// (provider, subject) of the configured admins.
    pub admins: Vec<(String, String)>,
    /// The HTTP listener's timeouts and caps.
    pub http: crate::listener::ListenConfig,
}

/// WeChat Pay v3's settings (the key files are read when the application is built).
#[derive(Debug, Clone)]
pub struct WechatPayConfig {
    pub settings: jiebanke_payments::wechat_pay::WechatPaySettings,
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct WeChatConfig {
    pub app_id: String,
    pub secret: Secret,
    pub api_base: String,
}

/// WeChat Pay's settings: all of them, or none (then the local provider serves development).
fn wechat_pay(a: &ServeArgs, default_appid: Option<String>) -> anyhow::Result<Option<WechatPayConfig>> {
    let given = [
        a.wechatpay_mchid.is_some(),
        a.wechatpay_serial.is_some(),
        a.wechatpay_key_file.is_some(),
        a.wechatpay_apiv3_key.is_some(),
        a.wechatpay_platform_keys.is_some(),
        a.wechatpay_notify_url.is_some(),
    ];
    if given.iter().all(|g| !g) {
        return Ok(None);
    }
    let need = "set all of JBK_WECHATPAY_MCHID, JBK_WECHATPAY_SERIAL, JBK_WECHATPAY_KEY_FILE, JBK_WECHATPAY_APIV3_KEY, JBK_WECHATPAY_PLATFORM_KEYS, JBK_WECHATPAY_NOTIFY_URL, or none";
    let (Some(mchid), Some(serial), Some(key_file), Some(api_v3_key), Some(platform), Some(notify_url)) = (
        a.wechatpay_mchid.clone(),
        a.wechatpay_serial.clone(),
        a.wechatpay_key_file.clone(),
        a.wechatpay_apiv3_key.clone(),
        a.wechatpay_platform_keys.clone(),
        a.wechatpay_notify_url.clone(),
    ) else {
        anyhow::bail!("{need}");
    };
    let appid = a.wechatpay_appid.clone().or(default_appid).ok_or_else(|| anyhow::anyhow!("JBK_WECHATPAY_APPID (or JBK_WECHAT_APPID) is needed with WeChat Pay"))?;
    if api_v3_key.len() != 32 || !api_v3_key.is_ascii() {
        anyhow::bail!("JBK_WECHATPAY_APIV3_KEY must be 32 characters");
    }
    let mut platform_keys = Vec::new();
    for pair in platform.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (serial, path) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("JBK_WECHATPAY_PLATFORM_KEYS: `{pair}` is not SERIAL=path"))?;
        platform_keys.push((serial.trim().to_owned(), PathBuf::from(path.trim())));
    }
    if platform_keys.is_empty() {
        anyhow::bail!("JBK_WECHATPAY_PLATFORM_KEYS names no key");
    }
    if !notify_url.starts_with("https://") && !notify_url.starts_with("http://") {
        anyhow::bail!("JBK_WECHATPAY_NOTIFY_URL must be an http(s) URL");
    }
    let settings = jiebanke_payments::wechat_pay::WechatPaySettings { mchid, appid, merchant_serial: serial, merchant_key_file: key_file, api_v3_key, platform_keys, notify_url };
    Ok(Some(WechatPayConfig { settings, api_base: a.wechatpay_api_base.clone() }))
}

fn nz(v: u32, what: &str) -> anyhow::Result<NonZeroU32> {
    NonZeroU32::new(v).ok_or_else(|| anyhow::anyhow!("{what} must be at least 1"))
}

impl Config {
    /// Development defaults on a given data dir, for tests and examples.
    pub fn dev(data_dir: PathBuf) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            metrics_listen: MetricsListen::At(SocketAddr::from(([127, 0, 0, 1], 0))),
            uploads_public_base: None,
            data_dir,
            database_url: None,
            env: Environment::Development,
            jwt_secret: None,
            data_key: None,
            privacy_version: "2026-11-01".into(),
            zone: jiebanke_chat_core::BusinessZone::shanghai(),
            s3: None,
            uploads: jiebanke_chat_core::uploads::ImageLimits::default(),
            token_ttl: Duration::from_secs(3600),
            dev_login: true,
            wechat: None,
            wechat_pay: None,
            log_format: LogFormat::Text,
            gateway: GatewayConfig::default(),
            login_rate: NonZeroU32::new(1000).expect("nonzero"),
            leads_per_hour: NonZeroU32::new(100_000).expect("nonzero"),
            qr_ttl: Duration::from_secs(120),
            orders: jiebanke_chat_core::commerce::orders::OrderConfig::default(),
            order_expiry_every: Duration::from_secs(5),
            // Tests make many requests from one address and user quickly.
            http_rate: (NonZeroU32::new(100_000).expect("nonzero"), NonZeroU32::new(100_000).expect("nonzero")),
            write_rate: (NonZeroU32::new(100_000).expect("nonzero"), NonZeroU32::new(100_000).expect("nonzero")),
            max_group_members: 500,
            commit: jiebanke_chat_core::commit::CommitConfig::default(),
            store: jiebanke_storage::StoreOptions::default(),
            role: Role::Full,
            cluster: None,
            amqp: None,
            outbox_poll: Duration::from_millis(250),
            matching: jiebanke_chat_core::matching::MatchConfig::default(),
            banned_words_file: None,
            admins: Vec::new(),
            http: crate::listener::ListenConfig::default(),
        }
    }

    pub fn from_args(role: Role, a: ServeArgs) -> anyhow::Result<Config> {
        let cluster = match &a.redis_url {
            Some(url) => {
                let shared_db = a.database_url.as_deref().is_some_and(|u| u.starts_with("mysql:") || u.starts_with("mariadb:"));
                if !shared_db {
                    anyhow::bail!("cluster mode (JBK_REDIS_URL) needs the shared database: set JBK_DATABASE_URL=mysql://…");
                }
                if a.presence_ttl_ms < 300 {
                    anyhow::bail!("JBK_PRESENCE_TTL_MS must be at least 300");
                }
                let node_id = match &a.node_id {
                    Some(id) if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => id.clone(),
                    Some(_) => anyhow::bail!("JBK_NODE_ID must be 1-64 letters, digits, '-', '_' or '.'"),
                    None => format!("n-{:08x}", rand::random::<u32>()),
                };
                let mut c = jiebanke_cluster::ClusterConfig::new(url.clone(), node_id);
                c.prefix = a.redis_prefix.clone();
                c.presence_ttl = Duration::from_millis(a.presence_ttl_ms);
                c.redis_cluster = a.redis_cluster;
                if !a.redis_cluster && url.contains(',') {
                    anyhow::bail!("JBK_REDIS_URL lists several servers: set JBK_REDIS_CLUSTER=true for a Redis Cluster");
                }
                Some(c)
            }
            None if role != Role::Full => {
                anyhow::bail!("`jiebanke gateway` and `jiebanke rest` run one half of a cluster: set JBK_REDIS_URL (and JBK_DATABASE_URL=mysql://…)")
            }
            None => None,
        };
        let amqp = match &a.amqp_url {
            Some(url) => {
                let shared_db = a.database_url.as_deref().is_some_and(|u| u.starts_with("mysql:") || u.starts_with("mariadb:"));
                if !shared_db {
                    anyhow::bail!("JBK_AMQP_URL needs the shared database: set JBK_DATABASE_URL=mysql://…");
                }
                if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                    anyhow::bail!("JBK_AMQP_URL must start with amqp:// or amqps://");
                }
                if a.amqp_prefix.is_empty() || !a.amqp_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    anyhow::bail!("JBK_AMQP_PREFIX must be letters, digits, '-', '_' or '.'");
                }
                Some(jiebanke_cluster::AmqpConfig { url: url.clone(), prefix: a.amqp_prefix.clone() })
            }
            None => None,
        };
        let admins = parse_admins(&a.admins)?;
        let production = a.env == Environment::Production;
        let dev_login = a.dev_login.unwrap_or(!production);
        if production && dev_login {
            anyhow::bail!("JBK_DEV_LOGIN cannot be on when JBK_ENV=production: the dev provider lets anyone be anyone");
        }
        let wechat = match (a.wechat_appid.clone(), a.wechat_secret.clone()) {
            (Some(app_id), Some(secret)) => {
                Some(WeChatConfig { app_id, secret: Secret::new(secret), api_base: a.wechat_api_base.clone() })
            }
            (None, None) => None,
            _ => anyhow::bail!("set both JBK_WECHAT_APPID and JBK_WECHAT_SECRET, or neither"),
        };
        let wechat_pay = wechat_pay(&a, wechat.as_ref().map(|w| w.app_id.clone()))?;
        if production && a.jwt_secret.is_none() {
            anyhow::bail!("JBK_JWT_SECRET is required when JBK_ENV=production");
        }
        if let Some(k) = &a.data_key {
            jiebanke_chat_core::users::DataKey::from_base64(k).map_err(|e| anyhow::anyhow!("JBK_DATA_KEY: {e}"))?;
        }
        let zone = business_zone(&a.timezone)?;
        let s3 = match (a.s3_bucket, a.s3_endpoint) {
            (Some(bucket), Some(endpoint)) => {
                if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                    anyhow::bail!("JBK_S3_ENDPOINT must start with https:// (or http:// for a local server)");
                }
                let (Some(access_key_id), Some(secret_access_key)) = (a.s3_access_key_id, a.s3_secret_access_key) else {
                    anyhow::bail!("JBK_S3_BUCKET needs JBK_S3_ACCESS_KEY_ID and JBK_S3_SECRET_ACCESS_KEY");
                };
                Some(jiebanke_storage::S3Config { endpoint, bucket, region: a.s3_region.clone(), access_key_id, secret_access_key })
            }
            (None, None) => None,
            _ => anyhow::bail!("set both JBK_S3_BUCKET and JBK_S3_ENDPOINT, or neither"),
        };
        if a.privacy_version.is_empty() || a.privacy_version.len() > 64 || !a.privacy_version.chars().all(|c| c.is_ascii_graphic()) {
            anyhow::bail!("JBK_PRIVACY_VERSION must be 1-64 visible ASCII characters");
        }
        if production && wechat.is_none() {
            anyhow::bail!("no login provider: set JBK_WECHAT_APPID and JBK_WECHAT_SECRET in production");
        }
        if production && a.data_key.is_none() {
            anyhow::bail!("JBK_DATA_KEY is required when JBK_ENV=production (32 bytes, base64: `openssl rand -base64 32`)");
        }
        if let Some(s) = &a.jwt_secret {
            if s.len() < 32 {
                anyhow::bail!("JBK_JWT_SECRET must be at least 32 bytes");
            }
        }
        if a.max_frame_bytes < 256 {
            anyhow::bail!("JBK_MAX_FRAME_BYTES must be at least 256");
        }
        if a.heartbeat_ms < 100 {
            anyhow::bail!("JBK_HEARTBEAT_MS must be at least 100");
        }
        let heartbeat = Duration::from_millis(a.heartbeat_ms);
        for (v, name) in [
            (a.http_header_timeout_ms, "JBK_HTTP_HEADER_TIMEOUT_MS"),
            (a.http_body_timeout_ms, "JBK_HTTP_BODY_TIMEOUT_MS"),
            (a.http_idle_timeout_ms, "JBK_HTTP_IDLE_TIMEOUT_MS"),
        ] {
            if v < 100 {
                anyhow::bail!("{name} must be at least 100");
            }
        }
        let max_connections = a.max_connections.unwrap_or_else(crate::listener::default_max_connections);
        if max_connections < 2 {
            anyhow::bail!("JBK_MAX_CONNECTIONS must be at least 2");
        }
        if a.reserved_connections >= max_connections {
            anyhow::bail!("JBK_RESERVED_CONNECTIONS must be below JBK_MAX_CONNECTIONS");
        }
        if a.max_connections_per_ip == 0 {
            anyhow::bail!("JBK_MAX_CONNECTIONS_PER_IP must be at least 1");
        }
        let http = crate::listener::ListenConfig {
            header_timeout: Duration::from_millis(a.http_header_timeout_ms),
            body_timeout: Duration::from_millis(a.http_body_timeout_ms),
            idle_timeout: Duration::from_millis(a.http_idle_timeout_ms),
            max_connections,
            reserved_connections: a.reserved_connections,
            max_connections_per_ip: a.max_connections_per_ip,
            trusted_proxies: crate::listener::parse_trusted_proxies(&a.trusted_proxies)?,
        };
        let gateway = GatewayConfig {
            max_frame_bytes: a.max_frame_bytes,
            hard_max_bytes: (a.max_frame_bytes * 4).max(1024 * 1024),
            heartbeat,
            heartbeat_timeout: Duration::from_millis(a.heartbeat_timeout_ms.unwrap_or(a.heartbeat_ms * 3)),
            outbound_queue: a.outbound_queue.max(1),
            msg_rate: nz(a.msg_rate, "JBK_MSG_RATE")?,
            msg_burst: nz(a.msg_burst, "JBK_MSG_BURST")?,
            handshake_rate: nz(a.handshake_rate, "JBK_HANDSHAKE_RATE")?,
            handshake_burst: nz(a.handshake_burst, "JBK_HANDSHAKE_BURST")?,
            drain_timeout: Duration::from_millis(a.drain_timeout_ms),
            read_buffer_bytes: a.ws_read_buffer.clamp(256, 1024 * 1024),
            ..GatewayConfig::default()
        };
        if production && wechat_pay.is_none() {
            anyhow::bail!("WeChat Pay is required when JBK_ENV=production (JBK_WECHATPAY_*): the local payment provider is for development");
        }
        Ok(Config {
            listen: a.listen,
            metrics_listen: MetricsListen::parse(&a.metrics_listen)?,
            uploads_public_base: match a.uploads_public_base.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
                None => None,
                Some(b) if b.starts_with("https://") && b.len() > "https://".len() => Some(b.trim_end_matches('/').to_owned()),
                Some(b) => anyhow::bail!("JBK_UPLOADS_PUBLIC_BASE must be an https:// URL, not {b:?}"),
            },
            data_dir: a.data_dir,
            database_url: a.database_url,
            env: a.env,
            jwt_secret: a.jwt_secret.map(Secret::new),
            data_key: a.data_key.map(Secret::new),
            privacy_version: a.privacy_version,
            zone,
            s3,
            uploads: {
                use jiebanke_chat_core::uploads::{ImageLimits, MAX_SIDE};
                let most = u64::from(MAX_SIDE) * u64::from(MAX_SIDE);
                if !(1..=most).contains(&a.upload_max_pixels) {
                    anyhow::bail!("JBK_UPLOAD_MAX_PIXELS must be 1-{most} (each side is at most {MAX_SIDE} anyway)");
                }
                ImageLimits { max_pixels: a.upload_max_pixels, max_side: MAX_SIDE }
            },
            token_ttl: Duration::from_secs(a.token_ttl_secs.max(60)),
            dev_login,
            wechat,
            wechat_pay,
            log_format: a.log_format,
            gateway,
            login_rate: nz(a.login_rate, "JBK_LOGIN_RATE")?,
            leads_per_hour: nz(a.leads_per_hour, "JBK_LEADS_PER_HOUR")?,
            orders: match a.order_pay_timeout_ms {
                1_000..=86_400_000 => jiebanke_chat_core::commerce::orders::OrderConfig { pay_timeout_ms: a.order_pay_timeout_ms as i64 },
                _ => anyhow::bail!("JBK_ORDER_PAY_TIMEOUT_MS must be 1000-86400000"),
            },
            order_expiry_every: match a.order_expiry_every_ms {
                100..=60_000 => Duration::from_millis(a.order_expiry_every_ms),
                _ => anyhow::bail!("JBK_ORDER_EXPIRY_EVERY_MS must be 100-60000"),
            },
            qr_ttl: match a.qr_ttl_ms {
                1_000..=600_000 => Duration::from_millis(a.qr_ttl_ms),
                _ => anyhow::bail!("JBK_QR_TTL_MS must be 1000-600000"),
            },
            http_rate: (nz(a.http_rate, "JBK_HTTP_RATE")?, nz(a.http_burst, "JBK_HTTP_BURST")?),
            write_rate: (nz(a.write_rate, "JBK_WRITE_RATE")?, nz(a.write_burst, "JBK_WRITE_BURST")?),
            max_group_members: a.max_group_members.max(2),
            commit: jiebanke_chat_core::commit::CommitConfig {
                max_batch: a.commit_batch.max(1),
                ..jiebanke_chat_core::commit::CommitConfig::default()
            },
            store: jiebanke_storage::StoreOptions {
                sqlite_sync: match a.sqlite_sync {
                    SqliteSyncArg::Full => jiebanke_storage::SqliteSync::Full,
                    SqliteSyncArg::Normal => jiebanke_storage::SqliteSync::Normal,
                },
            },
            role,
            cluster,
            amqp,
            outbox_poll: Duration::from_millis(a.outbox_poll_ms.clamp(10, 60_000)),
            matching: jiebanke_chat_core::matching::MatchConfig {
                ttl: Duration::from_millis(a.match_ttl_ms.clamp(1_000, 7 * 86_400_000)),
                max_waiting: a.match_max_waiting.max(1),
                max_per_destination: a.match_max_per_destination.max(1),
            },
            banned_words_file: a.banned_words_file,
            admins,
            http,
        })
    }
}

/// `provider:subject,provider:subject` → pairs; the provider must be one Jiebanke knows.
pub fn parse_admins(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((p @ ("wechat" | "dev"), subject)) if !subject.is_empty() => out.push((p.to_owned(), subject.to_owned())),
            _ => anyhow::bail!("JBK_ADMINS entries are wechat:<openid> or dev:<code>, got {part:?}"),
        }
    }
    Ok(out)
}

/// The business timezone from its IANA name, with the bundled tz database.
pub fn business_zone(name: &str) -> anyhow::Result<jiebanke_chat_core::BusinessZone> {
    let tz = jiff::tz::TimeZone::get(name).map_err(|e| anyhow::anyhow!("JBK_TIMEZONE {name:?}: {e}"))?;
    Ok(jiebanke_chat_core::BusinessZone::new(name, move |ms| {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        i64::from(tz.to_offset(at).seconds()) * 1000
    }))
}
