//! The load generator against a real server, small: every scenario runs, measures and finds
//! every message where it should be. (The figures themselves belong in BENCHMARKS.md.)

mod common;
use clap::Parser;
use common::*;

async fn run(app: &TestApp, dir: &TempDir, name: &str, args: &[&str]) -> jiebanke_loadtest::Report {
    let addr = app.addr.to_string();
    let report = dir.0.join(format!("{name}.json"));
    let report_s = report.display().to_string();
    let mut argv = vec!["jiebanke-loadtest", "--target", addr.as_str(), "--report", report_s.as_str(), "--label", "test"];
    argv.extend_from_slice(args);
    let r = jiebanke_loadtest::run(jiebanke_loadtest::Cli::try_parse_from(argv).unwrap()).await.unwrap();
    assert!(report.exists(), "JSON report written");
    assert!(report.with_extension("svg").exists() || name == "connect", "plot written");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_checks_every_message() {
    let db = TestDb::new(Db::Sqlite).await.unwrap();
    let app = spawn_app(&db, |c| {
        c.gateway.msg_rate = std::num::NonZeroU32::new(10_000).unwrap();
        c.gateway.msg_burst = std::num::NonZeroU32::new(10_000).unwrap();
    })
    .await;
    let out = TempDir::new("lt");

    let chat = run(&app, &out, "chat", &["chat", "--pairs", "4", "--rate", "20", "--duration", "2", "--grace", "10"]).await;
    assert!(chat.failures.is_empty(), "{:?}", chat.failures);
    let acked = chat.results["acked"].as_u64().unwrap();
    assert!(acked > 50, "{acked}");
    assert_eq!(chat.results["delivered"].as_u64(), Some(acked), "in a pair each message has one recipient");
    assert_eq!(chat.latency["ack"].count, acked);

    let room = run(&app, &out, "room", &["--codec", "msgpack", "room", "--members", "12", "--senders", "3", "--rate", "5", "--duration", "2"]).await;
    assert!(room.failures.is_empty(), "{:?}", room.failures);
    let acked = room.results["acked"].as_u64().unwrap();
    assert_eq!(room.results["delivered"].as_u64(), Some(acked * 11), "every other member got every broadcast");
    // Broadcasts whose every frame has an exact kernel receive time are counted, and their
    // kernel times are never after the generator read them.
    let exact = room.results["kernel_exact_broadcasts"].as_u64().unwrap();
    assert!(exact <= acked);
    assert_eq!(room.latency["fanout_last_kernel"].count, exact);
    assert!(room.latency["fanout_last_kernel"].max_ms <= room.latency["fanout_last"].max_ms);

    let conn = run(&app, &out, "connect", &["--sources", "3", "connect", "--sessions", "60", "--users", "20", "--hold", "1"]).await;
    assert!(conn.failures.is_empty(), "{:?}", conn.failures);
    assert_eq!(conn.results["sessions"].as_u64(), Some(60));

    let rest = run(&app, &out, "rest", &["rest", "--users", "10", "--concurrency", "4", "--duration", "1"]).await;
    assert!(rest.failures.is_empty(), "{:?}", rest.failures);
    assert!(rest.results["requests"].as_u64().unwrap() > 10);

    let m = run(&app, &out, "match", &["match", "--users", "40", "--destinations", "3", "--rate", "5", "--duration", "2", "--grace", "5"]).await;
    assert!(m.failures.is_empty(), "{:?}", m.failures);
    let proposals = m.results["proposals"].as_u64().unwrap();
    assert!(proposals > 20, "{proposals}");
    assert_eq!(m.results["answered"], m.results["requests"], "every request answered");
    assert_eq!(m.latency["proposal_last"].count, proposals, "every proposal reached both travellers");
}
