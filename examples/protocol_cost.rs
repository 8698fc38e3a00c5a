//! Weighs the wire encoding: sessile's JSON text frames against MessagePack
//! (`rmp-serde`, the usual compact binary choice) on the frames that matter,
//! a small `op` (one checkout step) and a `welcome` carrying a 100 KB state:
//! bytes on the wire, then encode + decode time per frame. Native, release.
//!
//! `cargo run --release --example protocol_cost`

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};
use sessile::core::protocol::{
    decode, encode, CatchUp, Message, Op, OpId, Welcome, DEFAULT_MAX_FRAME_BYTES,
};

fn op() -> Message {
    Message::Op(Op {
        id: OpId {
            client: "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47".into(),
            seq: 42,
        },
        base: 41,
        patch: json!({"step": "checkout", "email": "ada@example.com", "items": {"A-1": {"qty": 2}}}),
        to: Some("checkout".into()),
    })
}

fn welcome() -> Message {
    let items: Vec<Value> = (0..1700)
        .map(|i| json!({"sku": format!("SKU-{i:05}"), "qty": i % 7 + 1, "price": 12.99, "note": "gift wrap"}))
        .collect();
    Message::Welcome(Welcome {
        protocol: 1,
        version: 120,
        status: "checkout".into(),
        expires_at: 1_800_000_000_000,
        heartbeat_ms: 5000,
        applied_seq: 41,
        server_time: 1_700_000_000_000,
        catch_up: CatchUp::Snapshot {
            state: json!({"step": "checkout", "items": items}),
        },
    })
}

/// Median of `runs` timings of `f`, in nanoseconds per call.
fn time(runs: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[runs / 2]
}

fn main() {
    println!("frame     encoding      bytes   encode+decode");
    for (name, msg, iters) in [("op", op(), 20_000), ("welcome", welcome(), 50)] {
        let text = encode(&msg);
        let json_ns = time(9, iters, || {
            let t = encode(black_box(&msg));
            black_box(decode(t.as_bytes(), DEFAULT_MAX_FRAME_BYTES).unwrap());
        });
        let bin = rmp_serde::to_vec_named(&msg).unwrap();
        let back: Message = rmp_serde::from_slice(&bin).unwrap();
        assert_eq!(back, msg, "MessagePack round trip");
        let bin_ns = time(9, iters, || {
            let b = rmp_serde::to_vec_named(black_box(&msg)).unwrap();
            black_box(rmp_serde::from_slice::<Message>(&b).unwrap());
        });
        for (enc, bytes, ns) in [
            ("JSON", text.len(), json_ns),
            ("MessagePack", bin.len(), bin_ns),
        ] {
            println!("{name:<9} {enc:<12} {bytes:>7}   {:>9.1} us", ns / 1000.0);
        }
    }
}
