//! Replays the fuzzing campaign's corpus (`fuzz/corpus/<target>/`) and every crash it found
//! (`fuzz/regressions/<target>/`) through the targets' bodies (`jiebanke::fuzzing`), as
//! ordinary tests: what once broke the server stays fixed. A panic on any thread (a server
//! task's included) fails the test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if p.is_file() && !hidden {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    count_panics();
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(|| run(&data));
        assert!(r.is_ok(), "{target}: {} broke the contract", f.display());
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "{target}: a panic on another thread");
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn frames_corpus() {
    replay("frames", jiebanke::fuzzing::frames);
}

#[test]
fn tokens_corpus() {
    replay("tokens", jiebanke::fuzzing::tokens);
}

#[test]
fn rest_body_corpus() {
    replay("rest_body", jiebanke::fuzzing::rest_body);
}

#[test]
fn session_stream_corpus() {
    replay("session_stream", jiebanke::fuzzing::session_stream);
}
