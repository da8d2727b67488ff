//! The `jiebanke-loadtest` library: drives a Jiebanke server (or the Node.js peer, which speaks the same
//! protocol subset) with real sessions and reports throughput, latency, memory and CPU, with
//! every message checked for loss, duplication and order.
//!
//! Layout: `client` (REST and WebSocket), `scenario::*` (connect, chat, room, match, rest, shop), `stats`
//! (HDR histograms, timelines, the JSON report), `sys` (CPU and memory from /proc), `plot` (SVG).

pub mod client;
mod plot;
pub mod scenario;
pub mod stats;
pub mod sys;

use clap::{Parser, Subcommand};
pub use stats::Report;
use client::{Codec, Target};
use scenario::Probe;
use stats::{LoadgenUse, ServerUse};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser, Debug)]
#[command(name = "jiebanke-loadtest", about = "Load generator for Jiebanke's realtime protocol")]
pub struct Cli {
    /// The server's HTTP/WebSocket address.
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    pub target: SocketAddr,
    #[arg(long, global = true, value_enum, default_value = "json")]
    pub codec: Codec,
    /// Source addresses to spread sessions over (127.0.0.2 and up); each adds ~28k ports.
    #[arg(long, global = true, default_value_t = 1)]
    pub sources: usize,
    /// Skip this many source addresses (start at 127.0.0.(2+N)): give each of several load
    /// generator processes its own.
    #[arg(long, global = true, default_value_t = 0)]
    pub source_offset: usize,
    /// The server's process id, to read its CPU time and memory from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// A name for the run in reports (e.g. "jiebanke-sqlite", "node-ws-memory").
    #[arg(long, global = true, default_value = "run")]
    pub label: String,
    /// Where to write the JSON report (default: loadtest-report-<scenario>-<label>.json).
    #[arg(long, global = true)]
    pub report: Option<PathBuf>,
    /// Where to write the SVG plot (default: the report's path with .svg).
    #[arg(long, global = true)]
    pub plot: Option<PathBuf>,
    /// Prefix of the login codes, so that runs against one server do not share users.
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Ramp to N idle sessions, hold them, report memory per session and the ramp rate.
    Connect(scenario::connect::ConnectArgs),
    /// Users in direct pairs sending at a rate; acked/s, ack and delivery latency, checked.
    Chat(scenario::chat::ChatArgs),
    /// One group of M members with K senders; deliveries/s and fan-out latency, checked.
    Room(scenario::room::RoomArgs),
    /// Travellers asking for companions; proposals/s and their latency, checked.
    Match(scenario::matching::MatchArgs),
    /// A mixed read/write load on the REST API.
    Rest(scenario::rest::RestArgs),
    /// Buyers browse, order and pay flowers (a hot product with little stock among many);
    /// merchants' sessions get the alerts. Orders/s and paid/s, no oversell, every alert, checked.
    Shop(scenario::shop::ShopArgs),
}

/// A snapshot at a window edge: the load generator's CPU, the server's CPU and RSS (KiB).
type Mark = (sys::Cpu, Option<sys::Cpu>, Option<u64>);

/// Runs one scenario, prints the summary, writes the report and the plot, and returns the
/// report (whose `failures` say whether every check passed).
pub async fn run(cli: Cli) -> anyhow::Result<Report> {
    let nofile = sys::raise_nofile();
    let target = Arc::new(Target::new(cli.target, cli.codec, cli.sources, cli.source_offset));
    let prefix = cli.prefix.clone().unwrap_or_else(|| format!("lt{}", std::process::id()));
    let marks: Arc<Mutex<Vec<Mark>>> = Arc::new(Mutex::new(Vec::new()));
    let probe: Probe = {
        let (marks, pid) = (marks.clone(), cli.server_pid);
        Arc::new(move || {
            let entry = (sys::self_cpu(), pid.and_then(sys::proc_cpu), pid.and_then(sys::proc_rss_kib));
            marks.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        })
    };
    let started_unix_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let wall = std::time::Instant::now();
    let (name, params, outcome) = match cli.scenario {
        Scenario::Connect(a) => {
            let needed = a.sessions + 64;
            if needed as u64 > nofile {
                anyhow::bail!(
                    "{} sessions need about {needed} open files, and this process may hold {nofile} \
                     (ulimit -Hn): run several load generators with --prefix each",
                    a.sessions
                );
            }
            ("connect", serde_json::to_value(&a)?, scenario::connect::run(target.clone(), a, &prefix, cli.server_pid, probe).await?)
        }
        Scenario::Chat(a) => ("chat", serde_json::to_value(&a)?, scenario::chat::run(target.clone(), a, &prefix, probe).await?),
        Scenario::Room(a) => ("room", serde_json::to_value(&a)?, scenario::room::run(target.clone(), a, &prefix, probe).await?),
        Scenario::Rest(a) => ("rest", serde_json::to_value(&a)?, scenario::rest::run(target.clone(), a, &prefix, probe).await?),
        Scenario::Match(a) => ("match", serde_json::to_value(&a)?, scenario::matching::run(target.clone(), a, &prefix, probe).await?),
        Scenario::Shop(a) => ("shop", serde_json::to_value(&a)?, scenario::shop::run(target.clone(), a, &prefix, probe).await?),
    };
    let marks = marks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (first, last) = (marks.first().cloned(), marks.last().cloned());
    let server = match (cli.server_pid, first, last) {
        (Some(pid), Some((_, Some(c0), r0)), Some((_, Some(c1), r1))) => {
            Some(ServerUse { pid, cpu: c1.since(c0), rss_start_kib: r0, rss_end_kib: r1 })
        }
        _ => None,
    };
    let loadgen_cpu = match (first, last) {
        (Some((c0, _, _)), Some((c1, _, _))) => c1.since(c0),
        _ => sys::self_cpu(),
    };
    let mut results = outcome.results;
    // CPU per unit of work, the figure that compares servers independently of the load level.
    let unit = ["delivered", "acked", "proposals", "requests", "orders_created"]
        .iter()
        .find_map(|k| results.get(*k).and_then(|v| v.as_u64()).filter(|n| *n > 0).map(|n| (*k, n)));
    if let (Some(s), Some((what, n))) = (&server, unit) {
        results.insert(format!("server_user_us_per_{what}"), (s.cpu.user_s * 1e6 / n as f64).into());
        results.insert(format!("server_system_us_per_{what}"), (s.cpu.system_s * 1e6 / n as f64).into());
        results.insert("server_cpu_share".into(), (s.cpu.total() / outcome.window_s.max(1e-9)).into());
    }
    results.insert("loadgen_cpu_share".into(), (loadgen_cpu.total() / outcome.window_s.max(1e-9)).into());
    let report = Report {
        scenario: name.into(),
        target: cli.target.to_string(),
        label: cli.label.clone(),
        params,
        started_unix_ms,
        wall_s: wall.elapsed().as_secs_f64(),
        results: serde_json::Value::Object(results),
        latency: outcome.latency,
        timeline: outcome.timeline,
        server,
        loadgen: LoadgenUse { cpu: loadgen_cpu, rss_kib: sys::self_rss_kib() },
        failures: outcome.failures,
    };
    print_summary(&report);
    let report_path = cli.report.unwrap_or_else(|| PathBuf::from(format!("loadtest-report-{name}-{}.json", cli.label)));
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)?)?;
    let plot_path = cli.plot.unwrap_or_else(|| report_path.with_extension("svg"));
    if !report.timeline.is_empty() || !report.latency.is_empty() {
        plot::draw(&report, &plot_path)?;
        println!("report: {}  plot: {}", report_path.display(), plot_path.display());
    } else {
        println!("report: {}", report_path.display());
    }
    Ok(report)
}

fn print_summary(r: &Report) {
    println!("\n{} against {} ({}), {:.1} s", r.scenario, r.target, r.label, r.wall_s);
    if let serde_json::Value::Object(m) = &r.results {
        for (k, v) in m {
            let shown = match v {
                serde_json::Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
                other => other.to_string(),
            };
            println!("  {k:<32} {shown}");
        }
    }
    if !r.latency.is_empty() {
        println!("  {:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "count");
        for (k, l) in &r.latency {
            println!(
                "  {k:<16} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
            );
        }
    }
    if let Some(s) = &r.server {
        println!(
            "  server cpu: user {:.2} s, system {:.2} s; rss {:?} -> {:?} KiB",
            s.cpu.user_s, s.cpu.system_s, s.rss_start_kib, s.rss_end_kib
        );
    }
    println!("  load generator cpu: user {:.2} s, system {:.2} s", r.loadgen.cpu.user_s, r.loadgen.cpu.system_s);
    println!("  checks: {}", if r.failures.is_empty() { "all passed".to_owned() } else { r.failures.join("; ") });
}
