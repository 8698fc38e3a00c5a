//! Browser tests of the store's JavaScript export (`openStore`, `WasmStore`
//! in `sessile::web::store_api`), called as the package calls it: options
//! checked in Rust with the messages pages see, events and diagnostics as
//! the package's plain objects, the state handed back as the object that
//! was set, and the two ways of moving a state across the JS boundary (JSON
//! text, serde-wasm-bindgen) agreeing on the 100 KB checkout fixture, with
//! what each costs printed (docs/PERFORMANCE.md, "The JS boundary").
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect, JSON};
use serde::Serialize;
use serde_json::Value;
use sessile::web::store_api::{open_store, WasmStore};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const FIXTURE: &str = include_str!("fixtures/v1/checkout-100k.json");

fn js(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn field(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap()
}

fn text(value: &JsValue) -> String {
    JSON::stringify(value).unwrap().into()
}

/// `{ name, storage: "memory", ...extra }` with an `onEvent` that keeps every event in `events`.
fn options(name: &str, extra: &str, events: &Array) -> JsValue {
    let options = js(extra);
    Reflect::set(&options, &"name".into(), &name.into()).unwrap();
    Reflect::set(&options, &"storage".into(), &"memory".into()).unwrap();
    let push: Function = Reflect::get(events, &"push".into())
        .unwrap()
        .unchecked_into();
    Reflect::set(&options, &"onEvent".into(), &push.bind0(events)).unwrap();
    options
}

async fn failure(options: JsValue) -> (String, String) {
    let Err(e) = open_store(options, false).await else {
        panic!("opened")
    };
    (
        field(&e, "code").as_string().unwrap(),
        field(&e, "message").as_string().unwrap(),
    )
}

#[wasm_bindgen_test]
async fn bad_options_are_invalid_options_naming_the_option() {
    let none = Array::new();
    let cases = [
        (JsValue::NULL, "invalid option `options`: openStore needs an options object with a `name`"),
        (js(r#"{"name": 7}"#), "invalid option `name`: must be a non-empty string"),
        (js(r#"{"name": ""}"#), "invalid option `name`: must be 1 to 100 characters, none of them control characters"),
        (js(r#"{"name": "n", "storage": "disk"}"#), "invalid option `storage`: must be \"auto\", \"indexeddb\", \"localstorage\" or \"memory\""),
        (js(r#"{"name": "n", "onEvent": 1}"#), "invalid option `onEvent`: must be a function"),
        (js(r#"{"name": "n", "migrate": 1}"#), "invalid option `migrate`: must be an object of functions keyed by schema version"),
        (js(r#"{"name": "n", "debounceMs": 60001}"#), "invalid option `debounceMs`: must be a whole number from 0 to 60000"),
        (js(r#"{"name": "n", "schemaVersion": 1.5}"#), "invalid option `schemaVersion`: must be a whole number from 0 to 4294967295"),
        (js(r#"{"name": "n", "maxBytes": 0}"#), "invalid option `maxBytes`: must be between 1 and 268435456"),
        (js(r#"{"name": "n", "compressionLevel": 10}"#), "invalid option `compressionLevel`: must be a whole number from 0 to 9"),
    ];
    for (options, message) in cases {
        assert_eq!(
            failure(options).await,
            ("INVALID_OPTIONS".into(), message.into())
        );
    }
    // An initial state JSON cannot hold.
    let cyclic = options("n", "{}", &none);
    let initial = Object::new();
    Reflect::set(&initial, &"self".into(), &initial).unwrap();
    Reflect::set(&cyclic, &"initial".into(), &initial).unwrap();
    assert_eq!(failure(cyclic).await.0, "INVALID_STATE");
}

#[wasm_bindgen_test]
async fn events_and_diagnostics_are_the_packages_objects() {
    let events = Array::new();
    let store: WasmStore = open_store(
        options("api-events", r#"{"initial": {"step": "cart"}}"#, &events),
        false,
    )
    .await
    .unwrap();
    assert_eq!(events.length(), 1);
    assert_eq!(
        text(&events.get(0)),
        r#"{"type":"state_restored","outcome":"fresh"}"#
    );
    assert_eq!(text(&store.state()), r#"{"step":"cart"}"#);
    let d = store.diagnostics();
    assert_eq!(field(&d, "name").as_string().unwrap(), "api-events");
    assert_eq!(field(&d, "backend").as_string().unwrap(), "memory");
    assert!(field(&d, "lastWrite").is_null());
    assert!(field(&d, "lastError").is_null());
    assert!(field(&d, "blocked").is_null());

    let set = js(r#"{"step": "checkout", "items": [{"sku": "A", "qty": 2}]}"#);
    assert_eq!(store.set(set.clone()).unwrap(), 1.0);
    assert!(store.state() == set, "the state is the object that was set");
    assert_eq!(store.version(), 1.0);
    assert!(field(&store.diagnostics(), "unsaved").as_bool().unwrap());
    wasm_bindgen_futures::JsFuture::from(store.flush())
        .await
        .unwrap();
    let write = field(&store.diagnostics(), "lastWrite");
    assert_eq!(field(&write, "generation").as_f64(), Some(1.0));
    assert_eq!(field(&write, "checksum").as_string().unwrap().len(), 8);

    // A value JSON cannot hold is refused, and the state stays.
    let Err(e) = store.set(JsValue::UNDEFINED) else {
        panic!("set undefined")
    };
    assert_eq!(field(&e, "code").as_string().unwrap(), "INVALID_STATE");
    assert!(store.state() == set);

    wasm_bindgen_futures::JsFuture::from(store.close())
        .await
        .unwrap();
    let Err(e) = store.set(js("1")) else {
        panic!("set after close")
    };
    assert_eq!(field(&e, "name").as_string().unwrap(), "SessileError");
    assert_eq!(field(&e, "code").as_string().unwrap(), "STORE_CLOSED");
    assert_eq!(
        field(&e, "message").as_string().unwrap(),
        "the store is closed"
    );
}

/// Milliseconds, as `performance.now()` gives them.
fn now() -> f64 {
    let performance = field(&js_sys::global(), "performance");
    let now: Function = field(&performance, "now").unchecked_into();
    now.call0(&performance).unwrap().as_f64().unwrap()
}

/// The median time of `runs` calls of `f`, ms.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = now();
            f();
            now() - t
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[runs / 2]
}

#[wasm_bindgen_test]
fn the_state_crosses_the_same_as_json_text_and_through_serde_wasm_bindgen() {
    let page = js(FIXTURE);
    let expected = text(&page);
    let by_text = |v: &JsValue| -> Value { serde_json::from_str(&text(v)).unwrap() };
    let by_swb = |v: &JsValue| -> Value { serde_wasm_bindgen::from_value(v.clone()).unwrap() };
    let out_text = |v: &Value| -> JsValue { js(&serde_json::to_string(v).unwrap()) };
    let swb = serde_wasm_bindgen::Serializer::json_compatible();
    let out_swb = |v: &Value| -> JsValue { v.serialize(&swb).unwrap() };

    let value = by_text(&page);
    assert_eq!(by_swb(&page), value);
    assert_eq!(text(&out_text(&value)), expected, "keys keep their order");
    assert_eq!(text(&out_swb(&value)), expected);

    let runs = 21;
    let figures = [
        ("in, JSON text", median(runs, || drop(by_text(&page)))),
        (
            "in, serde-wasm-bindgen",
            median(runs, || drop(by_swb(&page))),
        ),
        ("out, JSON text", median(runs, || drop(out_text(&value)))),
        (
            "out, serde-wasm-bindgen",
            median(runs, || drop(out_swb(&value))),
        ),
    ];
    for (what, ms) in figures {
        console_log!(
            "boundary, {} B state: {what}: {ms:.3} ms (median of {runs})",
            FIXTURE.len()
        );
    }
}
