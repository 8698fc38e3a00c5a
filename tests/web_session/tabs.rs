//! Two tabs of one shopper: two sessions of one namespace in this page
//! (they share IndexedDB, localStorage, Web Locks and the BroadcastChannel
//! as two tabs do; each has its own client id). Each sees the other's
//! change, they join one server session, and issue 16's lost click: tab 1
//! offline adds X, tab 2 opens and adds X, tab 1 comes back: the server
//! has X = 2.

use serde_json::json;
use sessile::web::session::{SessionEvent, StoreEvent};
use wasm_bindgen_test::*;

use super::helpers::*;
use super::link_support::{assert_applied_once, page_event, sleep, until, Proxy};

#[wasm_bindgen_test]
async fn two_tabs_join_one_server_session_and_each_sees_the_others_change() {
    let proxy = Proxy::new().await;
    let ns = namespace("two-tabs");
    let one = connected(&ns, &proxy).await;
    let two = connected(&ns, &proxy).await;
    let id = one.session.server_session().unwrap().id;
    assert_eq!(
        two.session.server_session().unwrap().id,
        id,
        "joined, not created"
    );
    assert_ne!(one.client(), two.client(), "each tab its own client id");
    add(&one, "X");
    until(3_000, "tab 2 sees tab 1's X", || {
        two.session.get()["cart"]["X"] == 1
    })
    .await;
    add(&two, "Y");
    until(3_000, "tab 1 sees tab 2's Y", || {
        one.session.get()["cart"]["Y"] == 1
    })
    .await;
    one.session.flush().await.unwrap();
    two.session.flush().await.unwrap();
    let server = one.server().await;
    assert_eq!(
        server.stored().await["state"],
        json!({"cart": {"X": 1, "Y": 1}})
    );
    assert_applied_once(&server, &one.client(), &[1]).await;
    assert_applied_once(&server, &two.client(), &[1]).await;
    until(3_000, "both show the server's state", || {
        one.session.get() == two.session.get()
    })
    .await;
    // What another tab changed reaches this one as an event too.
    assert!(
        two.log
            .borrow()
            .iter()
            .any(|e| matches!(e, SessionEvent::Store(_))),
        "{:?}",
        two.log.borrow()
    );
}

#[wasm_bindgen_test]
async fn issue_16_a_click_made_offline_in_one_tab_is_not_lost_to_another_tab() {
    let proxy = Proxy::new().await;
    let ns = namespace("issue-16");
    let one = connected(&ns, &proxy).await;
    let server = one.server().await;
    // Tab 1 goes offline ("Go offline") and adds product X.
    let mark = one.mark();
    page_event("offline");
    one.wait_after(mark, 2_000, "tab 1 offline", |e| {
        matches!(e, SessionEvent::ConnectionLost { .. })
    })
    .await;
    assert_eq!(add(&one, "X"), 1);
    one.session.flush().await.unwrap(); // stored; offline it does not wait for the server
    assert_eq!(server.applied_ops().await.len(), 0);
    // Tab 2 opens: the stored copy has X = 1 and the server's older copy
    // does not replace it (tab 1 still has it to send).
    let two = connected(&ns, &proxy).await;
    sleep(200).await;
    assert_eq!(two.session.get()["cart"]["X"], 1, "{:?}", two.log.borrow());
    assert_eq!(
        one.session.get()["cart"]["X"],
        1,
        "tab 1 still shows its click"
    );
    // Tab 2 never took the server's copy over the stored one (tab 1 lists
    // X in the pending register), so tab 1 had nothing to adopt.
    let replaced = |e: &SessionEvent| {
        matches!(
            e,
            SessionEvent::SessionUpdated { .. }
                | SessionEvent::Store(StoreEvent::SessionUpdated { .. })
        )
    };
    assert!(
        !two.log.borrow().iter().any(replaced),
        "{:?}",
        two.log.borrow()
    );
    assert!(
        !one.log.borrow().iter().any(replaced),
        "{:?}",
        one.log.borrow()
    );
    // The shopper adds X in tab 2 too, and the server applies it.
    assert_eq!(add(&two, "X"), 2);
    two.session.flush().await.unwrap();
    assert_eq!(server.stored().await["state"]["cart"]["X"], 2);
    // Tab 1 comes back online: its click is in the server's 2, not lost.
    let mark = one.mark();
    page_event("online");
    one.connected_after(mark).await;
    one.session.flush().await.unwrap();
    two.session.flush().await.unwrap();
    let stored = server.stored().await;
    assert_eq!(stored["state"]["cart"]["X"], 2, "{stored}");
    until(3_000, "both tabs show X = 2", || {
        one.session.get()["cart"]["X"] == 2 && two.session.get()["cart"]["X"] == 2
    })
    .await;
    assert_eq!(one.session.diagnostics().session.unanswered, 0);
    // Every op was applied at most once.
    let ops = server.applied_ops().await;
    let mut seen = ops.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), ops.len(), "{ops:?}");
}
