//! Browser tests of the codec bindings (run by `wasm-pack test --headless
//! --chrome` and `--firefox`): round trips through the JS surface, errors as
//! JS `Error`s with a `code`, the two-slot restore and write plan. The
//! localStorage cases (saveSnapshot / loadSnapshot, now TypeScript) are in
//! js/test/store_browser.test.mjs.
#![cfg(target_arch = "wasm32")]

use js_sys::{Reflect, Uint8Array, JSON};
use sessile::web::slots_api::{next_write, restore_slots};
use sessile::web::snapshot_api::{decode_snapshot, encode_snapshot};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn js(json: &str) -> JsValue {
    JSON::parse(json).expect("test JSON")
}

fn field(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).expect("field")
}

fn code_of(err: JsValue) -> String {
    assert!(
        err.is_instance_of::<js_sys::Error>(),
        "errors are JS Error objects"
    );
    assert_eq!(
        field(&err, "name").as_string().as_deref(),
        Some("SessileError")
    );
    field(&err, "code").as_string().expect("code is a string")
}

fn checkout_json(items: usize) -> String {
    let items: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","name":"Item {i}","qty":{},"price":{}.99}}"#,
                i % 4 + 1,
                i % 90
            )
        })
        .collect();
    format!(
        r#"{{"step":"checkout","email":"a@example.com","items":[{}]}}"#,
        items.join(",")
    )
}

/// The decoded `json` field, parsed and printed again (key order kept).
fn state_text(decoded: &JsValue) -> String {
    let json = field(decoded, "json").as_string().expect("json is text");
    String::from(JSON::stringify(&js(&json)).unwrap())
}

fn encode(json: &str, meta: &str, options: &str) -> Result<Vec<u8>, JsValue> {
    let opt = |s: &str| {
        if s.is_empty() {
            JsValue::UNDEFINED
        } else {
            js(s)
        }
    };
    encode_snapshot(json, opt(meta), opt(options)).map(|b| b.to_vec())
}

#[wasm_bindgen_test]
fn small_state_round_trips_uncompressed() {
    let json = r#"{"step":"cart","items":[]}"#;
    let bytes = encode(
        json,
        r#"{"stateVersion":7,"schemaVersion":2,"generation":65535,"modifiedAt":1700000000123}"#,
        "",
    )
    .unwrap();
    let decoded: JsValue = decode_snapshot(&bytes, JsValue::UNDEFINED).unwrap().into();
    assert_eq!(field(&decoded, "stateVersion").as_f64(), Some(7.0));
    assert_eq!(field(&decoded, "schemaVersion").as_f64(), Some(2.0));
    assert_eq!(field(&decoded, "generation").as_f64(), Some(65535.0));
    assert_eq!(
        field(&decoded, "modifiedAt").as_f64(),
        Some(1_700_000_000_123.0)
    );
    assert_eq!(field(&decoded, "compressed").as_bool(), Some(false));
    assert_eq!(field(&decoded, "json").as_string().as_deref(), Some(json));
    assert_eq!(field(&decoded, "checksum").as_string().unwrap().len(), 8);
}

#[wasm_bindgen_test]
fn large_state_is_compressed_and_round_trips() {
    let json = checkout_json(1000);
    assert!(json.len() > 50_000);
    let bytes = encode(&json, "", "").unwrap();
    assert!(bytes.len() < json.len() / 2);
    let decoded: JsValue = decode_snapshot(&bytes, JsValue::UNDEFINED).unwrap().into();
    assert_eq!(field(&decoded, "compressed").as_bool(), Some(true));
    assert_eq!(
        field(&decoded, "rawBytes").as_f64(),
        Some(json.len() as f64)
    );
    assert_eq!(field(&decoded, "json").as_string(), Some(json));
}

#[wasm_bindgen_test]
fn threshold_is_respected_just_below_at_and_above() {
    let json = checkout_json(100);
    for (above, compressed) in [
        (json.len() + 1, false),
        (json.len(), false),
        (json.len() - 1, true),
    ] {
        let bytes = encode(&json, "", &format!(r#"{{"compressAbove":{above}}}"#)).unwrap();
        let decoded: JsValue = decode_snapshot(&bytes, JsValue::UNDEFINED).unwrap().into();
        assert_eq!(
            field(&decoded, "compressed").as_bool(),
            Some(compressed),
            "compressAbove {above}"
        );
    }
}

#[wasm_bindgen_test]
fn every_bit_flip_of_a_snapshot_is_a_coded_error() {
    let bytes = encode(r#"{"step":"upsell-1","n":3}"#, "", "").unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = decode_snapshot(&bad, JsValue::UNDEFINED).expect_err("flipped bit decoded");
        assert!(!code_of(err).is_empty());
    }
    let err = decode_snapshot(&bytes[..bytes.len() - 1], JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(err), "TRUNCATED");
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x20;
    assert_eq!(
        code_of(decode_snapshot(&bad, JsValue::UNDEFINED).unwrap_err()),
        "CHECKSUM_MISMATCH"
    );
}

#[wasm_bindgen_test]
fn bad_input_gets_stable_codes() {
    let too_big = encode(&checkout_json(50), "", r#"{"maxBytes":100}"#).unwrap_err();
    assert_eq!(code_of(too_big), "STATE_TOO_LARGE");
    let level = encode("{}", "", r#"{"compressionLevel":12}"#).unwrap_err();
    assert_eq!(code_of(level), "INVALID_OPTIONS");
    let negative = encode("{}", r#"{"stateVersion":-1}"#, "").unwrap_err();
    assert_eq!(code_of(negative), "INVALID_OPTIONS");
    let generation = encode("{}", r#"{"generation":65536}"#, "").unwrap_err();
    assert_eq!(code_of(generation), "INVALID_OPTIONS");
    let fraction = encode("{}", r#"{"schemaVersion":1.5}"#, "").unwrap_err();
    assert_eq!(code_of(fraction), "INVALID_OPTIONS");
    let not_snapshot = decode_snapshot(b"{\"step\":\"cart\"}", JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(not_snapshot), "BAD_MAGIC");
}

#[wasm_bindgen_test]
fn bytes_from_js_typed_arrays_decode() {
    let bytes: Uint8Array =
        encode_snapshot("[1,2,3]", JsValue::UNDEFINED, JsValue::UNDEFINED).unwrap();
    let copy = Uint8Array::new(&bytes.buffer().slice(0).unchecked_into());
    let decoded: JsValue = decode_snapshot(&copy.to_vec(), JsValue::UNDEFINED)
        .unwrap()
        .into();
    assert_eq!(state_text(&decoded), "[1,2,3]");
}

fn slot(json: &str, version: u64, generation: u16) -> Option<Uint8Array> {
    let meta = format!(r#"{{"stateVersion":{version},"generation":{generation}}}"#);
    Some(Uint8Array::from(
        encode(json, &meta, "").unwrap().as_slice(),
    ))
}

#[wasm_bindgen_test]
fn restore_takes_the_newest_valid_slot_and_reports_the_rest() {
    // Higher state version wins; at equal versions the later generation,
    // across the wrap from 65535 to 0.
    let found: JsValue = restore_slots(slot("1", 3, 7), slot("2", 4, 8), JsValue::UNDEFINED)
        .unwrap()
        .into();
    assert_eq!(
        field(&found, "outcome").as_string().as_deref(),
        Some("restored")
    );
    assert_eq!(field(&found, "from").as_string().as_deref(), Some("b"));
    assert_eq!(state_text(&field(&found, "snapshot")), "2");
    let found: JsValue = restore_slots(slot("1", 5, 65535), slot("2", 5, 0), JsValue::UNDEFINED)
        .unwrap()
        .into();
    assert_eq!(field(&found, "from").as_string().as_deref(), Some("b"));

    // A corrupted newest slot is skipped with its code; the other one wins.
    let mut bad = encode("\"newest\"", r#"{"stateVersion":9,"generation":9}"#, "").unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let found: JsValue = restore_slots(
        slot("\"older\"", 8, 8),
        Some(Uint8Array::from(bad.as_slice())),
        JsValue::UNDEFINED,
    )
    .unwrap()
    .into();
    assert_eq!(field(&found, "from").as_string().as_deref(), Some("a"));
    assert_eq!(state_text(&field(&found, "snapshot")), "\"older\"");
    let skipped: js_sys::Array = field(&found, "skipped").unchecked_into();
    assert_eq!(skipped.length(), 1);
    let first = skipped.get(0);
    assert_eq!(field(&first, "slot").as_string().as_deref(), Some("b"));
    assert_eq!(
        field(&field(&first, "error"), "code")
            .as_string()
            .as_deref(),
        Some("CHECKSUM_MISMATCH")
    );

    // Nothing stored: fresh. Only garbage stored: unreadable, each slot named.
    let empty: JsValue = restore_slots(None, None, JsValue::UNDEFINED)
        .unwrap()
        .into();
    assert_eq!(
        field(&empty, "outcome").as_string().as_deref(),
        Some("fresh")
    );
    let junk = || Some(Uint8Array::from(&b"junk"[..]));
    let none: JsValue = restore_slots(junk(), junk(), JsValue::UNDEFINED)
        .unwrap()
        .into();
    assert_eq!(
        field(&none, "outcome").as_string().as_deref(),
        Some("unreadable")
    );
    let skipped: js_sys::Array = field(&none, "skipped").unchecked_into();
    let slots: Vec<String> = skipped
        .iter()
        .map(|s| field(&s, "slot").as_string().unwrap())
        .collect();
    assert_eq!(slots, ["a", "b"]);

    // A snapshot declaring more than maxBytes is refused, not inflated.
    let big: JsValue = restore_slots(
        slot(&checkout_json(50), 1, 1),
        None,
        js(r#"{"maxBytes":100}"#),
    )
    .unwrap()
    .into();
    assert_eq!(
        field(&big, "outcome").as_string().as_deref(),
        Some("unreadable")
    );
}

#[wasm_bindgen_test]
fn next_write_alternates_slots_and_wraps_generations() {
    let plan = |last: &str| -> (String, f64) {
        let arg = if last.is_empty() {
            JsValue::UNDEFINED
        } else {
            js(last)
        };
        let p: JsValue = next_write(arg).unwrap().into();
        (
            field(&p, "slot").as_string().unwrap(),
            field(&p, "generation").as_f64().unwrap(),
        )
    };
    assert_eq!(plan(""), ("a".into(), 1.0));
    assert_eq!(plan(r#"{"slot":"a","generation":1}"#), ("b".into(), 2.0));
    assert_eq!(
        plan(r#"{"slot":"b","generation":65535}"#),
        ("a".into(), 0.0)
    );
    assert_eq!(
        plan(r#"{"slot":"rescue","generation":4}"#),
        ("a".into(), 5.0)
    );
    let err = next_write(js(r#"{"slot":"c","generation":1}"#)).unwrap_err();
    assert_eq!(code_of(err), "INVALID_OPTIONS");
    let err = next_write(js(r#"{"slot":"a","generation":70000}"#)).unwrap_err();
    assert_eq!(code_of(err), "INVALID_OPTIONS");
}
