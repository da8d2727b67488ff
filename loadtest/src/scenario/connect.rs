//! `connect`: ramps to N idle sessions spread over source addresses, holds them, and reports
//! the ramp rate and the server's resident memory per session.

use super::{connect_all, login_all, spinner, Outcome, Probe};
use crate::client::Target;
use crate::sys;
use futures_util::StreamExt;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct ConnectArgs {
    /// Sessions to open (one user each).
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Sessions opened per second (0: as fast as `parallel` allows).
    #[arg(long, default_value_t = 0.0)]
    pub ramp_rate: f64,
    /// Seconds to hold all sessions open once connected.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
    /// Users the sessions belong to, round robin (0: one user per session). Fewer users make
    /// the set-up faster; each session still costs what a session costs.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
}

pub async fn run(t: Arc<Target>, a: ConnectArgs, prefix: &str, server_pid: Option<u32>, probe: Probe) -> anyhow::Result<Outcome> {
    let n_users = if a.users == 0 { a.sessions } else { a.users.min(a.sessions) };
    let logged = login_all(&t, &format!("{prefix}-conn"), n_users).await?;
    let users: Vec<_> = (0..a.sessions).map(|i| logged[i % n_users].clone()).collect();
    // Let the server settle after the logins, then read its memory before any session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server_pid.and_then(sys::proc_rss_kib);
    let client_before = sys::self_rss_kib();
    probe();
    let start = Instant::now();
    let sockets = connect_all(&t, &users, a.parallel, a.ramp_rate).await?;
    let ramp = start.elapsed();
    let closed = Arc::new(AtomicU64::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for ws in sockets {
        let (closed, stop) = (closed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    m = stream.next() => match m {
                        Some(Ok(_)) => continue,
                        _ => { closed.fetch_add(1, Ordering::Relaxed); break; }
                    }
                }
            }
        }));
    }
    let pb = spinner();
    let hold_end = Instant::now() + Duration::from_secs(a.hold);
    let mut rss_peak = rss_before.unwrap_or(0);
    while Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(r) = server_pid.and_then(sys::proc_rss_kib) {
            rss_peak = rss_peak.max(r);
        }
        pb.set_message(format!(
            "holding {} sessions, {} closed by the server, server RSS {} MiB",
            a.sessions,
            closed.load(Ordering::Relaxed),
            rss_peak / 1024
        ));
    }
    let rss_held = server_pid.and_then(sys::proc_rss_kib);
    let client_held = sys::self_rss_kib();
    probe();
    pb.finish_and_clear();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let mut out = Outcome::default();
    let dropped = closed.load(Ordering::Relaxed);
    if dropped > 0 {
        out.failures.push(format!("{dropped} sessions were closed during the hold"));
    }
    let per_session = match (rss_before, rss_held) {
        (Some(b), Some(h)) => Some(h.saturating_sub(b) as f64 * 1024.0 / a.sessions as f64),
        _ => None,
    };
    out.window_s = ramp.as_secs_f64();
    out.results = json!({
        "sessions": a.sessions,
        "users": n_users,
        "ramp_s": ramp.as_secs_f64(),
        "ramp_per_s": a.sessions as f64 / ramp.as_secs_f64(),
        "server_rss_before_kib": rss_before,
        "server_rss_held_kib": rss_held,
        "server_bytes_per_session": per_session,
        "loadgen_bytes_per_session": match (client_before, client_held) {
            (Some(b), Some(h)) => Some(h.saturating_sub(b) as f64 * 1024.0 / a.sessions as f64),
            _ => None,
        },
        "closed_during_hold": dropped,
        "sources": t.sources.len(),
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    Ok(out)
}
