//! Writes the golden fixtures of sealed (encrypted) snapshots into
//! tests/fixtures/v1/sealed/: a fixed key (bytes 0x00 to 0x1f) and a fixed
//! nonce (0xa0 to 0xab), sealed with RustCrypto's AES-256-GCM, which is a
//! dev-dependency only. Like every golden file they never change once
//! written: existing files are left as they are. tests/golden.rs opens them
//! natively, tests/web_crypt.rs with the browser's WebCrypto.
//!
//! `cargo run --example write_sealed_fixtures`

#[path = "../tests/support/rust_crypto.rs"]
mod rust_crypto;

use std::fs;
use std::path::Path;

use rust_crypto::RustCrypto;
use sessile::core::checksum::crc32;
use sessile::core::envelope::{encode, EnvelopeConfig, SnapshotMeta, HEADER_LEN};
use sessile::core::sealed::{seal_with, KEY_LEN, NONCE_LEN};

const DIR: &str = "tests/fixtures/v1/sealed";
const META: SnapshotMeta = SnapshotMeta {
    generation: 3,
    schema_version: 2,
    state_version: 7,
    modified_at_ms: 1_790_000_000_000,
};

fn write(name: &str, bytes: &[u8]) {
    let path = Path::new(DIR).join(name);
    if path.exists() {
        println!("kept    {name}");
        return;
    }
    fs::write(&path, bytes).unwrap();
    println!("written {name}");
}

/// Flips a bit at `at` and writes a checksum that matches again, as a
/// tamperer who knows the format would: only the tag can tell.
fn tamper(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    b[at] ^= 0x01;
    let mut covered = b[..36].to_vec();
    covered.extend_from_slice(&b[HEADER_LEN..]);
    let sum = crc32(&covered);
    b[36..40].copy_from_slice(&sum.to_le_bytes());
    b
}

fn main() {
    fs::create_dir_all(DIR).unwrap();
    let key: [u8; KEY_LEN] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; NONCE_LEN] = std::array::from_fn(|i| 0xa0 + i as u8);
    let aead = RustCrypto::new(&key);
    let cfg = EnvelopeConfig::default();
    let small = r#"{"step":"details","email":"shopper@example.com"}"#;
    let large = fs::read_to_string("tests/fixtures/v1/above-threshold.json").unwrap();
    write("small.json", small.as_bytes());
    let sealed = seal_with(&aead, &nonce, &encode(small, &META, &cfg).unwrap()).unwrap();
    write("small.snap", &sealed);
    let plain = encode(&large, &META, &cfg).unwrap();
    write(
        "compressed.snap",
        &seal_with(&aead, &nonce, &plain).unwrap(),
    );
    write(
        "ciphertext-altered.snap",
        &tamper(sealed.clone(), HEADER_LEN + NONCE_LEN + 2),
    );
    write(
        "tag-altered.snap",
        &tamper(sealed.clone(), sealed.len() - 1),
    );
    // The state version (byte 12) is authenticated as associated data.
    write("header-altered.snap", &tamper(sealed.clone(), 12));
    write("nonce-altered.snap", &tamper(sealed, HEADER_LEN));
    write("key.bin", &key);
}
