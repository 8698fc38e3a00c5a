//! A synced session with a key (`encryption`) keeps nothing of the state in
//! the clear: before its server session exists (the creation cannot reach
//! the server), and once it has one, where this client's entry of the
//! pending register lists the paths it still has to send; a reload with
//! the key finds the change, which reaches the server once it answers.

use serde_json::json;
use sessile::core::session::link::stored::database_name;
use sessile::web::session::{ServerOptions, ServerSession, SessionOptions};
use sessile::web::EncryptionKey;
use wasm_bindgen_test::*;

use super::helpers::*;
use super::link_support::{create_session, idb_read, sleep, Proxy};

/// A product id the state holds as a key (so a listed path names it).
const MARKER: &str = "sku-secret-4711";

fn keyed(o: SessionOptions) -> SessionOptions {
    o.encryption(EncryptionKey::Raw(vec![0x5a; 32]))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every value of localStorage and sessionStorage, and the bytes of the
/// namespace's slots and of `client`'s link record: none holds `MARKER`.
async fn nothing_in_the_clear(ns: &str, client: &str) {
    let window = web_sys::window().unwrap();
    for storage in [window.local_storage(), window.session_storage()] {
        let storage = storage.unwrap().unwrap();
        for i in 0..storage.length().unwrap() {
            let k = storage.key(i).unwrap().unwrap();
            let v = storage.get_item(&k).unwrap().unwrap_or_default();
            assert!(!v.contains(MARKER), "{k} holds the state: {v}");
        }
    }
    for db in [["sessile:", ns].concat(), database_name(ns, client)] {
        let (a, b, _) = idb_read(&db).await;
        for bytes in [a, b].into_iter().flatten() {
            assert!(!contains(&bytes, MARKER.as_bytes()), "{db} holds the state");
        }
    }
}

#[wasm_bindgen_test]
async fn with_a_key_a_change_made_before_the_server_session_exists_is_sealed_and_delivered() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let ns = namespace("crypt-early");
    let tab = open(keyed(synced(&ns, &proxy))).await.unwrap();
    tab.wait(
        3_000,
        "the failed creation",
        error_with("SERVER_UNREACHABLE"),
    )
    .await;
    add(&tab, MARKER);
    assert_eq!(tab.session.server_session(), None);
    sleep(300).await;
    let client = tab.client();
    nothing_in_the_clear(&ns, &client).await;
    // A reload with the key finds the change.
    drop(tab);
    let tab = open(keyed(synced(&ns, &proxy))).await.unwrap();
    assert_eq!(tab.session.get()["cart"][MARKER], json!(1));
    nothing_in_the_clear(&ns, &client).await;
    created_once_it_answers(&tab, &proxy).await;
    assert_eq!(server_state(&tab).await, json!({"cart": {MARKER: 1}}));
}

#[wasm_bindgen_test]
async fn with_a_key_the_pending_register_entry_is_sealed() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let ns = namespace("crypt-register");
    let server = create_session(json!({"cart": {}})).await;
    let given = ServerSession {
        id: server.id.clone(),
        token: server.token.clone(),
    };
    let options =
        || keyed(synced(&ns, &proxy).server(ServerOptions::new(&proxy.url).session(given.clone())));
    let tab = open(options()).await.unwrap();
    let client = tab.client();
    add(&tab, MARKER);
    // The entry lists the unsent op once the link has a server session.
    let key = format!("sessile:{ns}:pending:{client}");
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let mut entry = None;
    for _ in 0..300 {
        entry = storage.get_item(&key).unwrap();
        if entry.is_some() {
            break;
        }
        sleep(10).await;
    }
    let entry = entry.expect("the entry is written");
    assert!(!entry.starts_with('{'), "sealed, not JSON: {entry}");
    nothing_in_the_clear(&ns, &client).await;
    // A reload with the key: the change is there and reaches the server.
    drop(tab);
    let tab = open(options()).await.unwrap();
    assert_eq!(tab.session.get()["cart"][MARKER], json!(1));
    proxy.mode("pass").await;
    tab.connected_after(0).await;
    tab.session.flush().await.unwrap();
    assert_eq!(server_state(&tab).await, json!({"cart": {MARKER: 1}}));
}
