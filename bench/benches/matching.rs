//! Companion matching: the rule (`pick` over the requests waiting for one destination) and the
//! in-memory pool's `offer`, with N requests already waiting.
//!
//! - `pick/N`: choosing among N waiting requests (none expired, all compatible: the whole list
//!   is scanned for the longest overlap).
//! - `offer_match/N`: an offer that takes one of N waiting requests, then the taken request
//!   offered again (so the pool stays at N); per iteration one match and one insert.
//! - `offer_wait/N`: an offer that matches none of N waiting requests (other windows) and waits,
//!   then is cancelled.
//!
//! The pool never holds two compatible requests (they would have been matched), so the requests
//! waiting for one destination have pairwise disjoint windows here: one day each, on distinct
//! days, which caps N at the 90 days a window may span. `pick` alone is measured on longer
//! lists too.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jiebanke_chat_core::matching::*;
use jiebanke_chat_core::UserId;

fn request(user: i64, dest: &Destination, from: i32, days: i32) -> MatchRequest {
    let today = Day::of_ms(jiebanke_chat_core::now_ms()).days();
    MatchRequest {
        user: UserId::new(user).unwrap(),
        destination: dest.clone(),
        window: TravelWindow::new(Day::from_days(today + from), Day::from_days(today + from + days - 1), Day::from_days(today)).unwrap(),
        min_days: 1,
        created_at: user,
        expires_at: i64::MAX,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let dest = Destination::parse("大理").unwrap();
    let mut g = c.benchmark_group("matching");
    for n in [10usize, 100, 1000, 5000] {
        let waiting: Vec<MatchRequest> = (0..n).map(|i| request(i as i64 + 1, &dest, 10 + (i % 7) as i32, 3 + (i % 5) as i32)).collect();
        let me = request(1_000_000, &dest, 11, 6);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("pick", n), &n, |b, _| b.iter(|| pick(std::hint::black_box(&me), &waiting, 0).map(|r| r.user)));
    }
    for n in [10usize, 45, 89] {
        // One day each, on distinct days 1..=n; `me` spans days 1..=90 and overlaps every one.
        let waiting: Vec<MatchRequest> = (0..n).map(|i| request(i as i64 + 1, &dest, 1 + i as i32, 1)).collect();
        let me = request(1_000_000, &dest, 1, 90);
        let pool = MemoryMatchPool::new(MatchConfig::default());
        rt.block_on(async {
            for w in &waiting {
                assert!(pool.offer(w, 0).await.unwrap().is_none());
            }
        });
        g.bench_with_input(BenchmarkId::new("offer_match", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let taken = pool.offer(&me, 0).await.unwrap().expect("a compatible request waits");
                    assert!(pool.offer(&taken, 0).await.unwrap().is_none());
                })
            })
        });
        let far = request(2_000_000, &dest, 200, 3);
        g.bench_with_input(BenchmarkId::new("offer_wait", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    assert!(pool.offer(&far, 0).await.unwrap().is_none());
                    assert!(pool.cancel(far.user).await.unwrap());
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
