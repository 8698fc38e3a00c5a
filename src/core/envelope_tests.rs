//! Unit tests of the envelope: one test per decode error, each built by hand
//! so that the error could not come from an earlier check.

use super::*;

const META: SnapshotMeta = SnapshotMeta {
    generation: 0,
    schema_version: 3,
    state_version: 42,
    modified_at_ms: 1_790_000_000_000,
};

fn big_json(len: usize) -> String {
    let mut s = String::from("{\"items\":[");
    let mut i = 0;
    while s.len() + 40 < len {
        s.push_str(&format!("{{\"sku\":\"SKU-{i:05}\",\"qty\":{}}},", i % 7));
        i += 1;
    }
    s.push_str("{}]}");
    s
}

/// Re-seals `bytes` after a header edit so that only the edit is wrong.
fn reseal(bytes: &mut [u8]) {
    let sum = checksum_of(bytes);
    put_u32(bytes, OFF_CHECKSUM, sum);
}

fn code(r: Result<Snapshot>) -> &'static str {
    r.expect_err("decoding should fail").code()
}

#[test]
fn small_state_round_trips_uncompressed() {
    let cfg = EnvelopeConfig::default();
    let bytes = encode(r#"{"step":"cart"}"#, &META, &cfg).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + 15);
    let snap = decode(&bytes, &cfg).unwrap();
    assert_eq!(snap.json, r#"{"step":"cart"}"#);
    assert_eq!(snap.meta, META);
    assert!(!snap.compressed);
    assert_eq!(snap.stored_len, bytes.len());
}

#[test]
fn large_state_is_compressed_and_round_trips() {
    let cfg = EnvelopeConfig::default();
    let json = big_json(100 * 1024);
    let bytes = encode(&json, &META, &cfg).unwrap();
    assert!(bytes.len() < json.len() / 3, "stored {} bytes", bytes.len());
    assert_eq!(bytes[OFF_FLAGS], FLAG_COMPRESSED);
    let snap = decode(&bytes, &cfg).unwrap();
    assert!(snap.compressed);
    assert_eq!(snap.json, json);
}

#[test]
fn threshold_is_strictly_above() {
    let json = big_json(2048);
    let at = EnvelopeConfig {
        compress_above: json.len(),
        ..Default::default()
    };
    let below = EnvelopeConfig {
        compress_above: json.len() - 1,
        ..Default::default()
    };
    assert_eq!(encode(&json, &META, &at).unwrap()[OFF_FLAGS], 0);
    assert_eq!(
        encode(&json, &META, &below).unwrap()[OFF_FLAGS],
        FLAG_COMPRESSED
    );
}

#[test]
fn deflate_is_skipped_when_it_does_not_save_bytes() {
    // xorshift noise over all 256 byte values does not deflate smaller.
    let mut x: u32 = 0x9E37_79B9;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut out = vec![7u8; HEADER_LEN];
    assert!(!deflate_if_smaller(&noise, 9, &mut out));
    assert_eq!(out, vec![7u8; HEADER_LEN], "output left as it was");
    let text = vec![b'a'; 20_000];
    assert!(deflate_if_smaller(&text, 1, &mut out));
    assert!(out.len() - HEADER_LEN < 200);
}

#[test]
fn oversize_state_is_refused_before_any_work() {
    let cfg = EnvelopeConfig {
        max_raw_bytes: 100,
        ..Default::default()
    };
    let err = encode(&"x".repeat(101), &META, &cfg).unwrap_err();
    assert_eq!(
        err,
        SessileError::StateTooLarge {
            size: 101,
            limit: 100
        }
    );
    assert!(encode(&"x".repeat(100), &META, &cfg).is_ok());
}

#[test]
fn decode_refuses_a_declared_size_over_the_limit() {
    let bytes = encode(&"y".repeat(300), &META, &EnvelopeConfig::default()).unwrap();
    let small = EnvelopeConfig {
        max_raw_bytes: 299,
        ..Default::default()
    };
    assert_eq!(code(decode(&bytes, &small)), "STATE_TOO_LARGE");
}

#[test]
fn bad_magic() {
    let mut bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    bytes[0] = b'X';
    assert_eq!(code(decode(&bytes, &Default::default())), "BAD_MAGIC");
    assert_eq!(code(decode(b"{\"a\":1}", &Default::default())), "BAD_MAGIC");
    assert_eq!(code(decode(b"Q", &Default::default())), "BAD_MAGIC");
}

#[test]
fn empty_and_short_inputs_are_truncated() {
    for n in 0..HEADER_LEN {
        let bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
        assert_eq!(code(decode(&bytes[..n], &Default::default())), "TRUNCATED");
    }
}

#[test]
fn newer_format_version_is_refused() {
    let mut bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    bytes[OFF_FORMAT] = 2;
    reseal(&mut bytes);
    let err = decode(&bytes, &Default::default()).unwrap_err();
    assert_eq!(
        err,
        SessileError::UnsupportedFormatVersion {
            found: 2,
            supported: 1
        }
    );
}

#[test]
fn format_version_zero_is_damage_not_a_newer_format() {
    let mut bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    bytes[OFF_FORMAT] = 0;
    reseal(&mut bytes);
    assert_eq!(code(decode(&bytes, &Default::default())), "BAD_MAGIC");
}

#[test]
fn generation_round_trips_in_the_header() {
    let meta = SnapshotMeta {
        generation: 0xBEEF,
        ..META
    };
    let bytes = encode("{}", &meta, &EnvelopeConfig::default()).unwrap();
    assert_eq!(&bytes[OFF_GENERATION..OFF_GENERATION + 2], &[0xEF, 0xBE]);
    assert_eq!(decode(&bytes, &Default::default()).unwrap().meta, meta);
}

#[test]
fn limits_above_256_mib_are_refused_when_decoding_too() {
    let bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    let huge = EnvelopeConfig {
        max_raw_bytes: MAX_RAW_BYTES_LIMIT + 1,
        ..Default::default()
    };
    assert_eq!(code(decode(&bytes, &huge)), "INVALID_OPTIONS");
}

#[test]
fn unknown_flags_are_refused() {
    let mut bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    bytes[OFF_FLAGS] = FLAG_ENCRYPTED;
    reseal(&mut bytes);
    assert_eq!(
        code(decode(&bytes, &Default::default())),
        "UNSUPPORTED_FLAGS"
    );
}

#[test]
fn flipped_payload_bit_is_a_checksum_mismatch() {
    let mut bytes = encode(r#"{"step":"cart"}"#, &META, &Default::default()).unwrap();
    bytes[HEADER_LEN + 3] ^= 0x04;
    assert_eq!(
        code(decode(&bytes, &Default::default())),
        "CHECKSUM_MISMATCH"
    );
}

#[test]
fn trailing_bytes_are_a_length_mismatch() {
    let mut bytes = encode("{}", &META, &Default::default()).unwrap();
    bytes.push(0);
    assert_eq!(code(decode(&bytes, &Default::default())), "LENGTH_MISMATCH");
}

#[test]
fn raw_length_that_disagrees_with_an_uncompressed_payload() {
    let mut bytes = encode("{\"a\":1}", &META, &Default::default()).unwrap();
    put_u32(&mut bytes, OFF_RAW_LEN, 3);
    reseal(&mut bytes);
    assert_eq!(code(decode(&bytes, &Default::default())), "LENGTH_MISMATCH");
}

/// Builds a compressed snapshot whose header declares `declared` raw bytes.
fn compressed_with_declared_len(json: &str, declared: u32) -> Vec<u8> {
    let cfg = EnvelopeConfig {
        compress_above: 0,
        compression_level: 9,
        ..Default::default()
    };
    let mut bytes = encode(json, &META, &cfg).unwrap();
    assert_eq!(bytes[OFF_FLAGS], FLAG_COMPRESSED);
    put_u32(&mut bytes, OFF_RAW_LEN, declared);
    reseal(&mut bytes);
    bytes
}

#[test]
fn zip_bomb_stops_at_the_declared_length() {
    // 5 MB of zeros deflate to a few KB; the header claims 1 KB.
    let json = format!("\"{}\"", "0".repeat(5 * 1024 * 1024 - 2));
    let bytes = compressed_with_declared_len(&json, 1024);
    assert!(bytes.len() < 16 * 1024);
    let err = decode(&bytes, &Default::default()).unwrap_err();
    assert_eq!(err, SessileError::InflateOverflow { declared: 1024 });
}

#[test]
fn compressed_payload_shorter_than_declared() {
    let json = big_json(20_000);
    let bytes = compressed_with_declared_len(&json, json.len() as u32 + 10);
    assert_eq!(code(decode(&bytes, &Default::default())), "LENGTH_MISMATCH");
}

#[test]
fn garbage_deflate_stream_is_corrupt_payload() {
    let mut bytes = compressed_with_declared_len(&big_json(20_000), 20_000);
    for b in &mut bytes[HEADER_LEN..HEADER_LEN + 8] {
        *b = 0xFF; // 0b111: reserved block type 3 in the first block header
    }
    reseal(&mut bytes);
    assert_eq!(code(decode(&bytes, &Default::default())), "CORRUPT_PAYLOAD");
}

#[test]
fn invalid_utf8_payload_is_corrupt_payload() {
    let mut bytes = encode("{\"a\":\"xy\"}", &META, &Default::default()).unwrap();
    bytes[HEADER_LEN + 6] = 0xC3; // a lead byte followed by ASCII
    reseal(&mut bytes);
    assert_eq!(code(decode(&bytes, &Default::default())), "CORRUPT_PAYLOAD");
}

#[test]
fn read_header_reports_the_fields() {
    let bytes = encode("{\"k\":true}", &META, &Default::default()).unwrap();
    let h = read_header(&bytes).unwrap();
    assert_eq!(h.meta, META);
    assert_eq!(h.raw_len, 10);
    assert_eq!(h.payload_len, 10);
    assert_eq!(h.flags, 0);
}

#[test]
fn invalid_options_are_refused() {
    let zero_limit = EnvelopeConfig {
        max_raw_bytes: 0,
        ..Default::default()
    };
    let level_ten = EnvelopeConfig {
        compression_level: 10,
        ..Default::default()
    };
    for cfg in [zero_limit, level_ten] {
        let err = encode("{}", &META, &cfg).unwrap_err();
        assert_eq!(err.code(), "INVALID_OPTIONS", "{cfg:?}");
    }
}
