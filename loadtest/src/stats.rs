//! Measurements: HDR latency histograms, a per-second timeline, and the report.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A latency histogram in microseconds, 1 µs .. 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Shared latency histograms, merged from each task's own at its end.
#[derive(Default)]
pub struct Merged {
    pub hist: Mutex<Option<Histogram<u64>>>,
}

impl Merged {
    pub fn add(&self, h: &Histogram<u64>) {
        let mut g = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some(all) => {
                let _ = all.add(h);
            }
            None => *g = Some(h.clone()),
        }
    }
    pub fn summary(&self) -> Latency {
        let g = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map(Latency::of).unwrap_or_default()
    }
}

/// Counts per second since the start, for throughput over time.
pub struct Timeline {
    start: Instant,
    slots: Vec<AtomicU64>,
    pub total: AtomicU64,
}

impl Timeline {
    pub fn new(start: Instant, seconds: usize) -> Timeline {
        Timeline { start, slots: (0..seconds).map(|_| AtomicU64::new(0)).collect(), total: AtomicU64::new(0) }
    }
    pub fn add(&self, n: u64) {
        let s = self.start.elapsed().as_secs() as usize;
        if let Some(slot) = self.slots.get(s) {
            slot.fetch_add(n, Ordering::Relaxed);
        }
        self.total.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    /// Per-second counts up to `upto` seconds.
    pub fn series(&self, upto: usize) -> Vec<u64> {
        self.slots.iter().take(upto).map(|s| s.load(Ordering::Relaxed)).collect()
    }
}

/// The JSON report every scenario writes.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub label: String,
    pub params: serde_json::Value,
    pub started_unix_ms: u128,
    pub wall_s: f64,
    pub results: serde_json::Value,
    pub latency: std::collections::BTreeMap<String, Latency>,
    /// Named per-second series, for the plots.
    pub timeline: std::collections::BTreeMap<String, Vec<u64>>,
    pub server: Option<ServerUse>,
    pub loadgen: LoadgenUse,
    /// Every check that failed; empty when the run is clean.
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct ServerUse {
    pub pid: u32,
    pub cpu: crate::sys::Cpu,
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
}

#[derive(Debug, Serialize, Clone)]
pub struct LoadgenUse {
    pub cpu: crate::sys::Cpu,
    pub rss_kib: Option<u64>,
}
