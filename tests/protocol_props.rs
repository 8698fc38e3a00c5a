//! Property tests of the wire protocol and JSON merge patches (native only):
//! the decoder never panics and never accepts an oversize frame, whatever the
//! bytes; every message round-trips; a composed patch has the effect of the
//! two it replaces; disjoint patches commute.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use serde_json::Value;
use sessile::core::merge_patch::{apply, compose, overlaps};
use sessile::core::protocol::{decode, encode, Message, Op, OpId, Ping};

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", arb_json(2), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Frames that look like protocol messages, so mutations reach deep into the parser.
fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
    (arb_json(3), 1u64..9, any::<u64>()).prop_map(|(patch, seq, base)| {
        encode(&Message::Op(Op {
            id: OpId {
                client: "0123456789abcdef0123456789abcdef".into(),
                seq,
            },
            base,
            patch,
            to: None,
        }))
        .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = decode(&bytes, 256) {
            prop_assert!(["FRAME_TOO_LARGE", "PROTOCOL_ERROR", "UNSUPPORTED_PROTOCOL_VERSION"]
                .contains(&e.code()));
        }
        prop_assert!(bytes.len() <= 256 || decode(&bytes, 256).is_err());
    }

    #[test]
    fn decode_never_panics_on_mutated_frames(
        frame in arb_frame(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let msg = decode(&frame, 1 << 20).unwrap();
        prop_assert_eq!(decode(encode(&msg).as_bytes(), 1 << 20).unwrap(), msg);
        let mut bad = frame.clone();
        for (i, b) in flips {
            let i = i.index(bad.len());
            bad[i] = b;
        }
        let _ = decode(&bad, 1 << 20);
        let truncated = &frame[..cut.index(frame.len())];
        prop_assert_eq!(decode(truncated, 1 << 20).unwrap_err().code(), "PROTOCOL_ERROR");
    }

    #[test]
    fn ping_round_trips(ts in any::<u64>()) {
        let m = Message::Ping(Ping { ts });
        prop_assert_eq!(decode(encode(&m).as_bytes(), 64).unwrap(), m);
    }

    #[test]
    fn composed_patch_equals_the_two_in_turn(t in arb_json(3), a in arb_json(3), b in arb_json(3)) {
        let mut seq = t.clone();
        apply(&mut seq, &a);
        apply(&mut seq, &b);
        if let Some(c) = compose(&a, &b) {
            let mut once = t;
            apply(&mut once, &c);
            prop_assert_eq!(once, seq);
        }
    }

    #[test]
    fn disjoint_patches_commute(t in arb_object(), a in arb_object(), b in arb_object()) {
        // sessile's states and ops are JSON objects (the server refuses others).
        prop_assume!(!overlaps(&a, &b));
        let (mut ab, mut ba) = (t.clone(), t);
        apply(&mut ab, &a);
        apply(&mut ab, &b);
        apply(&mut ba, &b);
        apply(&mut ba, &a);
        prop_assert_eq!(ab, ba);
    }
}

/// Found by the `frame_to_server` fuzz target (fuzz/corpus/frame_to_server/
/// regression-float-roundtrip): without serde_json's `float_roundtrip` a
/// double in a frame could come back as another one after encode and decode.
#[test]
fn doubles_in_a_frame_come_back_bit_for_bit() {
    let frame = br#"{"type":"op","id":{"client":"0123456789abcdef0123456789abcdef","seq":7},"base":0,"patch":{"total":190.62609999999998,"neg":-9223372038854775808,"e":1e+300}}"#;
    let m = decode(frame, 1 << 20).unwrap();
    let Message::Op(op) = &m else { panic!("{m:?}") };
    assert_eq!(op.patch["total"].as_f64(), Some(190.62609999999998));
    assert_eq!(op.patch["neg"].as_f64(), Some(-9223372038854775808.0));
    assert_eq!(decode(encode(&m).as_bytes(), 1 << 20).unwrap(), m);
}
