//! Sealed snapshots against RustCrypto's AES-256-GCM (a dev-dependency
//! only): round trip, the associated data, wrong key, tampering, and which
//! key errors stop an open.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::*;
use crate::core::envelope::{decode, encode, SnapshotMeta};

/// AES-256-GCM of RustCrypto behind [`Aead`].
pub(crate) struct RustCrypto(Aes256Gcm);

impl RustCrypto {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        RustCrypto(Aes256Gcm::new_from_slice(key).unwrap())
    }
}

impl Aead for RustCrypto {
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        self.0.encrypt(Nonce::from_slice(nonce), payload).unwrap()
    }
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload { msg: sealed, aad };
        self.0.decrypt(Nonce::from_slice(nonce), payload).ok()
    }
}

const KEY: [u8; KEY_LEN] = [7; KEY_LEN];
const NONCE: [u8; NONCE_LEN] = [9; NONCE_LEN];
const META: SnapshotMeta = SnapshotMeta {
    generation: 2,
    schema_version: 3,
    state_version: 41,
    modified_at_ms: 1_700_000_000_000,
};

fn plain(json: &str, cfg: &EnvelopeConfig) -> Vec<u8> {
    encode(json, &META, cfg).unwrap()
}

/// Flips one bit at `at` and writes the CRC-32 again, as a tamperer would.
fn tamper(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x01;
    let crc = checksum_of(bytes);
    put_u32(bytes, OFF_CHECKSUM, crc);
}

#[test]
fn a_sealed_snapshot_opens_to_the_same_state() {
    let cfg = EnvelopeConfig::default();
    for json in [r#"{"email":"a@b.c"}"#.to_string(), "x".repeat(20_000)] {
        let json = format!("{{\"t\":\"{json}\"}}");
        let sealed = seal_with(&RustCrypto::new(&KEY), &NONCE, &plain(&json, &cfg)).unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(sealed[OFF_FLAGS] & FLAG_ENCRYPTED, FLAG_ENCRYPTED);
        assert_eq!(&sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN], &NONCE);
        assert!(!sealed.windows(5).any(|w| w == b"email" || w == b"xxxxx"));
        let opened = open_with(&RustCrypto::new(&KEY), &sealed, &cfg).unwrap();
        let snap = decode(&opened, &cfg).unwrap();
        assert_eq!(snap.json, json);
        assert_eq!(snap.meta, META);
        assert_eq!(snap.compressed, json.len() > cfg.compress_above);
    }
}

#[test]
fn the_payload_is_nonce_ciphertext_and_tag_under_a_checksum() {
    let cfg = EnvelopeConfig::default();
    let p = plain("{}", &cfg);
    let sealed = seal_with(&RustCrypto::new(&KEY), &NONCE, &p).unwrap();
    assert_eq!(sealed.len(), p.len() + SEALED_OVERHEAD);
    let header = read_header(&sealed).unwrap();
    assert_eq!(header.payload_len as usize, 2 + SEALED_OVERHEAD);
    assert_eq!(header.raw_len, 2);
    assert_eq!(header.checksum, checksum_of(&sealed));
    // Without a key the envelope says so, after checking the checksum.
    assert_eq!(
        decode(&sealed, &cfg),
        Err(SessileError::KeyRequired { state_version: 41 })
    );
}

#[test]
fn a_wrong_key_is_decrypt_failed() {
    let cfg = EnvelopeConfig::default();
    let sealed = seal_with(&RustCrypto::new(&KEY), &NONCE, &plain("{}", &cfg)).unwrap();
    let other = RustCrypto::new(&[8; KEY_LEN]);
    assert_eq!(
        open_with(&other, &sealed, &cfg),
        Err(SessileError::DecryptFailed { state_version: 41 })
    );
}

#[test]
fn every_authenticated_byte_is_checked_by_the_tag() {
    let cfg = EnvelopeConfig::default();
    let sealed = seal_with(&RustCrypto::new(&KEY), &NONCE, &plain("{}", &cfg)).unwrap();
    let aead = RustCrypto::new(&KEY);
    // Header fields (the flags' compressed bit, generation, versions, time,
    // lengths would mostly fail earlier checks; those that pass them fail
    // the tag), the nonce, the ciphertext and the tag.
    for at in (0..AAD_LEN).chain(HEADER_LEN..sealed.len()) {
        let mut bytes = sealed.clone();
        tamper(&mut bytes, at);
        let err = open_with(&aead, &bytes, &cfg).unwrap_err();
        if (6..28).contains(&at) || at >= HEADER_LEN {
            assert_eq!(err.code(), "DECRYPT_FAILED", "byte {at}");
        }
    }
    // A flipped bit without a new checksum is corruption, found first.
    let mut bytes = sealed.clone();
    bytes[HEADER_LEN + NONCE_LEN] ^= 0x01;
    assert_eq!(
        open_with(&aead, &bytes, &cfg).unwrap_err().code(),
        "CHECKSUM_MISMATCH"
    );
}

#[test]
fn a_plain_snapshot_passes_through_open_and_sealing_twice_is_refused() {
    let cfg = EnvelopeConfig::default();
    let p = plain("{}", &cfg);
    let aead = RustCrypto::new(&KEY);
    assert_eq!(open_with(&aead, &p, &cfg).unwrap(), p);
    let sealed = seal_with(&aead, &NONCE, &p).unwrap();
    assert_eq!(
        seal_with(&aead, &NONCE, &sealed).unwrap_err().code(),
        "CORRUPT_PAYLOAD"
    );
}

#[test]
fn a_sealed_payload_shorter_than_nonce_and_tag_is_truncated() {
    let cfg = EnvelopeConfig::default();
    let mut bytes = plain("{}", &cfg);
    bytes[OFF_FLAGS] |= FLAG_ENCRYPTED;
    let crc = checksum_of(&bytes);
    put_u32(&mut bytes, OFF_CHECKSUM, crc);
    assert_eq!(OpenJob::new(&bytes, &cfg).unwrap_err().code(), "TRUNCATED");
}

#[test]
fn a_wrong_length_from_the_cipher_is_refused() {
    let job = SealJob::new(&plain("{}", &EnvelopeConfig::default())).unwrap();
    assert_eq!(
        job.finish(&NONCE, &[0; 3]).unwrap_err().code(),
        "CORRUPT_PAYLOAD"
    );
}

#[test]
fn raw_keys_must_be_32_bytes() {
    assert!(check_raw_key(32).is_ok());
    for len in [0, 16, 24, 31, 33] {
        assert_eq!(check_raw_key(len).unwrap_err().code(), "INVALID_OPTIONS");
    }
}

#[test]
fn a_key_error_stops_an_open_unless_its_copy_is_older() {
    let decrypt = SessileError::DecryptFailed { state_version: 5 };
    let missing = SessileError::KeyRequired { state_version: 5 };
    let corrupt = SessileError::BadMagic;
    assert_eq!(
        blocking_key_error([&corrupt, &decrypt], None),
        Some(decrypt.clone())
    );
    assert_eq!(blocking_key_error([&missing], Some(5)), Some(missing));
    assert_eq!(blocking_key_error([&decrypt], Some(6)), None);
    assert_eq!(blocking_key_error([&corrupt], None), None);
    assert_eq!(key_error_version(&corrupt), None);
}
