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
    bytes[OFF_FLAGS] = 0b0000_0100;
    reseal(&mut bytes);
    assert_eq!(
        code(decode(&bytes, &Default::default())),
        "UNSUPPORTED_FLAGS"
    );
}

#[test]
fn an_encrypted_snapshot_needs_its_key() {
    let mut bytes = encode("{}", &META, &EnvelopeConfig::default()).unwrap();
    bytes[OFF_FLAGS] = FLAG_ENCRYPTED;
    reseal(&mut bytes);
    assert_eq!(
        decode(&bytes, &Default::default()),
        Err(SessileError::KeyRequired {
            state_version: META.state_version
        })
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

/// A raw deflate stored block (RFC 1951 3.2.4) holding `data`.
fn stored_block(is_final: bool, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u16;
    let mut block = vec![u8::from(is_final)];
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(&(!len).to_le_bytes());
    block.extend_from_slice(data);
    block
}

/// A sealed snapshot with the compressed flag, `raw_len` and `payload`.
fn deflated_snapshot(raw_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = encode("", &META, &Default::default()).unwrap();
    bytes[OFF_FLAGS] = FLAG_COMPRESSED;
    put_u32(&mut bytes, OFF_RAW_LEN, raw_len);
    put_u32(&mut bytes, OFF_PAYLOAD_LEN, payload.len() as u32);
    bytes.extend_from_slice(payload);
    reseal(&mut bytes);
    bytes
}

/// Block header of a final block of the reserved type 3: invalid.
const BAD_BLOCK: u8 = 0b111;

#[test]
fn deflate_errors_follow_the_stream_order() {
    let abc = br#""abc""#;
    let decodes = |raw_len: u32, parts: &[&[u8]]| {
        decode(
            &deflated_snapshot(raw_len, &parts.concat()),
            &Default::default(),
        )
    };
    let last = stored_block(true, abc);
    let open = stored_block(false, abc);
    let empty_final = stored_block(true, b"");
    let empty_open = stored_block(false, b"");
    // Valid streams other than the encoder's own: every one is accepted.
    assert_eq!(decodes(5, &[&last]).unwrap().json, r#""abc""#);
    assert_eq!(
        decodes(5, &[&open, &empty_open, &empty_final])
            .unwrap()
            .json,
        r#""abc""#
    );
    // The input ends before the final block: fewer bytes than declared.
    assert_eq!(code(decodes(7, &[&open])), "LENGTH_MISMATCH");
    assert_eq!(code(decodes(5, &[&last[..7]])), "LENGTH_MISMATCH");
    assert_eq!(code(decodes(5, &[])), "LENGTH_MISMATCH");
    // ... or exactly the declared bytes, then nothing: broken.
    assert_eq!(code(decodes(5, &[&open])), "CORRUPT_PAYLOAD");
    assert_eq!(code(decodes(0, &[])), "CORRUPT_PAYLOAD");
    // A complete stream: its length first, then bytes after its end.
    assert_eq!(code(decodes(6, &[&last])), "LENGTH_MISMATCH");
    assert_eq!(code(decodes(6, &[&last, &[0]])), "LENGTH_MISMATCH");
    assert_eq!(code(decodes(5, &[&last, &[0]])), "CORRUPT_PAYLOAD");
    // Invalid data before the declared length, or right at it: broken.
    assert_eq!(code(decodes(9, &[&open, &[BAD_BLOCK]])), "CORRUPT_PAYLOAD");
    assert_eq!(code(decodes(5, &[&open, &[BAD_BLOCK]])), "CORRUPT_PAYLOAD");
    // One byte past the declared length decides, whatever comes after it.
    assert_eq!(code(decodes(5, &[&open, &last])), "INFLATE_OVERFLOW");
    assert_eq!(code(decodes(3, &[&open])), "INFLATE_OVERFLOW");
    assert_eq!(code(decodes(3, &[&open, &[BAD_BLOCK]])), "INFLATE_OVERFLOW");
    let far = stored_block(false, &[b' '; 60_000]);
    assert_eq!(code(decodes(3, &[&far, &[BAD_BLOCK]])), "INFLATE_OVERFLOW");
    assert_eq!(
        code(decodes(59_999, &[&far, &[BAD_BLOCK]])),
        "INFLATE_OVERFLOW"
    );
}

#[test]
fn declared_length_one_off_either_way_for_every_size() {
    let cfg = EnvelopeConfig {
        compress_above: 0,
        ..Default::default()
    };
    for len in (2..3000)
        .step_by(7)
        .chain([32_767, 32_768, 32_769, 65_536, 100_000])
    {
        let json = big_json(len);
        for level in [1, 6, 9] {
            let cfg = EnvelopeConfig {
                compression_level: level,
                ..cfg
            };
            let bytes = encode(&json, &META, &cfg).unwrap();
            if bytes[OFF_FLAGS] != FLAG_COMPRESSED {
                continue;
            }
            let n = json.len() as u32;
            let with = |declared: u32| {
                let mut b = bytes.clone();
                put_u32(&mut b, OFF_RAW_LEN, declared);
                reseal(&mut b);
                decode(&b, &Default::default())
            };
            assert_eq!(with(n).unwrap().json, json, "{len} at level {level}");
            assert_eq!(
                code(with(n - 1)),
                "INFLATE_OVERFLOW",
                "{len} at level {level}"
            );
            assert_eq!(
                code(with(n + 1)),
                "LENGTH_MISMATCH",
                "{len} at level {level}"
            );
        }
    }
}

/// A final fixed-Huffman block (RFC 1951 3.2.6): the literal `a`, then a
/// match of length 3 at `distance` (1 or 2), then the end of block.
fn fixed_block_with_match(distance: u32) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let lsb_first = |value: u32, n: u32, bits: &mut Vec<bool>| {
        (0..n).for_each(|i| bits.push(value >> i & 1 == 1))
    };
    let msb_first = |code: u32, n: u32, bits: &mut Vec<bool>| {
        (0..n).rev().for_each(|i| bits.push(code >> i & 1 == 1))
    };
    lsb_first(1, 1, &mut bits); // BFINAL
    lsb_first(1, 2, &mut bits); // BTYPE = fixed Huffman
    msb_first(0x30 + u32::from(b'a'), 8, &mut bits); // literal
    msb_first(1, 7, &mut bits); // symbol 257: length 3
    msb_first(distance - 1, 5, &mut bits); // distance code
    msb_first(0, 7, &mut bits); // symbol 256: end of block
    bits.chunks(8)
        .map(|byte| {
            byte.iter()
                .rev()
                .fold(0u8, |acc, &b| acc << 1 | u8::from(b))
        })
        .collect()
}

#[test]
fn a_distance_before_the_start_of_the_output_is_corrupt() {
    let decodes = |raw_len: u32, distance: u32| {
        decode(
            &deflated_snapshot(raw_len, &fixed_block_with_match(distance)),
            &Default::default(),
        )
    };
    assert_eq!(decodes(4, 1).unwrap().json, "aaaa");
    for raw_len in [1, 4, 5] {
        assert_eq!(code(decodes(raw_len, 2)), "CORRUPT_PAYLOAD", "{raw_len}");
    }
}
