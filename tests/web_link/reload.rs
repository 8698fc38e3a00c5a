//! The link's record across page loads (a "reload" drops the `Link` as a
//! page that goes away does, and opens a new one from what was stored):
//! an offline outbox sent once after a reload, ops answered or applied
//! before it not sent twice, the bytes in IndexedDB in the TypeScript
//! client's layout, another tab's upgrade of the record's database, corrupt or foreign records, a storage that fails, close
//! and the options' checks.

use std::rc::Rc;

use serde_json::{json, Value};
use sessile::core::session::link::stored::{self, RecordSlots, Restored};
use sessile::web::link::{
    Link, LinkEvent, LinkOptions, LinkState, LocalFuture, MemoryRecords, RecordStore,
};
use sessile::SessileError;
use wasm_bindgen_test::*;

use super::support::*;

fn database(ns: &str, client: &str) -> String {
    stored::database_name(ns, client)
}

fn error_code(e: &LinkEvent) -> Option<&str> {
    match e {
        LinkEvent::ErrorOccurred { code, .. } => Some(code),
        _ => None,
    }
}

#[wasm_bindgen_test]
async fn an_offline_outbox_is_sent_after_a_reload_exactly_once() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({"cart": []})).await;
    let (ns, client) = (namespace("reload-offline"), client_id());
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    link.submit(json!({"a": 1}), None).unwrap();
    assert!(within(8_000, "first ack", link.when_acknowledged()).await);
    page_event("offline");
    until(2_000, "offline", || link.state() == LinkState::Offline).await;
    link.submit(json!({"b": 2}), None).unwrap();
    link.submit(json!({"c": 3}), None).unwrap();
    within(3_000, "stored", link.when_stored()).await.unwrap();
    drop(link); // the page goes away, offline
    page_event("online");
    let again = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    assert_eq!(again.outbox_len(), 2, "the outbox came back");
    assert_eq!(again.view()["c"], 3, "and the page sees it");
    assert!(within(8_000, "acknowledged", again.when_acknowledged()).await);
    let stored = s.stored().await;
    assert_eq!(stored["state"], json!({"cart": [], "a": 1, "b": 2, "c": 3}));
    assert_eq!(stored["version"], 4);
    assert_applied_once(&s, &client, &[1, 2, 3]).await;
}

#[wasm_bindgen_test]
async fn ops_applied_but_unanswered_before_a_reload_are_not_applied_twice() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({})).await;
    let (ns, client) = (namespace("reload-stall"), client_id());
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    until(8_000, "connected", || {
        matches!(link.state(), LinkState::Connected { .. })
    })
    .await;
    // The ops reach the server; its answers never come back.
    proxy.mode("stall").await;
    link.submit(json!({"a": 1}), None).unwrap();
    link.submit(json!({"b": 2}), None).unwrap();
    let mut applied = 0;
    for _ in 0..100 {
        applied = s.applied_ops().await.len();
        if applied == 2 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(applied, 2, "applied on the server");
    assert_eq!(link.outbox_len(), 2, "not acknowledged");
    drop(link);
    proxy.mode("pass").await;
    let again = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    assert_eq!(again.outbox_len(), 2);
    assert!(within(8_000, "acknowledged", again.when_acknowledged()).await);
    // The next op continues the numbering.
    again.submit(json!({"c": 3}), None).unwrap();
    assert!(within(5_000, "acknowledged", again.when_acknowledged()).await);
    assert_applied_once(&s, &client, &[1, 2, 3]).await;
    assert_eq!(s.stored().await["version"], 4);
}

#[wasm_bindgen_test]
async fn the_record_is_kept_in_the_typescript_clients_layout() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let s = create_session(json!({"cart": []})).await;
    let (ns, client) = (namespace("layout"), client_id());
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    link.submit(json!({"email": "a@b.example"}), Some("checkout"))
        .unwrap();
    within(3_000, "stored", link.when_stored()).await.unwrap();
    let (a, b, head) = idb_read(&database(&ns, &client)).await;
    assert_eq!(b, None, "the first write goes to slot a");
    let a = a.expect("slot a");
    let snapshot = sessile::decode(&a, &stored::envelope_config()).unwrap();
    assert_eq!(head, snapshot.meta.state_version);
    assert_eq!(snapshot.meta.schema_version, 1);
    let v: Value = serde_json::from_str(&snapshot.json).unwrap();
    assert_eq!(v["session"], s.id.as_str());
    let record = &v["record"];
    assert_eq!(record["format"], 1);
    assert_eq!(record["version"], 1);
    assert_eq!(record["confirmed"], json!({"cart": []}));
    assert_eq!(record["outbox"]["client"], client.as_str());
    let op = &record["outbox"]["ops"][0];
    assert_eq!(op["id"], json!({"client": client, "seq": 1}));
    assert_eq!(op["patch"], json!({"email": "a@b.example"}));
    assert_eq!(op["to"], "checkout");
    // The next write goes to the other slot, so a torn write cannot cost
    // the copy before it.
    link.submit(json!({"more": 1}), None).unwrap();
    within(3_000, "stored", link.when_stored()).await.unwrap();
    let (a2, b2, head2) = idb_read(&database(&ns, &client)).await;
    assert!(b2.is_some() && head2 == head + 1);
    assert_eq!(a2, Some(a), "slot a untouched");
}

#[wasm_bindgen_test]
async fn a_record_that_does_not_read_is_reported_and_the_link_starts_afresh() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({})).await;
    // Not a record: OUTBOX_CORRUPT.
    let (ns, client) = (namespace("corrupt-record"), client_id());
    let bad = json!({"session": s.id, "record": {"format": 9}}).to_string();
    let write = RecordSlots::new().plan(&bad, 0).unwrap();
    idb_write(&database(&ns, &client), "a", &write.bytes, 1).await;
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    let first = link.try_event().expect("reported first");
    assert_eq!(error_code(&first), Some("OUTBOX_CORRUPT"), "{first:?}");
    link.submit(json!({"fresh": true}), None).unwrap();
    assert!(within(8_000, "acknowledged", link.when_acknowledged()).await);
    assert_applied_once(&s, &client, &[1]).await;

    // Bytes that are no snapshot at all: the envelope's code.
    let (ns, client) = (namespace("corrupt-bytes"), client_id());
    idb_write(&database(&ns, &client), "a", &[b'x'; 64], 1).await;
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    let first = link.try_event().expect("reported first");
    assert_eq!(error_code(&first), Some("BAD_MAGIC"), "{first:?}");
    event(&link, 8_000, "connected", |e| {
        matches!(e, LinkEvent::ConnectionEstablished { .. })
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_record_of_another_session_is_not_resumed() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let (first, second) = (
        create_session(json!({})).await,
        create_session(json!({})).await,
    );
    let (ns, client) = (namespace("other-session"), client_id());
    let records = Rc::new(MemoryRecords::new());
    let link = Link::connect_with(options(&proxy, &first, &ns, &client), records.clone())
        .await
        .unwrap();
    link.submit(json!({"a": 1}), None).unwrap();
    link.close().await.unwrap();
    let other = Link::connect_with(options(&proxy, &second, &ns, &client), records.clone())
        .await
        .unwrap();
    assert_eq!(other.outbox_len(), 0);
    drop(other);
    let same = Link::connect_with(options(&proxy, &first, &ns, &client), records)
        .await
        .unwrap();
    assert_eq!(same.outbox_len(), 1, "its own session's record resumes");
}

/// A storage whose every write fails as a full disk does.
struct FullDisk;

impl RecordStore for FullDisk {
    fn load(&self) -> LocalFuture<Result<Restored, SessileError>> {
        Box::pin(async { Ok(Restored::default()) })
    }

    fn save(&self, text: String) -> LocalFuture<Result<(), SessileError>> {
        let bytes = text.len() as u64;
        Box::pin(async move { Err(SessileError::QuotaExceeded { bytes }) })
    }
}

#[wasm_bindgen_test]
async fn a_store_that_fails_is_reported_once_and_ops_still_go_out() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({})).await;
    let client = client_id();
    let o = options(&proxy, &s, &namespace("full-disk"), &client);
    let link = Link::connect_with(o, Rc::new(FullDisk)).await.unwrap();
    link.submit(json!({"a": 1}), None).unwrap();
    link.submit(json!({"b": 2}), None).unwrap();
    assert!(within(8_000, "acknowledged", link.when_acknowledged()).await);
    let err = link.when_stored().await.unwrap_err();
    assert_eq!(err.code(), "QUOTA_EXCEEDED");
    assert_applied_once(&s, &client, &[1, 2]).await;
    let mut reported = 0;
    while let Some(e) = link.try_event() {
        reported += usize::from(error_code(&e) == Some("QUOTA_EXCEEDED"));
    }
    assert_eq!(reported, 1, "reported when the failures began");
}

#[wasm_bindgen_test]
async fn close_stores_the_record_and_refuses_later_changes() {
    let proxy = Proxy::new().await;
    proxy.mode("down").await;
    let s = create_session(json!({})).await;
    let (ns, client) = (namespace("close"), client_id());
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    link.submit(json!({"kept": 1}), None).unwrap();
    link.close().await.unwrap();
    let err = link.submit(json!({"late": 1}), None).unwrap_err();
    assert_eq!(err.code(), "SESSION_CLOSED");
    assert!(!link.when_acknowledged().await);
    while link.try_event().is_some() {}
    assert_eq!(link.next_event().await, None, "no more events");
    proxy.mode("pass").await;
    let again = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    assert!(within(8_000, "acknowledged", again.when_acknowledged()).await);
    assert_applied_once(&s, &client, &[1]).await;
}

#[wasm_bindgen_test]
async fn bad_options_are_refused_with_stable_codes() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({})).await;
    let ns = namespace("options");
    let code = |o: LinkOptions| async move { Link::connect(o).await.err().map(|e| e.code()) };
    let mut o = options(&proxy, &s, &ns, &client_id());
    o.engine.session = "not-an-id".into();
    assert_eq!(code(o).await, Some("INVALID_OPTIONS"));
    let o = options(&proxy, &s, &ns, "short");
    assert_eq!(code(o).await, Some("OUTBOX_CORRUPT"));
    let mut o = options(&proxy, &s, &ns, &client_id());
    o.http = "ftp://127.0.0.1/".into();
    assert_eq!(code(o).await, Some("INVALID_OPTIONS"));
    let mut o = options(&proxy, &s, &ns, &client_id());
    o.confirmed = json!([1]);
    assert_eq!(code(o).await, Some("INVALID_OPTIONS"));
    let mut o = options(&proxy, &s, &ns, &client_id());
    o.namespace = String::new();
    assert_eq!(code(o).await, Some("INVALID_OPTIONS"));
    // A patch that is not an object is refused, and the link carries on.
    let link = Link::connect(options(&proxy, &s, &ns, &client_id()))
        .await
        .unwrap();
    assert_eq!(
        link.submit(json!([1]), None).unwrap_err().code(),
        "PROTOCOL_ERROR"
    );
    assert_eq!(link.outbox_len(), 0);
}

#[wasm_bindgen_test]
async fn another_tabs_upgrade_of_the_record_database_is_not_held_up_and_nothing_is_lost() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({})).await;
    let (ns, client) = (namespace("reload-upgraded"), client_id());
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    link.submit(json!({"a": 1}), None).unwrap();
    within(3_000, "stored", link.when_stored()).await.unwrap();
    // Another tab (a later release) opens the record's database at version
    // 2: the link must let go of its connection, or the upgrade waits.
    let upgraded = idb_upgrade(&database(&ns, &client), 2)
        .await
        .expect("the upgrade was not held up");
    upgraded.close();
    page_event("offline");
    until(2_000, "offline", || link.state() == LinkState::Offline).await;
    link.submit(json!({"b": 2}), None).unwrap();
    within(3_000, "stored after the upgrade", link.when_stored())
        .await
        .unwrap();
    drop(link); // the page goes away, offline
    page_event("online");
    let again = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    assert_eq!(
        again.view()["b"],
        2,
        "the record came back from the upgraded database"
    );
    assert!(within(8_000, "acknowledged", again.when_acknowledged()).await);
    assert_eq!(s.stored().await["state"], json!({"a": 1, "b": 2}));
    assert_applied_once(&s, &client, &[1, 2]).await;
}
