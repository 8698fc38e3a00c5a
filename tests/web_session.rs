//! The session driver (`sessile::web::Session`, `openSession` in Rust) in a
//! real browser against the real server (run by `wasm-pack test
//! --headless --chrome` and `--firefox`; scripts/test starts
//! js/test/link_fixture.mjs and passes its URL in SESSILE_TEST_SERVER, as
//! for tests/web_link.rs): a session created and changed with the server's
//! state equal, a reload (the `Session` dropped as a page that goes away,
//! then opened again) restoring the local copy and the same server
//! session, offline changes delivered exactly once (the audit log), the
//! WebSocket refused so HTTP is used, the server killed and restarted, and
//! a conflict, and a page back from the back/forward cache whose socket
//! died meanwhile. Two tabs (two sessions of one namespace in one page, which
//! share storage, Web Locks and the BroadcastChannel as tabs do) are in
//! web_session/tabs.rs; the lifecycle, expiry and a local session in
//! web_session/lifecycle.rs; corrupt records and an unreachable server in
//! web_session/faults.rs; a session with a key (nothing of the state in
//! the clear, the pending register sealed) in web_session/crypt.rs.
#![cfg(target_arch = "wasm32")]

#[path = "web_session/crypt.rs"]
mod crypt;
#[path = "web_session/faults.rs"]
mod faults;
#[path = "web_session/helpers.rs"]
mod helpers;
#[path = "web_session/lifecycle.rs"]
mod lifecycle;
#[allow(dead_code)]
#[path = "web_link/support.rs"]
mod link_support;
#[path = "web_session/tabs.rs"]
mod tabs;

use helpers::*;
use link_support::{
    assert_applied_once, kill_server, page_event, page_shown_from_cache, sleep, start_server,
    until, Proxy,
};
use serde_json::json;
use sessile::web::session::{ConflictWinner, EnginePhase, SessionEvent, Transport};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_session_is_created_on_the_server_and_its_changes_land_once() {
    let proxy = Proxy::new().await;
    let ns = namespace("create");
    let tab = open(synced(&ns, &proxy)).await.unwrap();
    assert_eq!(tab.session.phase(), EnginePhase::Ready);
    let created = tab
        .wait(8_000, "created", |e| {
            matches!(e, SessionEvent::SessionCreated { .. })
        })
        .await;
    assert_eq!(tab.connected_after(0).await, Transport::WebSocket);
    let id = tab.session.server_session().unwrap().id;
    assert_eq!(created, SessionEvent::SessionCreated { id: id.clone() });
    assert!(tab.log.borrow().contains(&SessionEvent::AuthSuccess { id }));
    add(&tab, "X");
    add(&tab, "X");
    tab.session.update(json!({"email": "a@b.example"})).unwrap();
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let stored = server.stored().await;
    assert_eq!(
        stored["state"],
        json!({"cart": {"X": 2}, "email": "a@b.example"})
    );
    assert_eq!(stored["state"], tab.session.get());
    assert_eq!(stored["status"], "cart");
    assert_applied_once(&server, &tab.client(), &[1, 2, 3]).await;
    let d = tab.session.diagnostics();
    assert_eq!(d.session.unanswered, 0);
    assert_eq!(d.session.session_id, Some(server.id.clone()));
    assert_eq!(d.session.link.map(|l| l.outbox_len), Some(0));
    assert!(tab.errors().is_empty(), "{:?}", tab.errors());
}

#[wasm_bindgen_test]
async fn a_reload_restores_the_local_copy_and_the_same_server_session() {
    let proxy = Proxy::new().await;
    let ns = namespace("reload");
    let tab = connected(&ns, &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let before = tab.session.get();
    let server = tab.server().await;
    let client = tab.client();
    drop(tab); // the page goes away
    sleep(50).await;
    let again = open(synced(&ns, &proxy)).await.unwrap();
    // At once, before the server has answered: the local copy.
    assert_eq!(again.session.get(), before);
    assert_eq!(again.session.server_session().unwrap().id, server.id);
    assert_eq!(again.client(), client, "the tab's own client id");
    again.connected_after(0).await;
    assert!(
        !again
            .log
            .borrow()
            .iter()
            .any(|e| matches!(e, SessionEvent::SessionCreated { .. })),
        "no new server session"
    );
    add(&again, "Y");
    again.session.flush().await.unwrap();
    assert_eq!(
        server_state(&again).await,
        json!({"cart": {"X": 1, "Y": 1}})
    );
    assert_applied_once(&server, &client, &[1, 2]).await;
}

#[wasm_bindgen_test]
async fn offline_changes_are_sent_once_when_the_page_is_online_again() {
    let proxy = Proxy::new().await;
    let tab = connected(&namespace("offline"), &proxy).await;
    let server = tab.server().await;
    let mark = tab.mark();
    page_event("offline");
    tab.wait_after(mark, 2_000, "lost offline", |e| {
        *e == SessionEvent::ConnectionLost {
            reason: sessile::web::session::LossReason::Offline,
        }
    })
    .await;
    add(&tab, "X");
    add(&tab, "Y");
    // Offline, a flush does not wait for the server.
    tab.session.flush().await.unwrap();
    sleep(200).await;
    assert_eq!(server.applied_ops().await.len(), 0, "nothing sent offline");
    assert_eq!(tab.session.diagnostics().session.unanswered, 2);
    let mark = tab.mark();
    page_event("online");
    tab.connected_after(mark).await;
    tab.session.flush().await.unwrap();
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"X": 1, "Y": 1}})
    );
    assert_applied_once(&server, &tab.client(), &[1, 2]).await;
}

#[wasm_bindgen_test]
async fn changes_made_while_the_server_is_unreachable_survive_a_reload_and_are_sent_once() {
    let proxy = Proxy::new().await;
    let ns = namespace("crash");
    let tab = connected(&ns, &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let client = tab.client();
    let mark = tab.mark();
    proxy.mode("down").await;
    proxy.kill_websockets().await;
    tab.wait_after(mark, 3_000, "the loss", |e| {
        matches!(e, SessionEvent::ConnectionLost { .. })
    })
    .await;
    add(&tab, "Y");
    add(&tab, "Z");
    // Stored (no debounce), and the link record with the two ops.
    until(2_000, "stored", || {
        let store = tab.session.diagnostics().session.store;
        !store.unsaved && !store.writing
    })
    .await;
    sleep(200).await;
    drop(tab); // a crash: no close, no flush
    proxy.mode("pass").await;
    sleep(50).await;
    let again = open(synced(&ns, &proxy)).await.unwrap();
    assert_eq!(again.client(), client);
    assert_eq!(
        again.session.get(),
        json!({"cart": {"X": 1, "Y": 1, "Z": 1}})
    );
    again.connected_after(0).await;
    again.session.flush().await.unwrap();
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"X": 1, "Y": 1, "Z": 1}})
    );
    assert_applied_once(&server, &client, &[1, 2, 3]).await;
}

#[wasm_bindgen_test]
async fn a_refused_websocket_falls_back_to_http_and_changes_land() {
    let proxy = Proxy::new().await;
    proxy.mode("block-websocket").await;
    let tab = open(synced(&namespace("http"), &proxy)).await.unwrap();
    assert_eq!(tab.connected_after(0).await, Transport::Http);
    assert!(proxy.refused_upgrades().await >= 1, "WebSocket tried first");
    add(&tab, "X");
    tab.session
        .step("checkout", Some(json!({"email": "h@t.example"})))
        .unwrap();
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let stored = server.stored().await;
    assert_eq!(
        stored["state"],
        json!({"cart": {"X": 1}, "email": "h@t.example"})
    );
    assert_eq!(stored["status"], "checkout");
    assert_applied_once(&server, &tab.client(), &[1, 2]).await;
    let link = tab.session.diagnostics().session.link.unwrap();
    assert_eq!(link.preferred, Transport::Http);
}

#[wasm_bindgen_test]
async fn the_server_killed_and_restarted_gets_every_change_once() {
    let proxy = Proxy::new().await;
    let tab = connected(&namespace("restart"), &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let mark = tab.mark();
    kill_server().await;
    tab.wait_after(mark, 3_000, "the loss", |e| {
        matches!(e, SessionEvent::ConnectionLost { .. })
    })
    .await;
    add(&tab, "X");
    add(&tab, "Y");
    sleep(300).await;
    assert_eq!(tab.session.diagnostics().session.unanswered, 2);
    let mark = tab.mark();
    start_server().await;
    tab.connected_after(mark).await;
    tab.session.flush().await.unwrap();
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"X": 2, "Y": 1}})
    );
    assert_applied_once(&server, &tab.client(), &[1, 2, 3]).await;
}

#[wasm_bindgen_test]
async fn a_conflict_with_another_client_is_reported_and_the_servers_value_shown() {
    let proxy = Proxy::new().await;
    let tab = connected(&namespace("conflict"), &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let base = server.stored().await["version"].as_u64().unwrap();
    page_event("offline");
    sleep(100).await;
    tab.session.update(json!({"cart": {"X": 5}})).unwrap();
    // The back office sets the same key meanwhile.
    let ack = server
        .other_client_op(base, json!({"cart": {"X": 7}}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mark = tab.mark();
    page_event("online");
    let conflict = tab
        .wait_after(mark, 8_000, "the conflict", |e| {
            matches!(e, SessionEvent::Conflict { .. })
        })
        .await;
    let SessionEvent::Conflict {
        local,
        server: theirs,
        winner,
        ..
    } = conflict
    else {
        unreachable!()
    };
    assert_eq!(local, json!({"cart": {"X": 5}}));
    assert_eq!(theirs["cart"]["X"], 7);
    assert_eq!(winner, ConflictWinner::Server);
    tab.session.flush().await.unwrap();
    assert_eq!(
        tab.session.get()["cart"]["X"],
        7,
        "the page shows the server's"
    );
    assert_eq!(server.stored().await["state"]["cart"]["X"], 7);
    assert_applied_once(&server, &tab.client(), &[1]).await;
}

#[wasm_bindgen_test]
async fn back_from_the_back_forward_cache_the_session_reconnects_and_its_change_lands_once() {
    let proxy = Proxy::new().await;
    let ns = namespace("bfcache");
    // Liveness and the missing ack would take a minute to tell.
    let options = synced(&ns, &proxy)
        .option("heartbeatMs", json!(30_000))
        .option("ackTimeoutMs", json!(60_000));
    let tab = open(options).await.unwrap();
    tab.connected_after(0).await;
    add(&tab, "A");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let client = tab.client();
    // While the page is frozen its socket dies, and no close reaches it.
    proxy.freeze_websockets().await;
    add(&tab, "B");
    let mark = tab.mark();
    page_shown_from_cache();
    tab.connected_after(mark).await;
    let lost: Vec<SessionEvent> = tab.log.borrow()[mark..]
        .iter()
        .filter(|e| matches!(e, SessionEvent::ConnectionLost { .. }))
        .cloned()
        .collect();
    assert_eq!(
        lost,
        vec![SessionEvent::ConnectionLost {
            reason: sessile::web::session::LossReason::Frozen
        }],
        "the resume, not a timeout, replaced the connection"
    );
    until(5_000, "the change on the server", || {
        tab.session
            .diagnostics()
            .session
            .link
            .is_some_and(|l| l.outbox_len == 0)
    })
    .await;
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"A": 1, "B": 1}})
    );
    assert_applied_once(&server, &client, &[1, 2]).await;
}
