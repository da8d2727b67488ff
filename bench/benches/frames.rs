//! Frame decode and encode, JSON and MessagePack: the per-frame cost every session pays.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jiebanke_gateway::frame::{decode, Codec, Outbound, ServerFrame, WireBody, WireMessage};
use std::hint::black_box;

fn send_json() -> Vec<u8> {
    r#"{"type":"send","id":42,"conv":"1234","cmid":"u17.4711.1795630000","body":{"kind":"text","text":"明天早上八点在古城南门集合，一起去洱海骑行！"}}"#.as_bytes().to_vec()
}

fn msg_frame() -> ServerFrame {
    ServerFrame::Msg(WireMessage {
        conv: "1234".into(),
        seq: 98765,
        from: "17".into(),
        cmid: "u17.4711.1795630000".into(),
        ts: 1_795_630_000_123,
        body: WireBody::Text { text: "明天早上八点在古城南门集合，一起去洱海骑行！".into() },
    })
}

fn bench(c: &mut Criterion) {
    let json = send_json();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let mp = rmp_serde::to_vec_named(&v).unwrap();
    let mut g = c.benchmark_group("decode_send");
    g.throughput(Throughput::Elements(1));
    g.bench_function("json", |b| b.iter(|| decode(Codec::Json, black_box(&json)).unwrap()));
    g.bench_function("msgpack", |b| b.iter(|| decode(Codec::MsgPack, black_box(&mp)).unwrap()));
    g.bench_function("json_invalid", |b| {
        let bad = br#"{"type":"send","id":42,"conv":"1234","cmid":5}"#;
        b.iter(|| decode(Codec::Json, black_box(bad)).unwrap_err())
    });
    g.finish();

    let mut g = c.benchmark_group("encode_msg");
    g.throughput(Throughput::Elements(1));
    g.bench_function("json", |b| b.iter(|| Outbound::new(black_box(msg_frame())).message(Codec::Json)));
    g.bench_function("msgpack", |b| b.iter(|| Outbound::new(black_box(msg_frame())).message(Codec::MsgPack)));
    // Fan-out reuses the bytes: the second session of the same codec costs a clone.
    g.bench_function("json_shared_second_session", |b| {
        let out = Outbound::new(msg_frame());
        out.message(Codec::Json);
        b.iter(|| black_box(&out).message(Codec::Json))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
