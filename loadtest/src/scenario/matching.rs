//! `match`: travellers asking for companions. Each user sends a `match_request` to one of
//! `destinations` (windows chosen so that any two requests to one destination are compatible),
//! waits for its proposal, thinks for `1/rate` seconds, and asks again. Reports proposals per
//! second, the answer's latency, and the proposal's latency to the first and the last of the
//! pair (from the send of the request that completed the match); checks that every proposal
//! reached exactly its two travellers, each named as the other's peer, and that every request
//! was answered.

use super::{connect_all, login_all, spinner, Outcome, Probe};
use crate::client::{decode, Codec, Target};
use crate::stats::{histogram, Latency, Timeline};
use futures_util::{SinkExt, StreamExt};
use jiebanke_chat_core::matching::Day;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct MatchArgs {
    /// Travellers, each with one session.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Destinations the requests spread over.
    #[arg(long, default_value_t = 50)]
    pub destinations: usize,
    /// Requests per second each user makes at most (it thinks 1/rate s after each proposal).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of requests.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds to wait after the last request for the last answers and proposals.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
    /// Sessions opened in parallel.
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
}

/// What one session saw.
#[derive(Default)]
struct Seen {
    /// (match id, peer, received at µs).
    proposals: Vec<(String, String, u64)>,
    /// Requests that completed a match: (match id, sent at µs).
    completed: Vec<(String, u64)>,
    requests: u64,
    answers: u64,
    errors: u64,
}

fn frame(codec: Codec, v: serde_json::Value) -> Message {
    match codec {
        Codec::Json => Message::Text(v.to_string().into()),
        Codec::Msgpack => Message::Binary(rmp_serde::to_vec_named(&v).expect("encode").into()),
    }
}

/// A cheap deterministic spread (SplitMix64), so that runs are comparable.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What the sessions saw, checked: every proposal reached exactly its two travellers, each named
/// as the other's peer; every `matched` answer's proposal came; every request was answered.
struct Checked {
    failures: Vec<String>,
    requests: u64,
    answers: u64,
    errors: u64,
    /// Proposals that passed, and those that did not.
    made: u64,
    bad: u64,
    /// From the send of the request that completed a match to the first and the last of the pair
    /// receiving the proposal (µs).
    first: hdrhistogram::Histogram<u64>,
    last: hdrhistogram::Histogram<u64>,
}

/// `seen[k]` is session `k`'s, whose user id is `ids[k]`.
fn check(seen: &[Seen], ids: &[String]) -> Checked {
    let mut failures = Vec::new();
    let mut by_match: HashMap<&str, Vec<(usize, &str, u64)>> = HashMap::new();
    let mut sent_of: HashMap<&str, u64> = HashMap::new();
    let (mut requests, mut answers, mut errors) = (0u64, 0u64, 0u64);
    for (k, s) in seen.iter().enumerate() {
        requests += s.requests;
        answers += s.answers;
        errors += s.errors;
        for (m, peer, at) in &s.proposals {
            by_match.entry(m).or_default().push((k, peer, *at));
        }
        for (m, sent) in &s.completed {
            if sent_of.insert(m, *sent).is_some() {
                failures.push(format!("match {m} completed by two requests"));
            }
        }
    }
    let (mut first, mut last) = (histogram(), histogram());
    let mut bad = 0u64;
    for (m, got) in &by_match {
        let ok = got.len() == 2 && got[0].0 != got[1].0 && got[0].1 == ids[got[1].0] && got[1].1 == ids[got[0].0];
        if !ok {
            bad += 1;
            if failures.len() < 20 {
                failures.push(format!("match {m}: proposal seen as {got:?}"));
            }
            continue;
        }
        if let Some(sent) = sent_of.get(m) {
            let (a1, a2) = (got[0].2.min(got[1].2), got[0].2.max(got[1].2));
            let _ = first.record(a1.saturating_sub(*sent).max(1));
            let _ = last.record(a2.saturating_sub(*sent).max(1));
        }
    }
    let missing = sent_of.keys().filter(|m| !by_match.contains_key(*m)).count();
    if missing > 0 {
        failures.push(format!("{missing} matches answered `matched` whose proposal never came"));
    }
    if requests > answers + errors {
        failures.push(format!("{} requests got neither an answer nor an error", requests - answers - errors));
    }
    if errors > 0 {
        failures.push(format!("{errors} error frames"));
    }
    Checked { failures, requests, answers, errors, made: by_match.len() as u64 - bad, bad, first, last }
}

pub async fn run(t: Arc<Target>, a: MatchArgs, prefix: &str, probe: Probe) -> anyhow::Result<Outcome> {
    let users = login_all(&t, &format!("{prefix}-match"), a.users).await?;
    let ids: Arc<Vec<String>> = Arc::new(users.iter().map(|u| u.id.clone()).collect());
    let sockets = connect_all(&t, &users, a.parallel, 0.0).await?;

    let total_s = (a.duration + a.grace + 5) as usize;
    let start = Instant::now();
    let requests = Arc::new(Timeline::new(start, total_s));
    let proposals = Arc::new(Timeline::new(start, total_s));
    let errors = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let seen: Arc<Vec<Mutex<Seen>>> = Arc::new((0..a.users).map(|_| Mutex::new(Seen::default())).collect());
    let reply_lat = Arc::new(crate::stats::Merged::default());
    let deadline = start + Duration::from_secs(a.duration);
    let give_up = deadline + Duration::from_secs(a.grace);
    let today = Day::of_ms(jiebanke_chat_core::now_ms()).days();
    let think = Duration::from_secs_f64(1.0 / a.rate.max(0.001));
    let dests = a.destinations.max(1);
    probe();

    let mut tasks = Vec::new();
    for (k, mut ws) in sockets.into_iter().enumerate() {
        let (t, requests, proposals, errors, answered, seen, reply_lat) =
            (t.clone(), requests.clone(), proposals.clone(), errors.clone(), answered.clone(), seen.clone(), reply_lat.clone());
        let codec = t.codec;
        tasks.push(tokio::spawn(async move {
            let mut mine = Seen::default();
            let mut h_reply = histogram();
            // The first requests are spread over one think time.
            let first = think.mul_f64((mix(k as u64) % 1000) as f64 / 1000.0);
            let mut next_at = Some(tokio::time::Instant::now() + first);
            let mut n = 0u64;
            // Request id → sent at (µs since start).
            let mut pending: HashMap<u64, u64> = HashMap::new();
            // Whether the last request is still unmatched (no proposal yet).
            let mut waiting = false;
            // After the deadline, a waiting request is withdrawn; `false` from the cancel means it
            // was matched meanwhile and its proposal is on its way.
            let mut cancel_sent = false;
            let (deadline_t, give_up_t) = (tokio::time::Instant::from_std(deadline), tokio::time::Instant::from_std(give_up));
            loop {
                let at = next_at;
                let sleep = async move {
                    match at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let m = tokio::select! {
                    _ = sleep => {
                        next_at = None;
                        if Instant::now() >= deadline {
                            if waiting && pending.is_empty() && !cancel_sent {
                                cancel_sent = true;
                                n += 1;
                                if ws.send(frame(codec, json!({"type":"match_cancel","id":n}))).await.is_err() {
                                    break;
                                }
                                pending.insert(n, start.elapsed().as_micros() as u64);
                            } else if !waiting && pending.is_empty() {
                                break;
                            }
                            continue;
                        }
                        n += 1;
                        let r = mix((k as u64) << 20 | n);
                        let from = today + 10 + (r % 3) as i32;
                        let to = from + 4 + ((r >> 8) % 4) as i32;
                        let dest = format!("城市{}", (r >> 16) % dests as u64);
                        let v = json!({"type":"match_request","id":n,"destination":dest,
                            "from":Day::from_days(from).to_string(),"to":Day::from_days(to).to_string()});
                        let sent = start.elapsed().as_micros() as u64;
                        if ws.send(frame(codec, v)).await.is_err() {
                            break;
                        }
                        pending.insert(n, sent);
                        waiting = true;
                        mine.requests += 1;
                        requests.add(1);
                        // Wakes at the deadline to withdraw, if still unmatched then.
                        next_at = Some(deadline_t);
                        continue;
                    }
                    m = tokio::time::timeout_at(give_up_t, ws.next()) => m,
                };
                let Ok(Some(Ok(m))) = m else { break };
                let Some(f) = decode(t.codec, &m) else { continue };
                let now = start.elapsed().as_micros() as u64;
                match f.ty.as_str() {
                    "match_requested" => {
                        let Some(sent) = f.req_id().and_then(|id| pending.remove(&id)) else { continue };
                        let _ = h_reply.record(now.saturating_sub(sent).max(1));
                        mine.answers += 1;
                        answered.fetch_add(1, Ordering::Relaxed);
                        if f.matched == Some(true) {
                            if let Some(id) = f.match_id.clone() {
                                mine.completed.push((id, sent));
                            }
                        }
                    }
                    "match_cancelled" => {
                        f.req_id().and_then(|id| pending.remove(&id));
                        if f.cancelled == Some(true) {
                            waiting = false;
                        }
                    }
                    "match_proposal" => {
                        mine.proposals.push((f.match_id.clone().unwrap_or_default(), f.peer.clone().unwrap_or_default(), now));
                        proposals.add(1);
                        waiting = false;
                        next_at = Some(tokio::time::Instant::now() + think);
                    }
                    "error" => {
                        mine.errors += 1;
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = f.req_id() {
                            pending.remove(&id);
                        }
                        waiting = false;
                        next_at = Some(tokio::time::Instant::now() + think);
                    }
                    _ => {}
                }
                if Instant::now() >= deadline {
                    if !waiting && pending.is_empty() {
                        break;
                    }
                    if next_at.is_none_or(|a| a > tokio::time::Instant::now()) && waiting && pending.is_empty() && !cancel_sent {
                        next_at = Some(tokio::time::Instant::now());
                    }
                }
            }
            let _ = ws.close(None).await;
            reply_lat.add(&h_reply);
            *seen[k].lock().unwrap_or_else(|e| e.into_inner()) = mine;
        }));
    }

    let pb = spinner();
    let window_end;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (r, p) = (requests.get(), proposals.get());
        pb.set_message(format!(
            "requests {r}  answered {}  proposals {} ({:.0}/s)  errors {}",
            answered.load(Ordering::Relaxed),
            p / 2,
            p as f64 / 2.0 / start.elapsed().as_secs_f64(),
            errors.load(Ordering::Relaxed)
        ));
        if Instant::now() >= deadline {
            window_end = start.elapsed();
            break;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    probe();
    let drain_end = start.elapsed();
    pb.finish_and_clear();

    // Checks and latencies, per match id.
    let all: Vec<Seen> = seen.iter().map(|s| std::mem::take(&mut *s.lock().unwrap_or_else(|e| e.into_inner()))).collect();
    let c = check(&all, &ids);
    let mut out = Outcome { failures: c.failures, ..Outcome::default() };
    let (reqs, answers, errs, made, bad) = (c.requests, c.answers, c.errors, c.made, c.bad);
    let (h_first, h_last) = (c.first, c.last);
    let window = window_end.as_secs_f64();
    out.window_s = drain_end.as_secs_f64();
    let upto = drain_end.as_secs() as usize + 1;
    out.results = json!({
        "sessions": a.users,
        "requests": reqs,
        "answered": answers,
        "proposals": made,
        "errors": errs,
        "bad_proposals": bad,
        "requests_per_s": reqs as f64 / window,
        "proposals_per_s": made as f64 / drain_end.as_secs_f64(),
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    out.latency.insert("answer".into(), reply_lat.summary());
    out.latency.insert("proposal_first".into(), Latency::of(&h_first));
    out.latency.insert("proposal_last".into(), Latency::of(&h_last));
    out.timeline.insert("requests".into(), requests.series(upto));
    // Each proposal reaches two travellers: the timeline counts proposals, not their deliveries.
    out.timeline.insert("proposals".into(), proposals.series(upto).into_iter().map(|n| n / 2).collect());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(requests: u64, answers: u64, proposals: &[(&str, &str, u64)], completed: &[(&str, u64)]) -> Seen {
        Seen {
            proposals: proposals.iter().map(|(m, p, at)| (m.to_string(), p.to_string(), *at)).collect(),
            completed: completed.iter().map(|(m, at)| (m.to_string(), *at)).collect(),
            requests,
            answers,
            errors: 0,
        }
    }

    fn ids() -> Vec<String> {
        vec!["10".into(), "11".into(), "12".into()]
    }

    #[test]
    fn a_good_run_passes_and_measures_from_the_completing_request() {
        let s = [seen(1, 1, &[("m1", "11", 500)], &[]), seen(1, 1, &[("m1", "10", 300)], &[("m1", 100)]), seen(1, 1, &[], &[])];
        let c = check(&s, &ids());
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        assert_eq!((c.made, c.bad, c.requests), (1, 0, 3));
        assert_eq!((c.first.max(), c.last.max()), (200, 400));
    }

    #[test]
    fn each_kind_of_fault_fails_the_run() {
        // Seen by one traveller only.
        let c = check(&[seen(1, 1, &[("m1", "11", 5)], &[("m1", 1)]), seen(1, 1, &[], &[]), seen(0, 0, &[], &[])], &ids());
        assert_eq!(c.bad, 1);
        assert!(!c.failures.is_empty());
        // The wrong peer named.
        let c = check(&[seen(1, 1, &[("m1", "12", 5)], &[]), seen(1, 1, &[("m1", "10", 5)], &[]), seen(0, 0, &[], &[])], &ids());
        assert_eq!(c.bad, 1);
        // Seen twice by one traveller.
        let c = check(&[seen(1, 1, &[("m1", "11", 5), ("m1", "11", 6)], &[]), seen(1, 1, &[], &[]), seen(0, 0, &[], &[])], &ids());
        assert_eq!(c.bad, 1);
        // Answered `matched` but the proposal never came.
        let c = check(&[seen(1, 1, &[], &[("m9", 1)]), seen(0, 0, &[], &[]), seen(0, 0, &[], &[])], &ids());
        assert!(c.failures.iter().any(|f| f.contains("never came")), "{:?}", c.failures);
        // A request never answered.
        let c = check(&[seen(2, 1, &[], &[]), seen(0, 0, &[], &[]), seen(0, 0, &[], &[])], &ids());
        assert!(c.failures.iter().any(|f| f.contains("neither an answer")), "{:?}", c.failures);
    }
}
