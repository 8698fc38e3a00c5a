//! Encrypted local copies in a real browser (`wasm-pack test --headless
//! --chrome` and `--firefox`): the golden sealed fixtures opened with
//! WebCrypto (RustCrypto opens the same files in tests/golden_sealed.rs);
//! a session with a key: round trip and reload, the key never in storage,
//! a wrong or missing key refused with the copy kept, `discardLocal` at
//! open and `Session::discard_local` (a save refused over another key's
//! copy then goes through), tampering with the ciphertext or the header,
//! plaintext migrated to sealed, key rotation, the outbox and the rescue
//! copy sealed.
#![cfg(target_arch = "wasm32")]

#[allow(dead_code)]
#[path = "web_store/helpers.rs"]
mod store_helpers;

use serde_json::{json, Value};
use sessile::core::envelope::{decode, EnvelopeConfig, FLAG_ENCRYPTED, HEADER_LEN};
use sessile::core::sealed::is_sealed;
use sessile::web::crypt::{open_snapshot, seal_snapshot};
use sessile::web::session::{ServerOptions, ServerSession, Session, SessionOptions};
use sessile::web::store::BackendKind;
use sessile::web::EncryptionKey;
use store_helpers::{fire_pagehide, fresh, idb_bytes, idb_set_bytes, ls, rescue_keys, sleep};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const KEY: [u8; 32] = [0x5a; 32];
const OTHER: [u8; 32] = [0xa5; 32];

fn raw(key: [u8; 32]) -> EncryptionKey {
    EncryptionKey::Raw(key.to_vec())
}

fn options(ns: &str) -> SessionOptions {
    SessionOptions::new(ns)
        .initial(json!({ "step": "cart", "items": [] }))
        .storage(BackendKind::IndexedDb)
        .debounce_ms(0)
        .persist(false)
}

fn secret_state() -> Value {
    json!({ "step": "details", "email": "shopper@example.com", "items": [1, 2] })
}

/// Opens, stores the secret state, closes.
async fn save_with(ns: &str, key: Option<[u8; 32]>) -> Session {
    let mut o = options(ns);
    if let Some(k) = key {
        o = o.encryption(raw(k));
    }
    let s = Session::open(o).await.unwrap();
    s.set(secret_state()).unwrap();
    s.flush().await.unwrap();
    s
}

async fn code_of_open(o: SessionOptions) -> String {
    match Session::open(o).await {
        Ok(_) => "opened".into(),
        Err(e) => e.code().into(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn db(ns: &str) -> String {
    ["sessile:", ns].concat()
}

#[wasm_bindgen_test]
async fn the_golden_sealed_fixtures_open_with_webcrypto() {
    let key = EncryptionKey::Raw(include_bytes!("fixtures/v1/sealed/key.bin").to_vec());
    let cfg = EnvelopeConfig::default();
    let small = include_bytes!("fixtures/v1/sealed/small.snap");
    let plain = open_snapshot(&key, small).await.unwrap();
    let snap = decode(&plain, &cfg).unwrap();
    assert_eq!(
        snap.json.as_bytes(),
        include_bytes!("fixtures/v1/sealed/small.json")
    );
    assert_eq!(snap.meta.state_version, 7);
    let large = include_bytes!("fixtures/v1/sealed/compressed.snap");
    let snap = decode(&open_snapshot(&key, large).await.unwrap(), &cfg).unwrap();
    assert!(snap.compressed);
    assert_eq!(
        snap.json.as_bytes(),
        include_bytes!("fixtures/v1/above-threshold.json")
    );
    for altered in [
        &include_bytes!("fixtures/v1/sealed/ciphertext-altered.snap")[..],
        include_bytes!("fixtures/v1/sealed/tag-altered.snap"),
        include_bytes!("fixtures/v1/sealed/header-altered.snap"),
        include_bytes!("fixtures/v1/sealed/nonce-altered.snap"),
    ] {
        let err = open_snapshot(&key, altered).await.unwrap_err();
        assert_eq!(err.code(), "DECRYPT_FAILED");
    }
    // WebCrypto's sealing is opened by the same code, with a fresh nonce.
    let again = seal_snapshot(&key, &plain).await.unwrap();
    let twice = seal_snapshot(&key, &plain).await.unwrap();
    assert_ne!(
        again[HEADER_LEN..HEADER_LEN + 12],
        twice[HEADER_LEN..HEADER_LEN + 12]
    );
    assert_eq!(open_snapshot(&key, &again).await.unwrap(), plain);
}

#[wasm_bindgen_test]
async fn a_session_with_a_key_stores_sealed_bytes_and_reloads_with_the_key() {
    let ns = "crypt-roundtrip";
    fresh(ns).await;
    let s = save_with(ns, Some(KEY)).await;
    // Diagnostics count the bytes as stored, nonce and tag included.
    let reported = s
        .diagnostics()
        .session
        .store
        .last_write
        .unwrap()
        .stored_bytes;
    s.close().await.unwrap();
    assert_eq!(reported, newest_slot(ns).await.1.len());
    let mut stored = vec![idb_bytes(&db(ns), "a").await];
    stored.extend(idb_get_b(ns).await);
    for bytes in &stored {
        assert!(is_sealed(bytes), "every slot is sealed");
        assert_eq!(bytes[5] & FLAG_ENCRYPTED, FLAG_ENCRYPTED);
    }
    for bytes in &stored {
        assert!(!contains(bytes, b"shopper@example.com"), "no plaintext");
        assert!(!contains(bytes, &KEY), "the key is never stored");
    }
    // Nor in localStorage (marker, rescue copies, ids).
    let storage = ls();
    for i in 0..storage.length().unwrap() {
        let k = storage.key(i).unwrap().unwrap();
        let v = storage.get_item(&k).unwrap().unwrap_or_default();
        assert!(!v.contains("shopper@example.com"), "{k} holds the state");
    }
    let s = Session::open(options(ns).encryption(raw(KEY)))
        .await
        .unwrap();
    assert_eq!(s.get(), secret_state());
    s.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_wrong_or_missing_key_refuses_the_open_and_keeps_the_copy() {
    let ns = "crypt-wrong";
    fresh(ns).await;
    save_with(ns, Some(KEY)).await.close().await.unwrap();
    let before = (idb_bytes(&db(ns), "a").await, idb_get_b(ns).await);
    assert_eq!(
        code_of_open(options(ns).encryption(raw(OTHER))).await,
        "DECRYPT_FAILED"
    );
    assert_eq!(code_of_open(options(ns)).await, "KEY_REQUIRED");
    assert_eq!(
        (idb_bytes(&db(ns), "a").await, idb_get_b(ns).await),
        before,
        "nothing was overwritten"
    );
    // The right key still reads it.
    let s = Session::open(options(ns).encryption(raw(KEY)))
        .await
        .unwrap();
    assert_eq!(s.get(), secret_state());
    s.close().await.unwrap();
    // discardLocal drops it: the session starts from `initial`.
    let s = Session::open(options(ns).encryption(raw(OTHER)).discard_local(true))
        .await
        .unwrap();
    assert_eq!(s.get(), json!({ "step": "cart", "items": [] }));
    s.set(json!({ "step": "cart", "items": [9] })).unwrap();
    s.flush().await.unwrap();
    s.close().await.unwrap();
    let s = Session::open(options(ns).encryption(raw(OTHER)))
        .await
        .unwrap();
    assert_eq!(s.get(), json!({ "step": "cart", "items": [9] }));
    s.close().await.unwrap();
}

async fn idb_get_b(ns: &str) -> Option<Vec<u8>> {
    let value = store_helpers::idb_get(&db(ns), "b").await;
    value
        .dyn_ref::<js_sys::Uint8Array>()
        .map(js_sys::Uint8Array::to_vec)
}

/// The slot holding the newest copy (the higher state version).
async fn newest_slot(ns: &str) -> (&'static str, Vec<u8>) {
    let a = idb_bytes(&db(ns), "a").await;
    let Some(b) = idb_get_b(ns).await else {
        return ("a", a);
    };
    let version = |bytes: &[u8]| u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    if version(&b) > version(&a) {
        ("b", b)
    } else {
        ("a", a)
    }
}

/// Flips a bit at `at` and writes the CRC-32 again, as a tamperer would.
fn tamper(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x01;
    let mut covered = bytes[..36].to_vec();
    covered.extend_from_slice(&bytes[HEADER_LEN..]);
    let crc = sessile::core::checksum::crc32(&covered);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
}

#[wasm_bindgen_test]
async fn tampering_with_the_ciphertext_or_the_header_is_caught() {
    // 20: modified-at, authenticated as associated data.
    for at in [HEADER_LEN + 14, 20] {
        let ns = "crypt-tamper";
        fresh(ns).await;
        save_with(ns, Some(KEY)).await.close().await.unwrap();
        let (slot, mut bytes) = newest_slot(ns).await;
        tamper(&mut bytes, at);
        idb_set_bytes(&db(ns), slot, &bytes).await;
        assert_eq!(
            code_of_open(options(ns).encryption(raw(KEY))).await,
            "DECRYPT_FAILED",
            "byte {at}"
        );
        assert_eq!(idb_bytes(&db(ns), slot).await, bytes, "kept as it is");
    }
    // A flip the checksum finds is corruption: that slot is skipped.
    let ns = "crypt-corrupt";
    fresh(ns).await;
    save_with(ns, Some(KEY)).await.close().await.unwrap();
    let (slot, mut bytes) = newest_slot(ns).await;
    bytes[HEADER_LEN + 14] ^= 0x01;
    idb_set_bytes(&db(ns), slot, &bytes).await;
    assert_ne!(
        code_of_open(options(ns).encryption(raw(KEY))).await,
        "DECRYPT_FAILED"
    );
}

#[wasm_bindgen_test]
async fn a_plaintext_copy_opened_with_a_key_is_sealed_by_the_next_write() {
    let ns = "crypt-migrate";
    fresh(ns).await;
    save_with(ns, None).await.close().await.unwrap();
    assert!(!is_sealed(&newest_slot(ns).await.1));
    let s = Session::open(options(ns).encryption(raw(KEY)))
        .await
        .unwrap();
    assert_eq!(s.get(), secret_state());
    s.update(json!({ "step": "payment" })).unwrap();
    s.flush().await.unwrap();
    s.close().await.unwrap();
    let (_, newest) = newest_slot(ns).await;
    assert!(is_sealed(&newest));
    assert!(!contains(&newest, b"shopper@example.com"));
    assert_eq!(code_of_open(options(ns)).await, "KEY_REQUIRED");
}

#[wasm_bindgen_test]
async fn rotating_the_key_re_encrypts_both_slots() {
    let ns = "crypt-rotate";
    fresh(ns).await;
    let s = save_with(ns, Some(KEY)).await;
    s.update(json!({ "step": "payment" })).unwrap();
    s.flush().await.unwrap();
    let before = (idb_bytes(&db(ns), "a").await, idb_get_b(ns).await.unwrap());
    s.rotate_key(raw(OTHER)).await.unwrap();
    let after = (idb_bytes(&db(ns), "a").await, idb_get_b(ns).await.unwrap());
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    let other = raw(OTHER);
    for bytes in [&after.0, &after.1] {
        assert!(
            open_snapshot(&other, bytes).await.is_ok(),
            "sealed with the new key"
        );
    }
    let bad = s
        .rotate_key(EncryptionKey::Raw(vec![1; 16]))
        .await
        .unwrap_err();
    assert_eq!(bad.code, "INVALID_OPTIONS");
    s.close().await.unwrap();
    let expected = json!({ "step": "payment", "email": "shopper@example.com", "items": [1, 2] });
    let s = Session::open(options(ns).encryption(raw(OTHER)))
        .await
        .unwrap();
    assert_eq!(s.get(), expected);
    s.close().await.unwrap();
    assert_eq!(
        code_of_open(options(ns).encryption(raw(KEY))).await,
        "DECRYPT_FAILED"
    );
}

#[wasm_bindgen_test]
async fn raw_keys_of_another_length_are_refused() {
    let o = options("crypt-len").encryption(EncryptionKey::Raw(vec![0; 16]));
    assert_eq!(code_of_open(o).await, "INVALID_OPTIONS");
}

#[wasm_bindgen_test]
async fn the_outbox_and_the_rescue_copy_are_sealed() {
    let ns = "crypt-outbox";
    fresh(ns).await;
    // A server session the page was given, on a server nobody answers:
    // the change stays in the outbox.
    let given = ServerSession {
        id: "0".repeat(32),
        token: "t".into(),
    };
    let o = options(ns)
        .encryption(raw(KEY))
        .server(ServerOptions::new("http://127.0.0.1:9/sessile").session(given));
    let s = Session::open(o).await.unwrap();
    let client = s.diagnostics().client.0;
    s.update(json!({ "email": "shopper@example.com" })).unwrap();
    let record_db = ["sessile:", ns, ":link:", &client].concat();
    let mut record = Vec::new();
    for _ in 0..100 {
        record = idb_bytes_or_empty(&record_db).await;
        if !record.is_empty() {
            break;
        }
        sleep(20).await;
    }
    assert!(is_sealed(&record), "the link record (outbox) is sealed");
    assert!(!contains(&record, b"shopper@example.com"));
    // A write under way when the page goes away leaves a sealed rescue copy.
    s.update(json!({ "email": "other@example.com" })).unwrap();
    fire_pagehide();
    let mut keys = Vec::new();
    for _ in 0..100 {
        keys = rescue_keys(ns);
        if !keys.is_empty() {
            break;
        }
        sleep(10).await;
    }
    for key in keys {
        let text = ls().get_item(&key).unwrap().unwrap();
        assert!(!text.contains("other@example.com"));
        let b64 = text.split_once(':').unwrap().1;
        let bytes = window_atob(b64).to_vec();
        assert!(bytes.is_empty() || is_sealed(&bytes), "{key} is sealed");
    }
    drop(s);
}

fn window_atob(b64: &str) -> js_sys::Uint8Array {
    let text = web_sys::window().unwrap().atob(b64).unwrap();
    let bytes: Vec<u8> = text.chars().map(|c| c as u8).collect();
    js_sys::Uint8Array::from(bytes.as_slice())
}

async fn idb_bytes_or_empty(db: &str) -> Vec<u8> {
    for slot in ["a", "b"] {
        let v = store_helpers::idb_get(db, slot).await;
        if let Some(a) = v.dyn_ref::<js_sys::Uint8Array>() {
            return a.to_vec();
        }
    }
    Vec::new()
}

/// Polls until `pred` holds (at most 3 s).
async fn until(what: &str, pred: impl Fn() -> bool) {
    for _ in 0..300 {
        if pred() {
            return;
        }
        sleep(10).await;
    }
    panic!("{what}: not within 3 s");
}

/// Two sessions of `ns` (emptied first) in one page, as two tabs, with
/// keys `KEY` and `OTHER`: the first stores `{ "step": first }` in slot a,
/// and the second takes it.
async fn two_tabs(ns: &str, first: &str) -> (Session, Session) {
    fresh(ns).await;
    let one = Session::open(options(ns).encryption(raw(KEY)))
        .await
        .unwrap();
    let two = Session::open(options(ns).encryption(raw(OTHER)))
        .await
        .unwrap();
    one.set(json!({ "step": first })).unwrap();
    one.flush().await.unwrap();
    until("the second takes the first's copy", || {
        two.get() == json!({ "step": first })
    })
    .await;
    (one, two)
}

#[wasm_bindgen_test]
async fn a_session_never_writes_over_a_copy_sealed_with_another_key() {
    let ns = "crypt-two-keys";
    let (a, b) = two_tabs(ns, "a1").await;
    // Slot b is empty: b may store its copy there.
    b.set(json!({ "step": "b1" })).unwrap();
    b.flush().await.unwrap();
    until("a takes b's copy", || a.get() == json!({ "step": "b1" })).await;
    // a writes over its own copy in slot a...
    a.set(json!({ "step": "a2" })).unwrap();
    a.flush().await.unwrap();
    let before = idb_get_b(ns).await;
    assert!(open_snapshot(&raw(OTHER), before.as_deref().unwrap())
        .await
        .is_ok());
    // ...but its next write would replace b's copy, which its key does not open.
    a.set(json!({ "step": "a3" })).unwrap();
    assert_eq!(a.flush().await.unwrap_err().code, "DECRYPT_FAILED");
    assert_eq!(idb_get_b(ns).await, before, "b's copy is kept");
    drop(a);
    drop(b);
}

#[wasm_bindgen_test]
async fn discard_local_lets_a_refused_save_write_over_another_keys_copy() {
    let ns = "crypt-discard";
    let (k1, k2) = two_tabs(ns, "k1").await;
    // K2's first copy goes to the empty slot b; its next would replace K1's in slot a.
    k2.set(json!({ "step": "k2a" })).unwrap();
    k2.flush().await.unwrap();
    let k1_copy = idb_bytes(&db(ns), "a").await;
    assert!(open_snapshot(&raw(KEY), &k1_copy).await.is_ok());
    k2.set(json!({ "step": "k2b" })).unwrap();
    assert_eq!(k2.flush().await.unwrap_err().code, "DECRYPT_FAILED");
    assert_eq!(idb_bytes(&db(ns), "a").await, k1_copy, "K1's copy is kept");
    // The page decides: K1's copy may go, and K2's state is written.
    k2.discard_local().await.unwrap();
    k2.flush().await.unwrap();
    for slot in ["a", "b"] {
        let bytes = idb_bytes(&db(ns), slot).await;
        assert!(
            open_snapshot(&raw(OTHER), &bytes).await.is_ok(),
            "slot {slot} is K2's"
        );
    }
    drop(k1);
    k2.close().await.unwrap();
    let s = Session::open(options(ns).encryption(raw(OTHER)))
        .await
        .unwrap();
    assert_eq!(s.get(), json!({ "step": "k2b" }));
    s.close().await.unwrap();
    assert_eq!(
        code_of_open(options(ns).encryption(raw(KEY))).await,
        "DECRYPT_FAILED"
    );
    // Without a key nothing is refused: discarding resolves and changes nothing.
    let plain = "crypt-discard-plain";
    fresh(plain).await;
    let s = save_with(plain, None).await;
    let before = idb_bytes(&db(plain), "a").await;
    s.discard_local().await.unwrap();
    assert_eq!(idb_bytes(&db(plain), "a").await, before);
    s.close().await.unwrap();
}
