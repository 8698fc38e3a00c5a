//! Target `snapshot_decode`: the snapshot envelope's decoder
//! (`src/core/envelope.rs`) on any bytes.
//!
//! Input: one mode byte, then the snapshot's bytes. Mode bit 0 rewrites the
//! CRC-32 to match and bit 1 the payload length, so that the fuzzer gets
//! past those checks to flags, limits, inflate and UTF-8; bit 2 decodes with
//! a 1 KiB limit instead of 5 MiB.
//!
//! Asserts: decoding never panics (and, under the fuzzer's memory limit,
//! never allocates past the declared raw length); an error has one of the
//! decoder's codes and is not retryable; a header error is the decoder's
//! error too; a decoded snapshot agrees with its header (meta, checksum,
//! lengths, flags), encodes back to a snapshot that decodes to the same
//! JSON and meta, and an uncompressed one that `encode` would not compress
//! encodes back to exactly the input bytes.

use sessile::core::checksum::Crc32;
use sessile::core::envelope::{
    decode, encode, read_header, EnvelopeConfig, FLAG_COMPRESSED, HEADER_LEN,
};

use crate::input::Input;

/// The codes the decoder may answer.
const DECODE_CODES: [&str; 10] = [
    "BAD_MAGIC",
    "TRUNCATED",
    "UNSUPPORTED_FORMAT_VERSION",
    "LENGTH_MISMATCH",
    "CHECKSUM_MISMATCH",
    "UNSUPPORTED_FLAGS",
    "STATE_TOO_LARGE",
    "CORRUPT_PAYLOAD",
    "INFLATE_OVERFLOW",
    // A sealed snapshot (the encrypted flag): decoding without a key.
    "KEY_REQUIRED",
];

/// Header offsets (docs/FORMAT.md).
const OFF_PAYLOAD_LEN: usize = 32;
const OFF_CHECKSUM: usize = 36;

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let mut bytes = input.rest().to_vec();
    let config = if mode & 4 != 0 {
        EnvelopeConfig {
            max_raw_bytes: 1024,
            ..EnvelopeConfig::default()
        }
    } else {
        EnvelopeConfig::default()
    };
    if bytes.len() >= HEADER_LEN {
        if mode & 2 != 0 {
            let payload_len = (bytes.len() - HEADER_LEN) as u32;
            bytes[OFF_PAYLOAD_LEN..OFF_PAYLOAD_LEN + 4].copy_from_slice(&payload_len.to_le_bytes());
        }
        if mode & 1 != 0 {
            let mut crc = Crc32::new();
            crc.update(&bytes[..OFF_CHECKSUM]);
            crc.update(&bytes[HEADER_LEN..]);
            let sum = crc.finish();
            bytes[OFF_CHECKSUM..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        }
    }
    check_bytes(&bytes, &config);
}

/// The assertions on one snapshot's bytes.
pub fn check_bytes(bytes: &[u8], config: &EnvelopeConfig) {
    let decoded = decode(bytes, config);
    let header = read_header(bytes);
    let snap = match decoded {
        Err(e) => {
            assert!(DECODE_CODES.contains(&e.code()), "unexpected code: {e:?}");
            assert!(
                !e.is_retryable(),
                "a corrupt snapshot is not retryable: {e:?}"
            );
            if let Err(h) = header {
                assert_eq!(h, e, "the header's error is the decoder's");
            }
            return;
        }
        Ok(snap) => snap,
    };
    let header = header.expect("a snapshot that decodes has a header that reads");
    assert_eq!(header.meta, snap.meta);
    assert_eq!(header.checksum, snap.checksum);
    assert_eq!(header.raw_len as usize, snap.json.len());
    assert_eq!(HEADER_LEN + header.payload_len as usize, bytes.len());
    assert_eq!(snap.stored_len, bytes.len());
    assert_eq!(header.flags & !FLAG_COMPRESSED, 0, "unknown flags decoded");
    assert_eq!(snap.compressed, header.flags & FLAG_COMPRESSED != 0);
    assert!(snap.json.len() <= config.max_raw_bytes);
    let again = encode(&snap.json, &snap.meta, config).expect("a decoded state encodes");
    let back = decode(&again, config).expect("an encoded state decodes");
    assert_eq!(
        (&back.json, back.meta),
        (&snap.json, snap.meta),
        "decode(encode(decode(bytes)))"
    );
    if !snap.compressed && snap.json.len() <= config.compress_above {
        assert_eq!(
            again, bytes,
            "an uncompressed snapshot encodes back to itself"
        );
    }
}
