//! Golden snapshots of format v1 (tests/fixtures/v1, written once by
//! `cargo run --example write_golden_fixtures` and never changed): every good
//! file decodes to its JSON and header fields, every corrupt file fails with
//! its listed code. Uncompressed files must also be re-encoded byte for byte;
//! compressed ones need not be (deflate output is not canonical). A good
//! file's text parses as JSON unless its entry says `"parse"` (the code a
//! reader that parses gives); `"js"` holds the numbers a JS reader gets.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

use serde_json::Value;
use sessile::core::envelope::{decode, encode, EnvelopeConfig, SnapshotMeta};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1");

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(DIR).join("manifest.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_golden_file_decodes_as_listed() {
    let cfg = EnvelopeConfig::default();
    let entries = manifest();
    assert!(
        entries.len() >= 58,
        "manifest lists {} files",
        entries.len()
    );
    let (mut good, mut corrupt) = (0, 0);
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let bytes = read(file);
        let expect = entry["expect"].as_str().unwrap();
        if expect != "ok" {
            let err = decode(&bytes, &cfg).expect_err(file);
            assert_eq!(err.code(), expect, "{file}: {err}");
            corrupt += 1;
            continue;
        }
        let snap = decode(&bytes, &cfg).unwrap_or_else(|e| panic!("{file}: {e}"));
        let json = String::from_utf8(read(entry["json"].as_str().unwrap())).unwrap();
        assert_eq!(snap.json, json, "{file}: JSON differs");
        let parsed = serde_json::from_str::<Value>(&json);
        match entry["parse"].as_str() {
            None => assert!(parsed.is_ok(), "{file}: text is not JSON"),
            Some(code) => {
                assert_eq!(code, "INVALID_STATE", "{file}");
                assert!(parsed.is_err(), "{file}: text parses as JSON");
            }
        }
        if let Some(js) = entry.get("js") {
            // What src/web/convert.rs hands to JS: the nearest double.
            assert_eq!(
                Some(snap.meta.state_version as f64),
                js["stateVersion"].as_f64(),
                "{file}"
            );
            assert_eq!(
                Some(snap.meta.modified_at_ms as f64),
                js["modifiedAt"].as_f64(),
                "{file}"
            );
        }
        let meta = SnapshotMeta {
            generation: 0,
            schema_version: entry["schemaVersion"].as_u64().unwrap() as u32,
            state_version: entry["stateVersion"].as_u64().unwrap(),
            modified_at_ms: entry["modifiedAt"].as_u64().unwrap(),
        };
        assert_eq!(snap.meta, meta, "{file}: header fields differ");
        assert_eq!(
            Some(snap.compressed),
            entry["compressed"].as_bool(),
            "{file}"
        );
        if !snap.compressed {
            assert_eq!(
                encode(&json, &meta, &cfg).unwrap(),
                bytes,
                "{file}: encoder output changed"
            );
        }
        good += 1;
    }
    assert!(
        good >= 17 && corrupt >= 41,
        "{good} good, {corrupt} corrupt"
    );
}

#[test]
fn every_corrupt_file_has_a_distinct_cause_covered() {
    let codes: std::collections::BTreeSet<String> = manifest()
        .iter()
        .map(|e| e["expect"].as_str().unwrap().to_string())
        .filter(|c| c != "ok")
        .collect();
    for code in [
        "BAD_MAGIC",
        "UNSUPPORTED_FORMAT_VERSION",
        "UNSUPPORTED_FLAGS",
        "TRUNCATED",
        "LENGTH_MISMATCH",
        "CHECKSUM_MISMATCH",
        "INFLATE_OVERFLOW",
        "CORRUPT_PAYLOAD",
        "STATE_TOO_LARGE",
    ] {
        assert!(codes.contains(code), "no corrupt fixture for {code}");
    }
}

#[test]
fn every_file_in_the_fixture_directory_is_listed() {
    let listed: std::collections::BTreeSet<String> = manifest()
        .iter()
        .flat_map(|e| [e["file"].as_str(), e["json"].as_str()])
        .flatten()
        .map(str::to_string)
        .collect();
    let mut stack = vec![String::new()];
    while let Some(sub) = stack.pop() {
        for item in std::fs::read_dir(Path::new(DIR).join(&sub)).unwrap() {
            let item = item.unwrap();
            let name = format!("{sub}{}", item.file_name().to_string_lossy());
            if item.file_type().unwrap().is_dir() {
                // Sealed snapshots have their own manifest (tests/golden_sealed.rs).
                if name != "sealed" {
                    stack.push(format!("{name}/"));
                }
            } else if name != "manifest.json" {
                assert!(listed.contains(&name), "{name} is not in the manifest");
            }
        }
    }
}

#[test]
fn deflate_output_is_not_canonical() {
    // The same JSON deflated at levels 1 and 9, and as stored blocks: other
    // bytes, one state. Compare snapshots after inflating, never as bytes.
    let cfg = EnvelopeConfig::default();
    for (a, b) in [
        ("above-threshold.snap", "deflate-level9.snap"),
        ("small.snap", "deflate-stored-blocks.snap"),
    ] {
        let (a, b) = (read(a), read(b));
        assert_ne!(a[40..], b[40..]);
        assert_eq!(
            decode(&a, &cfg).unwrap().json,
            decode(&b, &cfg).unwrap().json
        );
    }
}
