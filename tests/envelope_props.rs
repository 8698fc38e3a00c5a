//! Property tests of snapshot envelope v1 (native only): arbitrary JSON round
//! trips at every size around the compression threshold, and every single-bit
//! flip and every truncation of an encoded snapshot is an error, never Ok and
//! never a panic.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use serde_json::Value;
use sessile::core::envelope::{decode, encode, EnvelopeConfig, SnapshotMeta, FLAG_COMPRESSED};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_meta() -> impl Strategy<Value = SnapshotMeta> {
    (any::<u16>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(g, s, v, t)| SnapshotMeta {
        generation: g,
        schema_version: s,
        state_version: v,
        modified_at_ms: t,
    })
}

/// `{"pad":"...","v":<value>}` grown with padding to exactly `len` bytes
/// (or left as is when the value alone is longer).
fn json_of_len(value: &Value, len: usize) -> String {
    let body = serde_json::to_string(value).unwrap();
    let bare = format!("{{\"pad\":\"\",\"v\":{body}}}");
    let pad = len.saturating_sub(bare.len());
    // Repetitive padding, so that deflate actually saves bytes above the threshold.
    format!(
        "{{\"pad\":\"{}\",\"v\":{body}}}",
        "ab".repeat(pad).get(..pad).unwrap_or("")
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_round_trips(value in arb_json(), meta in arb_meta()) {
        let json = serde_json::to_string(&value).unwrap();
        let cfg = EnvelopeConfig::default();
        let snap = decode(&encode(&json, &meta, &cfg).unwrap(), &cfg).unwrap();
        prop_assert_eq!(&snap.json, &json);
        prop_assert_eq!(snap.meta, meta);
        prop_assert!(serde_json::from_str::<Value>(&snap.json).is_ok());
    }

    #[test]
    fn sizes_around_the_threshold_round_trip(
        value in arb_json(),
        meta in arb_meta(),
        delta in -2i64..=2,
    ) {
        let cfg = EnvelopeConfig::default();
        let target = (cfg.compress_above as i64 + delta) as usize;
        let json = json_of_len(&value, target);
        let bytes = encode(&json, &meta, &cfg).unwrap();
        let compressed = bytes[5] & FLAG_COMPRESSED != 0;
        if json.len() <= cfg.compress_above {
            prop_assert!(!compressed, "{} bytes must not be compressed", json.len());
        } else {
            prop_assert!(compressed, "{} repetitive bytes must be compressed", json.len());
        }
        let snap = decode(&bytes, &cfg).unwrap();
        prop_assert_eq!(snap.json, json);
        prop_assert_eq!(snap.compressed, compressed);
    }

    #[test]
    fn every_bit_flip_and_truncation_of_a_small_snapshot_is_an_error(
        value in arb_json(),
        meta in arb_meta(),
        compress in any::<bool>(),
    ) {
        let cfg = EnvelopeConfig {
            compress_above: if compress { 0 } else { usize::MAX },
            ..EnvelopeConfig::default()
        };
        // 600 bytes of repetitive padding: deflate always saves bytes on it,
        // so the compressed case really is compressed.
        let bare = serde_json::to_string(&value).unwrap().len() + 20;
        let json = json_of_len(&value, bare + 600);
        let bytes = encode(&json, &meta, &cfg).unwrap();
        prop_assert_eq!(bytes[5] & FLAG_COMPRESSED != 0, compress);
        assert_every_bit_flip_fails(&bytes, &cfg);
        assert_every_truncation_fails(&bytes, &cfg);
    }

    #[test]
    fn every_truncation_and_sampled_flips_of_a_large_snapshot_are_errors(
        value in arb_json(),
        meta in arb_meta(),
        bits in prop::collection::vec(any::<prop::sample::Index>(), 64),
    ) {
        let cfg = EnvelopeConfig::default();
        let json = json_of_len(&value, 3 * cfg.compress_above);
        let bytes = encode(&json, &meta, &cfg).unwrap();
        for bit in bits {
            let bit = bit.index(bytes.len() * 8);
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bad, &cfg).is_err(), "flip of bit {} decoded", bit);
        }
        assert_every_truncation_fails(&bytes, &cfg);
    }
}

/// Flips each bit of `bytes` in turn; every result must be an error.
fn assert_every_bit_flip_fails(bytes: &[u8], cfg: &EnvelopeConfig) {
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(decode(&bad, cfg).is_err(), "flip of bit {bit} decoded");
    }
}

/// Cuts `bytes` at every length; every result must be an error.
fn assert_every_truncation_fails(bytes: &[u8], cfg: &EnvelopeConfig) {
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len], cfg).is_err(),
            "truncation to {len} decoded"
        );
    }
}
