//! Browser tests of the codec bindings (run by `wasm-pack test --headless
//! --chrome` and `--firefox`): round trips through the JS surface, errors as
//! JS `Error`s with a `code`, and saveSnapshot / loadSnapshot on the
//! page's real localStorage. The two-slot restore and write plan are the
//! store's (native tests in src/core/slots_tests.rs, browser tests in
//! tests/web_store.rs).
#![cfg(target_arch = "wasm32")]

use js_sys::{Reflect, Uint8Array, JSON};
use sessile::web::snapshot_api::{decode_snapshot, encode_snapshot, load_snapshot, save_snapshot};
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

/// localStorage of the test page, where saveSnapshot writes.
fn local_storage() -> web_sys::Storage {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .expect("localStorage")
}

#[wasm_bindgen_test]
fn save_and_load_round_trip_through_local_storage_under_the_prefix() {
    let key = "web-snapshot-round-trip";
    let json = checkout_json(400); // over the 10 KiB threshold: compressed
    let saved = save_snapshot(
        key,
        &json,
        js(r#"{"stateVersion":7,"generation":3}"#),
        JsValue::UNDEFINED,
    )
    .expect("saved");
    assert_eq!(field(&saved, "compressed").as_bool(), Some(true));
    assert_eq!(field(&saved, "generation").as_f64(), Some(3.0));
    let stored = local_storage()
        .get_item(&format!("sessile:{key}"))
        .unwrap()
        .expect("stored under sessile:<key>");
    assert!(stored.len() < json.len(), "stored as compressed base64");
    let loaded = load_snapshot(key, JsValue::UNDEFINED).expect("loaded");
    assert_eq!(
        state_text(&loaded),
        String::from(JSON::stringify(&js(&json)).unwrap())
    );
    assert_eq!(field(&loaded, "stateVersion").as_f64(), Some(7.0));
    assert!(load_snapshot("web-snapshot-none", JsValue::UNDEFINED)
        .expect("no error")
        .is_undefined());
    local_storage()
        .remove_item(&format!("sessile:{key}"))
        .unwrap();
}

#[wasm_bindgen_test]
fn a_corrupted_or_oversize_stored_snapshot_is_refused_with_its_code() {
    let key = "web-snapshot-corrupt";
    let full = format!("sessile:{key}");
    save_snapshot(
        key,
        &checkout_json(3),
        JsValue::UNDEFINED,
        JsValue::UNDEFINED,
    )
    .expect("saved");
    let good = local_storage().get_item(&full).unwrap().unwrap();
    // Another base64 character in the payload: the checksum no longer holds.
    let mut bad: Vec<char> = good.chars().collect();
    let at = bad.len() - 8;
    bad[at] = if bad[at] == 'A' { 'B' } else { 'A' };
    local_storage()
        .set_item(&full, &bad.iter().collect::<String>())
        .unwrap();
    let err = load_snapshot(key, JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(err), "CHECKSUM_MISMATCH");
    local_storage()
        .set_item(&full, "not base64 at all!")
        .unwrap();
    let err = load_snapshot(key, JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(err), "CORRUPT_PAYLOAD");
    local_storage().set_item(&full, &good).unwrap();
    let err = load_snapshot(key, js(r#"{"maxBytes":10}"#)).unwrap_err();
    assert_eq!(code_of(err), "STATE_TOO_LARGE");
    local_storage().remove_item(&full).unwrap();
}
