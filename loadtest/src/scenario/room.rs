//! `room`: one group of M members, K of them sending. Measures deliveries per second and the
//! fan-out latency of each broadcast (first and last recipient), and checks that every acked
//! message reached every other member exactly once, in order. Latency is measured twice: when
//! the load generator read the frame, and when the kernel received it (`SO_TIMESTAMP`), so that
//! the generator's own read delay on a shared machine can be told apart from the server's. A
//! frame read together with a later one may have no exact kernel time (the kernel merges queued
//! segments and keeps the later time): `fanout_last_kernel` covers only the broadcasts none of
//! whose frames shared a read with a later frame (the report says how many), and
//! `fanout_last_kernel_bound` every broadcast, as an upper bound.

use super::{connect_all, login_all, spawn_sender, spinner, Outcome, Pace, Probe};
use crate::client::{cmid_micros, decode, Target};
use crate::stats::{histogram, Latency, Merged, Timeline};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct RoomArgs {
    /// Members of the room (each one session).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second each sender sends.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub send: super::SendArgs,
    /// The broadcast deadline of the "reach every member" figure, in ms.
    #[arg(long, default_value_t = 500)]
    pub within_ms: u64,
}

/// Per broadcast (indexed by seq): how many received it and the first and last latency (µs),
/// as read by the load generator and as received by the kernel (`SO_TIMESTAMP`).
struct PerSeq {
    count: Vec<AtomicU32>,
    first: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
    first_kernel: Vec<AtomicU64>,
    last_kernel: Vec<AtomicU64>,
    /// The latest kernel time of any of its frames, exact or not: an upper bound of its last
    /// recipient's kernel time.
    last_kernel_bound: Vec<AtomicU64>,
    /// A recipient's frame of this broadcast came in one read with a later frame, so its kernel
    /// time is too late: the broadcast has no exact kernel-time figure.
    kernel_tainted: Vec<AtomicBool>,
}

pub async fn run(t: Arc<Target>, a: RoomArgs, prefix: &str, probe: Probe) -> anyhow::Result<Outcome> {
    let users = login_all(&t, &format!("{prefix}-room"), a.members).await?;
    let others: Vec<String> = users[1..].iter().map(|u| u.id.clone()).collect();
    let conv = t.group(&users[0].token, "bench room", &others).await?;
    let sockets = connect_all(&t, &users, a.send.parallel, 0.0).await?;

    let expected = (a.senders as f64 * a.rate * a.send.duration as f64 * 1.5) as usize + 1000;
    let per = Arc::new(PerSeq {
        count: (0..expected).map(|_| AtomicU32::new(0)).collect(),
        first: (0..expected).map(|_| AtomicU64::new(u64::MAX)).collect(),
        last: (0..expected).map(|_| AtomicU64::new(0)).collect(),
        first_kernel: (0..expected).map(|_| AtomicU64::new(u64::MAX)).collect(),
        last_kernel: (0..expected).map(|_| AtomicU64::new(0)).collect(),
        kernel_tainted: (0..expected).map(|_| AtomicBool::new(false)).collect(),
        last_kernel_bound: (0..expected).map(|_| AtomicU64::new(0)).collect(),
    });
    let coalesced = Arc::new(AtomicU64::new(0));
    let total_s = (a.send.duration + a.send.grace + 5) as usize;
    let start = Instant::now();
    // The kernel stamps in wall-clock time; the senders in µs since `start`.
    let start_unix_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as u64;
    let sent = Arc::new(Timeline::new(start, total_s));
    let acked = Arc::new(Timeline::new(start, total_s));
    let delivered = Arc::new(Timeline::new(start, total_s));
    let errors = Arc::new(AtomicU64::new(0));
    let reorders = Arc::new(AtomicU64::new(0));
    let ack_lat = Arc::new(Merged::default());
    let e2e_lat = Arc::new(Merged::default());
    let stop = CancellationToken::new();
    let text = "x".repeat(a.send.text_bytes.max(1));
    let deadline = start + Duration::from_secs(a.send.duration);
    probe();

    let mut tasks = Vec::new();
    for (k, ws) in sockets.into_iter().enumerate() {
        let rx_clock = ws.get_ref().rx_clock();
        let (sink, mut stream) = ws.split();
        let sender = (k < a.senders).then(|| {
            spawn_sender(
                sink,
                Pace {
                    target: t.clone(),
                    conv: conv.clone(),
                    me: format!("s{k}"),
                    rate: a.rate,
                    text: text.clone(),
                    start,
                    deadline,
                    sent: sent.clone(),
                },
            )
        });
        let (t3, acked, delivered, errors, reorders, ack_lat, e2e_lat, per, stop, coalesced) = (
            t.clone(), acked.clone(), delivered.clone(), errors.clone(), reorders.clone(),
            ack_lat.clone(), e2e_lat.clone(), per.clone(), stop.clone(), coalesced.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h_ack = histogram();
            let mut h_e2e = histogram();
            let mut last = 0u64;
            // The last `msg` read: (broadcast index, kernel latency, read count). Its kernel time
            // is exact only if the next frame came in a later read; it is settled then.
            let mut held: Option<(usize, u64, u64)> = None;
            let settle = |h: (usize, u64, u64), exact: bool| {
                if exact {
                    per.first_kernel[h.0].fetch_min(h.1, Ordering::Relaxed);
                    per.last_kernel[h.0].fetch_max(h.1, Ordering::Relaxed);
                } else {
                    per.kernel_tainted[h.0].store(true, Ordering::Relaxed);
                    coalesced.fetch_add(1, Ordering::Relaxed);
                }
            };
            loop {
                let m = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = stream.next() => m,
                };
                let Some(Ok(m)) = m else { break };
                let Some(f) = decode(t3.codec, &m) else { continue };
                let now = start.elapsed().as_micros() as u64;
                let sent_at = f.cmid.as_deref().and_then(cmid_micros);
                let lat = sent_at.map(|c| now.saturating_sub(c).max(1));
                // Arrival at this host: the kernel's time of the last segment read.
                let reads = rx_clock.reads.load(Ordering::Relaxed);
                if let Some(h) = held.take() {
                    settle(h, h.2 != reads);
                }
                let rx = rx_clock.last_rx_us.load(Ordering::Relaxed);
                let lat_kernel = sent_at.filter(|_| rx > 0).map(|c| rx.saturating_sub(start_unix_us).saturating_sub(c).max(1));
                match (f.ty.as_str(), f.seq, lat) {
                    ("ack", Some(_), Some(l)) => {
                        let _ = h_ack.record(l);
                        acked.add(1);
                    }
                    ("msg", Some(seq), Some(l)) => {
                        let _ = h_e2e.record(l);
                        if seq <= last {
                            reorders.fetch_add(1, Ordering::Relaxed);
                        }
                        last = seq;
                        if let Some(i) = (seq as usize).checked_sub(1).filter(|i| *i < per.count.len()) {
                            per.count[i].fetch_add(1, Ordering::Relaxed);
                            per.first[i].fetch_min(l, Ordering::Relaxed);
                            per.last[i].fetch_max(l, Ordering::Relaxed);
                            match lat_kernel {
                                Some(lk) => {
                                    per.last_kernel_bound[i].fetch_max(lk, Ordering::Relaxed);
                                    held = Some((i, lk, reads))
                                }
                                None => per.kernel_tainted[i].store(true, Ordering::Relaxed),
                            }
                        }
                        delivered.add(1);
                    }
                    ("error", _, _) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            if let Some(h) = held.take() {
                settle(h, true);
            }
            ack_lat.add(&h_ack);
            e2e_lat.add(&h_e2e);
            if let Some(s) = sender {
                let _ = s.await;
            }
        }));
    }

    let fanout = (a.members - 1) as u64;
    let pb = spinner();
    let give_up = deadline + Duration::from_secs(a.send.grace);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (s, ac, d) = (sent.get(), acked.get(), delivered.get());
        pb.set_message(format!(
            "sent {s}  acked {ac}  delivered {d}  ({:.0} deliveries/s)",
            d as f64 / start.elapsed().as_secs_f64()
        ));
        let now = Instant::now();
        let errs = errors.load(Ordering::Relaxed);
        if now >= deadline && ((ac + errs >= s && d >= ac * fanout) || now >= give_up) {
            break;
        }
    }
    probe();
    let drain_end = start.elapsed();
    pb.finish_and_clear();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }

    let mut out = Outcome::default();
    let ac = acked.get();
    let mut h_first = histogram();
    let mut h_last = histogram();
    let (mut h_first_k, mut h_last_k, mut h_last_kb) = (histogram(), histogram(), histogram());
    let (mut complete, mut within, mut within_k, mut lost, mut dup) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut exact_k = 0u64;
    for i in 0..(ac as usize).min(per.count.len()) {
        let n = per.count[i].load(Ordering::Relaxed) as u64;
        if n < fanout {
            lost += fanout - n;
        } else if n > fanout {
            dup += n - fanout;
        }
        if n > 0 {
            let _ = h_first.record(per.first[i].load(Ordering::Relaxed).max(1));
            let l = per.last[i].load(Ordering::Relaxed).max(1);
            let _ = h_last.record(l);
            let (fk, lk) = (per.first_kernel[i].load(Ordering::Relaxed), per.last_kernel[i].load(Ordering::Relaxed));
            // Kernel-time figures only for broadcasts every recipient of which has an exact one.
            let exact = n >= fanout && lk > 0 && !per.kernel_tainted[i].load(Ordering::Relaxed);
            let bound = per.last_kernel_bound[i].load(Ordering::Relaxed);
            if n >= fanout && bound > 0 {
                let _ = h_last_kb.record(bound.max(1));
            }
            if exact {
                exact_k += 1;
                let _ = h_first_k.record(fk.max(1));
                let _ = h_last_k.record(lk.max(1));
            }
            if n >= fanout {
                complete += 1;
                if l <= a.within_ms * 1000 {
                    within += 1;
                }
                if exact && lk <= a.within_ms * 1000 {
                    within_k += 1;
                }
            }
        }
    }
    let unanswered = sent.get().saturating_sub(acked.get() + errors.load(Ordering::Relaxed));
    if unanswered > 0 {
        out.failures.push(format!("{unanswered} sends got neither an ack nor an error"));
    }
    let reorder = reorders.load(Ordering::Relaxed);
    let errs = errors.load(Ordering::Relaxed);
    if lost > 0 {
        out.failures.push(format!("{lost} deliveries of acked messages missing"));
    }
    if dup > 0 {
        out.failures.push(format!("{dup} duplicate deliveries"));
    }
    if reorder > 0 {
        out.failures.push(format!("{reorder} deliveries out of seq order"));
    }
    if errs > 0 {
        out.failures.push(format!("{errs} error frames"));
    }
    let secs = drain_end.as_secs_f64();
    out.window_s = secs;
    out.results = json!({
        "members": a.members,
        "senders": a.senders,
        "sent": sent.get(),
        "acked": ac,
        "delivered": delivered.get(),
        "expected_deliveries": ac * fanout,
        "errors": errs,
        "lost": lost,
        "duplicates": dup,
        "reordered": reorder,
        "offered_broadcasts_per_s": a.rate * a.senders as f64,
        "deliveries_per_s": delivered.get() as f64 / secs,
        "broadcasts_complete": complete,
        "broadcasts_complete_within": within,
        "within_ms": a.within_ms,
        "share_within": if ac > 0 { within as f64 / ac as f64 } else { 0.0 },
        "share_within_kernel": if exact_k > 0 { within_k as f64 / exact_k as f64 } else { 0.0 },
        "kernel_exact_broadcasts": exact_k,
        "kernel_coalesced_frames": coalesced.load(Ordering::Relaxed),
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    out.latency.insert("ack".into(), ack_lat.summary());
    out.latency.insert("delivery".into(), e2e_lat.summary());
    out.latency.insert("fanout_first".into(), Latency::of(&h_first));
    out.latency.insert("fanout_last".into(), Latency::of(&h_last));
    // The same, to the moment each member's bytes reached this host (kernel receive time), over
    // the broadcasts whose every frame has an exact kernel time (`kernel_exact_broadcasts`).
    out.latency.insert("fanout_first_kernel".into(), Latency::of(&h_first_k));
    out.latency.insert("fanout_last_kernel".into(), Latency::of(&h_last_k));
    // Every complete broadcast, each frame at the kernel time of its read: never early, late by
    // up to the gap to a later segment read with it.
    out.latency.insert("fanout_last_kernel_bound".into(), Latency::of(&h_last_kb));
    let upto = drain_end.as_secs() as usize + 1;
    out.timeline.insert("sent".into(), sent.series(upto));
    out.timeline.insert("delivered".into(), delivered.series(upto));
    Ok(out)
}
