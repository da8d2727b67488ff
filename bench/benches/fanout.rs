//! Fan-out of one message to N local sessions through the hub: the work the server does per
//! delivery besides the socket write (building the frame once, queueing it on each session).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jiebanke_chat_core::ports::{Event, EventSink};
use jiebanke_chat_core::*;
use jiebanke_gateway::hub::{Hub, SessionShared};
use jiebanke_gateway::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::collections::VecDeque;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for n in [10usize, 100, 1000, 10_000] {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let mut sessions = Vec::with_capacity(n);
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let user = UserId::new(i as i64 + 1).unwrap();
            let s = Arc::new(SessionShared::new(SessionId::new(format!("s{i}")), user, 64));
            hub.register(s.clone());
            sessions.push(s);
            members.push(user);
        }
        let mut out = VecDeque::new();
        let members: Arc<[UserId]> = members.into();
        let message = Arc::new(Message {
            conv: ConvId::new(1).unwrap(),
            seq: Seq::new(1),
            from: UserId::new(1).unwrap(),
            cmid: ClientMsgId::parse("c1").unwrap(),
            ts: 1,
            body: MessageBody::Text(MessageText::parse("一起去看日出吧").unwrap()),
        });
        let event = Event::Message { members: members.clone(), origin: None, message };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    hub.deliver(&event);
                    spent += t.elapsed();
                    for s in &sessions {
                        s.take_queued(&mut out);
                        for f in out.drain(..) {
                            // Encoding happens once per codec per message, in the first writer.
                            std::hint::black_box(f.message(jiebanke_gateway::frame::Codec::Json));
                        }
                    }
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
