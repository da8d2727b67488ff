//! `rest`: a mixed read and write load on the REST API: list my conversations (60%), who am I
//! (20%), open a direct conversation with a random user (20%).

use super::{login_all, spinner, Outcome, Probe};
use crate::client::Target;
use crate::stats::{histogram, Latency, Timeline};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct RestArgs {
    /// Users to spread the requests over.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
}

pub async fn run(t: Arc<Target>, a: RestArgs, prefix: &str, probe: Probe) -> anyhow::Result<Outcome> {
    let users = Arc::new(login_all(&t, &format!("{prefix}-rest"), a.users.max(2)).await?);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.duration);
    let done = Arc::new(Timeline::new(start, a.duration as usize + 5));
    let errors = Arc::new(AtomicU64::new(0));
    let hists = Arc::new(Mutex::new([histogram(), histogram(), histogram()]));
    probe();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (t, users, done, errors, hists) = (t.clone(), users.clone(), done.clone(), errors.clone(), hists.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = [histogram(), histogram(), histogram()];
            let mut rng = 0x9E3779B97F4A7C15u64 ^ (w as u64 + 1);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            while Instant::now() < deadline {
                let me = &users[(next() % users.len() as u64) as usize];
                let roll = next() % 10;
                let began = Instant::now();
                let (op, ok) = if roll < 6 {
                    let r = t.http.get(format!("{}/api/v1/conversations", t.base())).bearer_auth(&me.token).send().await;
                    (0, r.map(|r| r.status().is_success()).unwrap_or(false))
                } else if roll < 8 {
                    let r = t.http.get(format!("{}/api/v1/me", t.base())).bearer_auth(&me.token).send().await;
                    (1, r.map(|r| r.status().is_success()).unwrap_or(false))
                } else {
                    let other = &users[(next() % users.len() as u64) as usize];
                    if other.id == me.id {
                        continue;
                    }
                    (2, t.direct(&me.token, &other.id).await.is_ok())
                };
                let _ = local[op].record((began.elapsed().as_micros() as u64).max(1));
                if ok {
                    done.add(1);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let mut g = hists.lock().unwrap_or_else(|e| e.into_inner());
            for (all, mine) in g.iter_mut().zip(local.iter()) {
                let _ = all.add(mine);
            }
        }));
    }
    let pb = spinner();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        pb.set_message(format!("{} requests, {:.0}/s", done.get(), done.get() as f64 / start.elapsed().as_secs_f64()));
    }
    for t in tasks {
        let _ = t.await;
    }
    probe();
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut out = Outcome::default();
    let errs = errors.load(Ordering::Relaxed);
    if errs > 0 {
        out.failures.push(format!("{errs} requests failed"));
    }
    out.window_s = secs;
    out.results = json!({ "requests": done.get(), "errors": errs, "requests_per_s": done.get() as f64 / secs })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let g = hists.lock().unwrap_or_else(|e| e.into_inner());
    out.latency.insert("list_conversations".into(), Latency::of(&g[0]));
    out.latency.insert("me".into(), Latency::of(&g[1]));
    out.latency.insert("open_direct".into(), Latency::of(&g[2]));
    out.timeline.insert("requests".into(), done.series(secs as usize + 1));
    Ok(out)
}
