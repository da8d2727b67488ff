//! `chat`: users in direct pairs, each sending at a given rate. Every acked message must reach
//! the other member exactly once, in seq order; acked seqs of a conversation must be 1..=n.

use super::{connect_all, login_all, spawn_sender, spinner, Outcome, Pace, Probe};
use crate::client::{cmid_micros, decode, Target};
use crate::stats::{histogram, Merged, Timeline};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct ChatArgs {
    /// Pairs of users (each pair shares one direct conversation).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Messages per second each user sends.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub send: super::SendArgs,
}

#[derive(Default)]
struct Conv {
    /// Seqs acked to each of the two members, and received by each (index = member 0 / 1).
    acked: [Vec<u64>; 2],
    received: [Vec<u64>; 2],
}

pub async fn run(t: Arc<Target>, a: ChatArgs, prefix: &str, probe: Probe) -> anyhow::Result<Outcome> {
    let users = login_all(&t, &format!("{prefix}-chat"), a.pairs * 2).await?;
    let mut convs = Vec::with_capacity(a.pairs);
    for p in 0..a.pairs {
        convs.push(t.direct(&users[2 * p].token, &users[2 * p + 1].id).await?);
    }
    let sockets = connect_all(&t, &users, a.send.parallel, 0.0).await?;

    let total_s = (a.send.duration + a.send.grace + 5) as usize;
    let start = Instant::now();
    let sent = Arc::new(Timeline::new(start, total_s));
    let acked = Arc::new(Timeline::new(start, total_s));
    let delivered = Arc::new(Timeline::new(start, total_s));
    let errors = Arc::new(AtomicU64::new(0));
    let reorders = Arc::new(AtomicU64::new(0));
    let ack_lat = Arc::new(Merged::default());
    let e2e_lat = Arc::new(Merged::default());
    let results: Arc<Vec<Mutex<Conv>>> = Arc::new((0..a.pairs).map(|_| Mutex::new(Conv::default())).collect());
    let stop_reading = CancellationToken::new();
    let text: String = "x".repeat(a.send.text_bytes.max(1));
    let deadline = start + Duration::from_secs(a.send.duration);
    probe();

    let mut tasks = Vec::new();
    for (k, ws) in sockets.into_iter().enumerate() {
        let (sink, mut stream) = ws.split();
        let (pair, side) = (k / 2, k % 2);
        // Sender: paced, stops at the deadline.
        let sender = spawn_sender(
            sink,
            Pace {
                target: t.clone(),
                conv: convs[pair].clone(),
                me: format!("u{k}"),
                rate: a.rate,
                text: text.clone(),
                start,
                deadline,
                sent: sent.clone(),
            },
        );
        let (t3, acked, delivered, errors, reorders, ack_lat, e2e_lat, results, stop) = (
            t.clone(), acked.clone(), delivered.clone(), errors.clone(), reorders.clone(),
            ack_lat.clone(), e2e_lat.clone(), results.clone(), stop_reading.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h_ack = histogram();
            let mut h_e2e = histogram();
            let mut my_acks = Vec::new();
            let mut my_msgs = Vec::new();
            let mut last = 0u64;
            loop {
                let m = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = stream.next() => m,
                };
                let Some(Ok(m)) = m else { break };
                let Some(f) = decode(t3.codec, &m) else { continue };
                let now = start.elapsed().as_micros() as u64;
                match f.ty.as_str() {
                    "ack" => {
                        if let (Some(seq), Some(c)) = (f.seq, f.cmid.as_deref().and_then(cmid_micros)) {
                            let _ = h_ack.record(now.saturating_sub(c).max(1));
                            my_acks.push(seq);
                            acked.add(1);
                        }
                    }
                    "msg" => {
                        if let (Some(seq), Some(c)) = (f.seq, f.cmid.as_deref().and_then(cmid_micros)) {
                            let _ = h_e2e.record(now.saturating_sub(c).max(1));
                            if seq <= last {
                                reorders.fetch_add(1, Ordering::Relaxed);
                            }
                            last = seq;
                            my_msgs.push(seq);
                            delivered.add(1);
                        }
                    }
                    "error" => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            ack_lat.add(&h_ack);
            e2e_lat.add(&h_e2e);
            {
                let mut c = results[pair].lock().unwrap_or_else(|e| e.into_inner());
                c.acked[side] = my_acks;
                c.received[side] = my_msgs;
            }
            let sink = sender.await.ok();
            if let Some(mut s) = sink {
                let _ = s.close().await;
            }
        }));
    }

    let pb = spinner();
    let mut window_end = None;
    let give_up = deadline + Duration::from_secs(a.send.grace);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (s, ac, d) = (sent.get(), acked.get(), delivered.get());
        pb.set_message(format!(
            "sent {s}  acked {ac}  delivered {d}  errors {}  ({:.0} acked/s)",
            errors.load(Ordering::Relaxed),
            ac as f64 / start.elapsed().as_secs_f64()
        ));
        let now = Instant::now();
        if now >= deadline && window_end.is_none() {
            window_end = Some(start.elapsed());
        }
        if now >= deadline && ((ac == s && d >= ac && errors.load(Ordering::Relaxed) == 0) || now >= give_up) {
            break;
        }
        // Errors are final answers: stop waiting for their acks.
        if now >= deadline && ac + errors.load(Ordering::Relaxed) >= s && d >= ac {
            break;
        }
    }
    probe();
    let drain_end = start.elapsed();
    pb.finish_and_clear();
    stop_reading.cancel();
    for t in tasks {
        let _ = t.await;
    }

    // Checks: every acked seq delivered to the other member once, in order; seqs dense.
    let mut out = Outcome::default();
    let (mut lost, mut dup, mut gaps) = (0u64, 0u64, 0u64);
    for (p, c) in results.iter().enumerate() {
        let c = c.lock().unwrap_or_else(|e| e.into_inner());
        for side in 0..2 {
            let mut want = c.acked[1 - side].clone();
            want.sort_unstable();
            let mut got = c.received[side].clone();
            got.sort_unstable();
            let before = got.len();
            got.dedup();
            dup += (before - got.len()) as u64;
            let missing = want.iter().filter(|s| got.binary_search(s).is_err()).count() as u64;
            if missing > 0 && out.failures.len() < 20 {
                out.failures.push(format!("conversation {}: {missing} acked messages never delivered", convs[p]));
            }
            lost += missing;
        }
        let mut all: Vec<u64> = c.acked[0].iter().chain(c.acked[1].iter()).copied().collect();
        all.sort_unstable();
        if all.iter().enumerate().any(|(i, s)| *s != i as u64 + 1) {
            gaps += 1;
        }
    }
    let unanswered = sent.get().saturating_sub(acked.get() + errors.load(Ordering::Relaxed));
    if unanswered > 0 {
        out.failures.push(format!("{unanswered} sends got neither an ack nor an error"));
    }
    let reorder = reorders.load(Ordering::Relaxed);
    if dup > 0 {
        out.failures.push(format!("{dup} duplicate deliveries"));
    }
    if reorder > 0 {
        out.failures.push(format!("{reorder} deliveries out of seq order"));
    }
    if gaps > 0 {
        out.failures.push(format!("{gaps} conversations whose acked seqs are not 1..=n"));
    }
    let errs = errors.load(Ordering::Relaxed);
    if errs > 0 {
        out.failures.push(format!("{errs} error frames"));
    }
    let window = window_end.unwrap_or(drain_end).as_secs_f64();
    let upto = drain_end.as_secs() as usize + 1;
    out.window_s = drain_end.as_secs_f64();
    out.results = json!({
        "sessions": a.pairs * 2,
        "sent": sent.get(),
        "acked": acked.get(),
        "delivered": delivered.get(),
        "errors": errs,
        "lost": lost,
        "duplicates": dup,
        "reordered": reorder,
        "offered_per_s": a.rate * (a.pairs * 2) as f64,
        "sent_per_s": sent.get() as f64 / window,
        "acked_per_s": acked.get() as f64 / drain_end.as_secs_f64(),
        "delivered_per_s": delivered.get() as f64 / drain_end.as_secs_f64(),
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    out.latency.insert("ack".into(), ack_lat.summary());
    out.latency.insert("delivery".into(), e2e_lat.summary());
    out.timeline.insert("sent".into(), sent.series(upto));
    out.timeline.insert("acked".into(), acked.series(upto));
    out.timeline.insert("delivered".into(), delivered.series(upto));
    Ok(out)
}
