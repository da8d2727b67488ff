//! The scenarios. Each logs its users in over REST, opens real sessions, drives load, checks
//! every message, and returns what it measured for the report.

pub mod chat;
pub mod connect;
pub mod matching;
pub mod rest;
pub mod room;
pub mod shop;

use crate::client::{Target, Ws};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;

/// A logged-in user.
#[derive(Clone)]
pub struct User {
    pub token: String,
    pub id: String,
}

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

pub fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("template"));
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// Logs in `n` users named `<prefix>-<i>`, 64 at a time.
pub async fn login_all(t: &Arc<Target>, prefix: &str, n: usize) -> anyhow::Result<Vec<User>> {
    let pb = bar(n as u64, "login");
    let users: Vec<User> = stream::iter(0..n)
        .map(|i| {
            let t = t.clone();
            let pb = pb.clone();
            let code = format!("{prefix}-{i}");
            async move {
                let (token, id) = t.login(&code).await?;
                pb.inc(1);
                Ok::<_, anyhow::Error>(User { token, id })
            }
        })
        .buffered(64)
        .try_collect()
        .await?;
    pb.finish();
    Ok(users)
}

/// Opens one session per user, `parallel` at a time, at most `rate` per second (0: no limit).
pub async fn connect_all(t: &Arc<Target>, users: &[User], parallel: usize, rate: f64) -> anyhow::Result<Vec<Ws>> {
    let pb = bar(users.len() as u64, "connect");
    let start = tokio::time::Instant::now();
    let sockets: Vec<Ws> = stream::iter(users.iter().cloned().enumerate())
        .map(|(i, u)| {
            let t = t.clone();
            let pb = pb.clone();
            async move {
                if rate > 0.0 {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                }
                let ws = t.connect(&u.token).await?;
                pb.inc(1);
                Ok::<_, anyhow::Error>(ws)
            }
        })
        .buffered(parallel.max(1))
        .try_collect()
        .await?;
    pb.finish();
    Ok(sockets)
}

/// The flags the sending scenarios share.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct SendArgs {
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Seconds to wait after sending for the last acks and deliveries.
    #[arg(long, default_value_t = 15)]
    pub grace: u64,
    /// Sessions opened in parallel.
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
}

/// What a scenario measured.
#[derive(Default)]
pub struct Outcome {
    pub results: serde_json::Map<String, serde_json::Value>,
    pub latency: std::collections::BTreeMap<String, crate::stats::Latency>,
    pub timeline: std::collections::BTreeMap<String, Vec<u64>>,
    pub failures: Vec<String>,
    /// The measured window (the part the throughput figures divide by).
    pub window_s: f64,
}

/// Fires once the measured window starts and once it ends, so the runner can read the server's
/// CPU time exactly around it.
pub type Probe = Arc<dyn Fn() + Send + Sync>;

/// The sending half of a session, for the paced senders.
pub type Sink = futures_util::stream::SplitSink<Ws, tokio_tungstenite::tungstenite::Message>;

/// What a paced sender needs: where, how fast, until when, and the shared counter.
pub struct Pace {
    pub target: Arc<Target>,
    pub conv: String,
    /// The cmid prefix, unique per session.
    pub me: String,
    pub rate: f64,
    pub text: String,
    pub start: std::time::Instant,
    pub deadline: std::time::Instant,
    pub sent: Arc<crate::stats::Timeline>,
}

/// Sends `send` frames at `rate` per second until the deadline, the send time in each cmid;
/// returns the sink so the caller can close it.
pub fn spawn_sender(mut sink: Sink, p: Pace) -> tokio::task::JoinHandle<Sink> {
    use futures_util::SinkExt;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / p.rate.max(0.001)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u64;
        loop {
            tick.tick().await;
            if std::time::Instant::now() >= p.deadline {
                break;
            }
            let c = crate::client::cmid(&p.me, n, p.start.elapsed().as_micros() as u64);
            if sink.send(p.target.send_frame(n, &p.conv, &c, &p.text)).await.is_err() {
                break;
            }
            p.sent.add(1);
            n += 1;
        }
        sink
    })
}
