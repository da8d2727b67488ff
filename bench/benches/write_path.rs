//! The write path's batching: one `MessageStore::append` transaction of B messages on SQLite
//! (WAL, synchronous=FULL, so each transaction is one fsync), across 50 conversations. The
//! throughput per message shows what group commit buys.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jiebanke_chat_core::ports::{ConversationStore, MessageStore, UserStore};
use jiebanke_chat_core::*;
use jiebanke_storage::SqlStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("jbk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (store, convs, users) = rt.block_on(async {
        let store = SqlStore::connect(&format!("sqlite:{}", dir.join("bench.db").display())).await.unwrap();
        let mut users = Vec::new();
        for i in 0..100 {
            let u = store.upsert_user(&Identity { provider: "dev", subject: format!("b{i}") }, "b", 1).await.unwrap();
            users.push(u.id);
        }
        let mut convs = Vec::new();
        for i in 0..50 {
            convs.push(store.direct_conversation(users[2 * i], users[2 * i + 1], 1).await.unwrap().id);
        }
        (store, convs, users)
    });
    let counter = Arc::new(AtomicU64::new(0));
    let mut g = c.benchmark_group("append_batch_sqlite");
    g.sample_size(20);
    for batch in [1usize, 16, 128, 512] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.to_async(&rt).iter(|| {
                let (store, convs, users, counter) = (store.clone(), convs.clone(), users.clone(), counter.clone());
                async move {
                    let msgs: Vec<NewMessage> = (0..batch)
                        .map(|k| {
                            let n = counter.fetch_add(1, Ordering::Relaxed);
                            let conv = k % convs.len();
                            NewMessage {
                                conv: convs[conv],
                                from: users[2 * conv],
                                cmid: ClientMsgId::parse(&format!("m{n}")).unwrap(),
                                body: MessageBody::Text(MessageText::parse("一起去看日出吧").unwrap()),
                                members: Arc::from(vec![users[2 * conv], users[2 * conv + 1]]),
                            }
                        })
                        .collect();
                    store.append(&msgs, 1).await.unwrap()
                }
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
