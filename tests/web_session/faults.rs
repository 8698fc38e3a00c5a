//! Bad input and a server out of reach: a link record whose bytes are
//! corrupt, or that reads but is not a record, is reported with its code
//! and the session starts its link afresh; requests to an unreachable
//! server fail with the retryable `SERVER_UNREACHABLE` and clear nothing;
//! a session whose creation cannot reach the server is created once it
//! answers.

use serde_json::json;
use sessile::core::session::link::stored::{database_name, stored_text, RecordSlots};
use sessile::web::session::{ServerOptions, ServerSession, SessionEvent};
use wasm_bindgen_test::*;

use super::helpers::*;
use super::link_support::{
    assert_applied_once, client_id, create_session, idb_write, sleep, Proxy,
};

/// Makes `client` this tab's client id for namespace `ns` (as a reload finds it).
fn own_client(ns: &str, client: &str) {
    let storage = web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap();
    storage
        .set_item(&format!("sessile:{ns}:client"), &format!("\"{client}\""))
        .unwrap();
}

#[wasm_bindgen_test]
async fn corrupt_link_record_bytes_are_reported_and_the_link_starts_afresh() {
    let proxy = Proxy::new().await;
    let (ns, client) = (namespace("corrupt-bytes"), client_id());
    own_client(&ns, &client);
    idb_write(&database_name(&ns, &client), "a", b"not an envelope", 1).await;
    let tab = open(synced(&ns, &proxy)).await.unwrap();
    assert_eq!(tab.client(), client);
    let reported = tab
        .wait(2_000, "the corrupt record", error_with("BAD_MAGIC"))
        .await;
    let SessionEvent::ErrorOccurred { message, .. } = reported else {
        unreachable!()
    };
    assert!(
        message.starts_with("the link's record could not be read"),
        "{message}"
    );
    tab.connected_after(0).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    assert_eq!(server.stored().await["state"], json!({"cart": {"X": 1}}));
    assert_applied_once(&server, &client, &[1]).await;
}

#[wasm_bindgen_test]
async fn a_link_record_that_is_not_one_is_outbox_corrupt_and_the_link_starts_afresh() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({"cart": {}})).await;
    let (ns, client) = (namespace("corrupt-record"), client_id());
    own_client(&ns, &client);
    let text = stored_text(&s.id, r#"{"outbox": "not a list"}"#);
    let write = RecordSlots::new().plan(&text, 1).unwrap();
    idb_write(
        &database_name(&ns, &client),
        "a",
        &write.bytes,
        write.version,
    )
    .await;
    let session = ServerSession {
        id: s.id.clone(),
        token: s.token.clone(),
    };
    let server = ServerOptions::new(&proxy.url).session(session);
    let tab = open(synced(&ns, &proxy).server(server)).await.unwrap();
    tab.wait(3_000, "OUTBOX_CORRUPT", error_with("OUTBOX_CORRUPT"))
        .await;
    tab.connected_after(0).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    assert_eq!(s.stored().await["state"], json!({"cart": {"X": 1}}));
    assert_applied_once(&s, &client, &[1]).await;
}

#[wasm_bindgen_test]
async fn requests_to_an_unreachable_server_fail_retryably_and_clear_nothing() {
    let proxy = Proxy::new().await;
    let ns = namespace("unreachable");
    let tab = connected(&ns, &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    proxy.mode("down").await;
    let extend = tab.session.extend(600).await.unwrap_err();
    assert_eq!(
        (extend.code.as_str(), extend.retryable),
        ("SERVER_UNREACHABLE", true)
    );
    let validate = tab.session.validate().await.unwrap_err();
    assert_eq!(validate.code, "SERVER_UNREACHABLE");
    let end = tab.session.end(None, false).await.unwrap_err();
    assert_eq!(end.code, "SERVER_UNREACHABLE", "{end}");
    // Nothing was ended or cleared: the session goes on.
    assert_eq!(tab.session.status(), "cart");
    add(&tab, "Y");
    assert_eq!(tab.session.get(), json!({"cart": {"X": 1, "Y": 1}}));
    proxy.mode("pass").await;
    let mark = tab.mark();
    tab.connected_after(mark).await;
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"X": 1, "Y": 1}})
    );
    tab.session.end(None, false).await.unwrap();
    assert_eq!(tab.session.status(), "terminated");
}

#[wasm_bindgen_test]
async fn a_session_whose_creation_cannot_reach_the_server_is_created_once_it_answers() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let tab = open(synced(&namespace("create-later"), &proxy))
        .await
        .unwrap();
    tab.wait(
        3_000,
        "the failed creation",
        error_with("SERVER_UNREACHABLE"),
    )
    .await;
    // Usable meanwhile: the change goes to the server with the session.
    add(&tab, "X");
    assert_eq!(tab.session.server_session(), None);
    sleep(200).await;
    created_once_it_answers(&tab, &proxy).await;
    assert_eq!(server_state(&tab).await, json!({"cart": {"X": 1}}));
    let created = tab
        .log
        .borrow()
        .iter()
        .filter(|e| matches!(e, SessionEvent::SessionCreated { .. }))
        .count();
    assert_eq!(created, 1);
}
