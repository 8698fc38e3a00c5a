//! The session's lifecycle in the browser: a step the flow refuses
//! (`INVALID_TRANSITION`, nothing changed here or on the server), expiry
//! by the clock (seen when the page becomes visible), `extend` and
//! `validate` answered by the server, `end` with a closed status of a
//! declared flow and `end` terminating (both clear the local copy), a
//! refused token and `authenticate`; the local copy evicted after a long
//! absence, with and without its marker, restored from the server; and a
//! session without a server:
//! restored after a reload, migrated, and its options checked.

use serde_json::json;
use sessile::web::session::{ServerSession, SessionEvent, SessionOptions, Validity};
use sessile::SessileError;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use super::helpers::*;
use super::link_support::{assert_applied_once, call, create_session, idb_delete, sleep, Proxy};
use sessile::core::session::link::stored::database_name;
use sessile::web::store::{RestoreOutcome, StoreEvent};

/// Moves the page's clock (`Date.now`) `ms` ahead of the real one (0: back).
fn shift_clock(ms: f64) {
    let shift = js_sys::Function::new_with_args(
        "ms",
        "const real = Date.sessileRealNow || (Date.sessileRealNow = Date.now); \
         Date.now = ms === 0 ? real : () => real.call(Date) + ms;",
    );
    shift.call1(&JsValue::NULL, &ms.into()).unwrap();
}

/// The server answers for session `s` that it is closed, in `status`.
async fn assert_closed_on_the_server(s: &super::link_support::Session, status: &str) {
    let url = format!("{}v1/sessions/{}", s.server, s.id);
    let (code, answer) = call("GET", &url, None, Some(&s.token)).await;
    assert_eq!(
        (code, answer["code"].as_str()),
        (410, Some("SESSION_CLOSED")),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("`{status}`")), "{answer}");
}

/// Tells the page its visibility changed (it stays what it is).
fn visibility_changed() {
    let document = web_sys::window().unwrap().document().unwrap();
    let e = web_sys::Event::new("visibilitychange").unwrap();
    document.dispatch_event(&e).unwrap();
}

#[wasm_bindgen_test]
async fn a_step_the_flow_does_not_allow_is_refused_with_invalid_transition() {
    let proxy = Proxy::new().await;
    let tab = connected(&namespace("transition"), &proxy).await;
    add(&tab, "X");
    let version = tab.session.version();
    let refused = tab
        .session
        .step("completed", Some(json!({"paid": true})))
        .unwrap_err();
    assert_eq!(refused.code(), "INVALID_TRANSITION");
    assert_eq!(
        refused,
        SessileError::InvalidTransition {
            from: "cart".into(),
            to: "completed".into()
        }
    );
    assert_eq!(tab.session.version(), version, "nothing changed");
    assert_eq!(tab.session.get().get("paid"), None);
    assert_eq!(tab.session.status(), "cart");
    tab.session.step("checkout", None).unwrap();
    assert_eq!(tab.session.status(), "checkout");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    let stored = server.stored().await;
    assert_eq!(stored["status"], "checkout");
    assert_eq!(stored["state"], json!({"cart": {"X": 1}}));
    assert!(tab.log.borrow().contains(&SessionEvent::StatusChanged {
        status: "checkout".into()
    }));
}

#[wasm_bindgen_test]
async fn a_session_past_its_ttl_expires_and_refuses_changes() {
    let tab = open(local(&namespace("expiry")).ttl_seconds(60))
        .await
        .unwrap();
    add(&tab, "X");
    let at = tab.session.expires_at();
    let now = js_sys::Date::now() as u64;
    assert!((now + 59_000..=now + 60_000).contains(&at), "{at} vs {now}");
    // The page slept (a background tab's timers fire late): a minute later
    // it becomes visible again.
    shift_clock(61_000.0);
    visibility_changed();
    let expired = tab
        .wait(2_000, "expired", |e| {
            matches!(e, SessionEvent::SessionExpired { .. })
        })
        .await;
    let changed = tab.session.update(json!({"late": true}));
    let validity = tab.session.validate().await;
    shift_clock(0.0);
    assert_eq!(
        expired,
        SessionEvent::SessionExpired {
            expires_at: at,
            status: "expired".into()
        }
    );
    assert_eq!(tab.session.status(), "expired");
    assert_eq!(changed.unwrap_err().code(), "SESSION_EXPIRED");
    assert_eq!(
        validity.unwrap(),
        Validity::Invalid {
            code: "SESSION_EXPIRED".into()
        }
    );
    assert_eq!(tab.session.get(), json!({"cart": {"X": 1}}));
}

#[wasm_bindgen_test]
async fn extend_and_validate_are_the_servers_answers() {
    let proxy = Proxy::new().await;
    let tab = connected(&namespace("extend"), &proxy).await;
    let before = tab.session.expires_at();
    let at = tab.session.extend(600).await.unwrap();
    assert!(at >= before + 590_000, "{at} after {before}");
    assert_eq!(tab.session.expires_at(), at);
    let stored = tab.server().await.stored().await;
    assert_eq!(stored["expiresAt"].as_u64(), Some(at), "{stored}");
    assert_eq!(
        tab.session.validate().await.unwrap(),
        Validity::Valid { expires_at: at }
    );
    let refused = tab.session.extend(0).await.unwrap_err();
    assert_eq!(refused.code, "INVALID_OPTIONS");
}

#[wasm_bindgen_test]
async fn end_with_a_closed_status_of_a_declared_flow_reaches_the_server_then_clears() {
    let proxy = Proxy::new().await;
    let ns = namespace("end-paid");
    let flow = json!({
        "initial": "cart",
        "statuses": {"cart": "active", "paid": "closed", "expired": "expired", "terminated": "closed"},
        "transitions": {"cart": ["paid", "expired", "terminated"]},
    });
    let tab = open(synced(&ns, &proxy).flow(flow.clone())).await.unwrap();
    tab.connected_after(0).await;
    add(&tab, "X");
    let server = tab.server().await;
    tab.session.end(Some("paid"), false).await.unwrap();
    assert_closed_on_the_server(&server, "paid").await;
    // The change and the move to `paid`, each once.
    assert_applied_once(&server, &tab.client(), &[1, 2]).await;
    assert!(tab.log.borrow().contains(&SessionEvent::SessionTerminated {
        reason: "paid".into(),
        status: "paid".into()
    }));
    // The session is over: a change is told so (openSession's code).
    assert_eq!(
        tab.session.update(json!({"a": 1})).unwrap_err().code(),
        "SESSION_CLOSED"
    );
    drop(tab);
    // The local copy and the server session are forgotten: a new one starts.
    let again = open(synced(&ns, &proxy).flow(flow)).await.unwrap();
    assert_eq!(again.session.get(), json!({"cart": {}}));
    again
        .wait(8_000, "a new session", |e| {
            matches!(e, SessionEvent::SessionCreated { .. })
        })
        .await;
    assert_ne!(again.session.server_session().unwrap().id, server.id);
}

#[wasm_bindgen_test]
async fn end_terminates_the_server_session_and_keep_leaves_the_local_copy() {
    let proxy = Proxy::new().await;
    let ns = namespace("end-kept");
    let tab = connected(&ns, &proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    let server = tab.server().await;
    tab.session.end(None, true).await.unwrap();
    assert_closed_on_the_server(&server, "terminated").await;
    assert_eq!(tab.session.status(), "terminated");
    drop(tab);
    let again = open(local(&ns)).await.unwrap();
    assert_eq!(again.session.get(), json!({"cart": {"X": 1}}), "kept");
}

#[wasm_bindgen_test]
async fn a_refused_token_asks_for_authentication_and_authenticate_joins() {
    let proxy = Proxy::new().await;
    let s = create_session(json!({"cart": {"A": 1}})).await;
    let wrong = ServerSession {
        id: s.id.clone(),
        token: "not-the-token".into(),
    };
    let options = synced(&namespace("auth"), &proxy);
    let server = sessile::web::session::ServerOptions::new(&proxy.url).session(wrong);
    let tab = open(options.server(server)).await.unwrap();
    let failed = tab
        .wait(8_000, "auth failed", |e| {
            matches!(e, SessionEvent::AuthFailed { .. })
        })
        .await;
    assert!(matches!(failed, SessionEvent::AuthFailed { code, .. } if code == "INVALID_TOKEN"));
    tab.wait(
        2_000,
        "auth required",
        |e| matches!(e, SessionEvent::AuthRequired { code } if code == "INVALID_TOKEN"),
    )
    .await;
    let mark = tab.mark();
    tab.session
        .authenticate(Some(ServerSession {
            id: s.id.clone(),
            token: s.token.clone(),
        }))
        .await
        .unwrap();
    tab.connected_after(mark).await;
    until_state(&tab, json!({"cart": {"A": 1}})).await;
    add(&tab, "B");
    tab.session.flush().await.unwrap();
    assert_eq!(s.stored().await["state"], json!({"cart": {"A": 1, "B": 1}}));
}

async fn until_state(tab: &Tab, state: serde_json::Value) {
    super::link_support::until(3_000, "the server's state", || tab.session.get() == state).await;
}

#[wasm_bindgen_test]
async fn a_local_session_is_restored_after_a_reload_and_migrated() {
    let ns = namespace("local");
    let tab = open(local(&ns)).await.unwrap();
    assert!(matches!(
        tab.log.borrow().first(),
        Some(SessionEvent::Store(_))
    ));
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    assert_eq!(tab.session.server_session(), None);
    assert_eq!(tab.session.diagnostics().session.link, None);
    tab.session.close().await.unwrap();
    assert_eq!(
        tab.session.update(json!({})).unwrap_err().code(),
        "STORE_CLOSED"
    );
    let v2 = local(&ns).schema_version(2).migration(1, |mut s| {
        s["currency"] = json!("EUR");
        Ok(s)
    });
    let again = open(v2).await.unwrap();
    assert_eq!(
        again.session.get(),
        json!({"cart": {"X": 1}, "currency": "EUR"})
    );
    assert_eq!(
        again.session.version(),
        tab.session.version() + 1,
        "migrated: a new version"
    );
    again.session.flush().await.unwrap();
    drop(again);
    sleep(20).await;
    let newer = open(local(&ns)).await.err().expect("an older page refuses");
    assert_eq!(newer.code(), "SCHEMA_TOO_NEW");
}

#[wasm_bindgen_test]
async fn bad_options_are_refused_before_anything_opens() {
    let cases = [
        (local("ok").ttl_seconds(59), "INVALID_OPTIONS"),
        (local("ok").flow(json!("kiosk")), "UNKNOWN_FLOW"),
        (
            local("ok").option("debounceMs", json!(-1)),
            "INVALID_OPTIONS",
        ),
        (
            local("ok").server(sessile::web::session::ServerOptions::new("ftp://shop")),
            "INVALID_OPTIONS",
        ),
        (SessionOptions::new(""), "INVALID_OPTIONS"),
    ];
    for (options, code) in cases {
        let e = open(options).await.err().expect("refused");
        assert_eq!(e.code(), code, "{e}");
    }
}

/// A synced session left with one change stored here and on the server;
/// the page goes away. Its namespace, server session and state.
async fn left_behind(test: &str, proxy: &Proxy) -> (String, ServerSession, serde_json::Value) {
    let ns = namespace(test);
    let tab = connected(&ns, proxy).await;
    add(&tab, "X");
    tab.session.flush().await.unwrap();
    assert_eq!(server_state(&tab).await, json!({"cart": {"X": 1}}));
    let (session, state, client) = (
        tab.session.server_session().unwrap(),
        tab.session.get(),
        tab.client(),
    );
    drop(tab);
    sleep(50).await;
    // What the browser evicts after a long absence: IndexedDB, the store's
    // database and the link's.
    idb_delete(&["sessile:", &ns].concat()).await;
    idb_delete(&database_name(&ns, &client)).await;
    (ns, session, state)
}

/// The restore outcome a tab reported first.
fn restore_outcome(tab: &Tab) -> RestoreOutcome {
    match tab.log.borrow().first() {
        Some(SessionEvent::Store(StoreEvent::StateRestored(outcome))) => outcome.clone(),
        other => panic!("the first event is state_restored: {other:?}"),
    }
}

/// Opens `ns` again with the server session the page kept itself (its own
/// cookie or account), and waits for the server's copy.
async fn come_back(
    ns: &str,
    proxy: &Proxy,
    session: ServerSession,
    state: serde_json::Value,
) -> Tab {
    let server = sessile::web::session::ServerOptions::new(&proxy.url).session(session);
    let tab = open(synced(ns, proxy).server(server)).await.unwrap();
    tab.connected_after(0).await;
    until_state(&tab, state).await;
    tab
}

#[wasm_bindgen_test]
async fn an_evicted_local_copy_is_reported_as_evicted_and_the_server_brings_it_back() {
    let proxy = Proxy::new().await;
    let (ns, session, state) = left_behind("evicted", &proxy).await;
    let tab = come_back(&ns, &proxy, session, state).await;
    assert!(
        matches!(restore_outcome(&tab), RestoreOutcome::Evicted { .. }),
        "the marker survived: {:?}",
        restore_outcome(&tab)
    );
    add(&tab, "Y");
    tab.session.flush().await.unwrap();
    assert_eq!(server_state(&tab).await, json!({"cart": {"X": 1, "Y": 1}}));
}

#[wasm_bindgen_test]
async fn with_its_marker_gone_too_the_copy_is_fresh_and_the_server_brings_it_back() {
    let proxy = Proxy::new().await;
    let (ns, session, state) = left_behind("wiped", &proxy).await;
    // Everything script-writable gone (Safari's seven days): the marker too.
    let ls = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    ls.remove_item(&["sessile:", &ns, ":marker"].concat())
        .unwrap();
    let doc = web_sys::window().unwrap().document().unwrap();
    let expired = ["sessile_", &ns, "=; Max-Age=0; Path=/"].concat();
    js_sys::Reflect::set(&doc, &"cookie".into(), &expired.into()).unwrap();
    let tab = come_back(&ns, &proxy, session, state).await;
    assert_eq!(restore_outcome(&tab), RestoreOutcome::Fresh);
}
