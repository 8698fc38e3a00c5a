//! Golden sealed snapshots (tests/fixtures/v1/sealed, written once by
//! `cargo run --example write_sealed_fixtures` with a fixed key and nonce):
//! RustCrypto's AES-256-GCM opens each good file to its JSON and header
//! fields and refuses each altered one with `DECRYPT_FAILED`; without a key
//! every file is `KEY_REQUIRED`; sealing the plain snapshot again with the
//! same key and nonce gives the same bytes. tests/web_crypt.rs opens the
//! same files with the browser's WebCrypto: the two agreeing is the proof
//! of the format.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/rust_crypto.rs"]
mod rust_crypto;

use std::path::Path;

use rust_crypto::RustCrypto;
use serde_json::Value;
use sessile::core::envelope::{decode, EnvelopeConfig, HEADER_LEN};
use sessile::core::sealed::{open_with, seal_with, NONCE_LEN};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/sealed");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest() -> Vec<Value> {
    let text = String::from_utf8(read("manifest.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_sealed_file_opens_or_fails_as_listed() {
    let key = read("key.bin");
    assert_eq!(key, (0u8..32).collect::<Vec<_>>(), "the fixed key");
    let aead = RustCrypto::new(&key);
    let wrong = RustCrypto::new(&[0xff; 32]);
    let cfg = EnvelopeConfig::default();
    let (mut good, mut bad) = (0, 0);
    for entry in manifest() {
        let file = entry["file"].as_str().unwrap();
        let bytes = read(file);
        assert_eq!(
            decode(&bytes, &cfg).unwrap_err().code(),
            "KEY_REQUIRED",
            "{file} without a key"
        );
        assert_eq!(
            open_with(&wrong, &bytes, &cfg).unwrap_err().code(),
            "DECRYPT_FAILED",
            "{file} with another key"
        );
        let expect = entry["expect"].as_str().unwrap();
        if expect != "ok" {
            let err = open_with(&aead, &bytes, &cfg).unwrap_err();
            assert_eq!(err.code(), expect, "{file}");
            bad += 1;
            continue;
        }
        let plain = open_with(&aead, &bytes, &cfg).unwrap_or_else(|e| panic!("{file}: {e}"));
        let snap = decode(&plain, &cfg).unwrap();
        let json = String::from_utf8(read(entry["json"].as_str().unwrap())).unwrap();
        assert_eq!(snap.json, json, "{file}");
        assert_eq!(
            Some(snap.compressed),
            entry["compressed"].as_bool(),
            "{file}"
        );
        assert_eq!(
            Some(u64::from(snap.meta.schema_version)),
            entry["schemaVersion"].as_u64()
        );
        assert_eq!(
            Some(snap.meta.state_version),
            entry["stateVersion"].as_u64()
        );
        assert_eq!(Some(snap.meta.modified_at_ms), entry["modifiedAt"].as_u64());
        let nonce: [u8; NONCE_LEN] = bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]
            .try_into()
            .unwrap();
        assert_eq!(
            seal_with(&aead, &nonce, &plain).unwrap(),
            bytes,
            "{file}: sealing again gives other bytes"
        );
        good += 1;
    }
    assert_eq!((good, bad), (2, 4));
}

#[test]
fn every_sealed_file_is_listed() {
    let listed: Vec<String> = manifest()
        .iter()
        .flat_map(|e| [e["file"].as_str(), e["json"].as_str()])
        .flatten()
        .map(str::to_string)
        .collect();
    for item in std::fs::read_dir(DIR).unwrap() {
        let name = item.unwrap().file_name().to_string_lossy().to_string();
        if name != "manifest.json" && name != "key.bin" {
            assert!(listed.contains(&name), "{name} is not in the manifest");
        }
    }
}
