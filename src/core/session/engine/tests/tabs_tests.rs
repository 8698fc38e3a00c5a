//! Two tabs of one synced session in one browser (docs/PROTOCOL.md, "Tabs
//! of a synced session"): the server's copy never replaces what another
//! tab still has to send (rule 1), a tab that takes another tab's stored
//! copy puts its own unanswered changes back on top (rule 2), and an op
//! made on top of another tab's change is not lost to it (rule 3). The
//! whole of issue 16's lost click, against the real server engine:
//! `server/tests/session_sim.rs`.

use serde_json::json;

use super::harness::*;
use crate::core::error::SessileError;
use crate::core::protocol::CatchUp;
use crate::core::session::engine::*;
use crate::core::session::link::Transport;
use crate::core::session::store::BackendKind;

const NS: &str = "t-tabs";

/// Tab 1 created the session and is welcomed; tab 2 opens on the same
/// browser (the session remembered), not connected yet.
fn two_tabs(b: &Shared) -> (Page, Page) {
    let one = synced_page(b, NS, 1);
    let two = Page::open(b, synced_config(NS, 2), one.now);
    (one, two)
}

fn key_of(n: u8) -> String {
    [NS, ":pending:", &client(n).0].concat()
}

#[test]
fn a_tab_lists_its_unanswered_ops_and_removes_the_entry_once_answered() {
    let b = browser();
    let mut one = synced_page(&b, NS, 1);
    one.update(json!({"cart": {"X": 1}}));
    let entry: serde_json::Value = serde_json::from_str(&b.borrow().local[&key_of(1)]).unwrap();
    assert_eq!(
        entry,
        json!({"session": SESSION, "ops": [{"seq": 1, "paths": [["cart", "X"]]}]})
    );
    one.frame(ack(&client(1), 1, 2));
    assert!(!b.borrow().local.contains_key(&key_of(1)));
}

#[test]
fn an_entry_that_does_not_fit_is_written_short_and_one_that_cannot_be_written_is_reported() {
    let b = browser();
    let mut one = synced_page(&b, NS, 1);
    let quota = || SessileError::QuotaExceeded { bytes: 10 };
    b.borrow_mut().fail_register.push_back(quota());
    one.update(json!({"cart": {"X": 1}}));
    let entry: serde_json::Value = serde_json::from_str(&b.borrow().local[&key_of(1)]).unwrap();
    assert_eq!(entry, json!({"session": SESSION, "all": true, "last": 1}));
    assert!(!one.kinds().contains(&"ErrorOccurred".to_string()));
    one.engine.handle_visible(true, one.now);
    one.run();
    let writes = one.log.iter().filter(|l| *l == "register").count();
    assert_eq!(
        writes, 2,
        "the refused full form is not tried again for the same ops"
    );
    b.borrow_mut()
        .fail_register
        .extend([quota(), quota(), quota(), quota()]);
    one.update(json!({"cart": {"X": 2}}));
    one.update(json!({"cart": {"X": 3}}));
    let errors: Vec<_> = one
        .events
        .iter()
        .filter(|e| matches!(e, SessionEvent::ErrorOccurred { .. }))
        .collect();
    assert_eq!(errors.len(), 1, "told once: {errors:?}");
    assert!(
        matches!(errors[0], SessionEvent::ErrorOccurred { code, .. } if code == "QUOTA_EXCEEDED")
    );
}

/// Rule 1, issue 16's steps 1 to 3: tab 1's click is unsent (offline);
/// tab 2 opens, restores the shared copy and takes the server's older copy:
/// it keeps tab 1's click, on its page and in what it stores.
#[test]
fn the_servers_copy_never_replaces_what_another_tab_still_has_to_send() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    one.engine.handle_online(false, one.now);
    one.update(json!({"cart": {"X": 1}}));
    one.advance(one.now + 20);
    two.hear_register(NS, &client(1).0);
    two.hear();
    assert_eq!(
        two.engine.state(),
        &json!({"cart": {"X": 1}}),
        "restored from tab 1's copy"
    );
    two.connected(Transport::WebSocket);
    two.frame(welcome(
        2,
        0,
        CatchUp::Snapshot {
            state: json!({"cart": {}, "email": "o@x"}),
        },
    ));
    assert_eq!(
        two.engine.state(),
        &json!({"cart": {"X": 1}, "email": "o@x"})
    );
    two.advance(two.now + 20);
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}, "email": "o@x"}))
    );
    // Step 4: the shopper adds X again in tab 2, on top of tab 1's click.
    two.update(json!({"cart": {"X": 2}}));
    assert_eq!(
        two.ops().last().unwrap()["patch"],
        json!({"cart": {"X": 2}})
    );
    // Once tab 2's link sees tab 1's op applied, the server's value is taken there.
    two.frame(ack(&client(2), 1, 3));
    two.frame(patch(4, json!({"cart": {"X": 1}}), Some((&client(1).0, 1))));
    assert_eq!(
        two.engine.state(),
        &json!({"cart": {"X": 1}, "email": "o@x"})
    );
}

/// Rule 2 at the session: when tab 2 did store the server's older copy
/// (the register could not be written), tab 1 takes it and puts its own
/// unanswered click back on top.
#[test]
fn a_tab_that_takes_a_copy_without_its_change_puts_the_change_back() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    one.engine.handle_online(false, one.now);
    let refused = || SessileError::StorageUnavailable {
        reason: "SecurityError".into(),
    };
    b.borrow_mut().fail_register.extend([refused(), refused()]);
    one.update(json!({"cart": {"X": 1}}));
    one.advance(one.now + 20);
    two.hear();
    two.connected(Transport::WebSocket);
    two.frame(welcome(
        2,
        0,
        CatchUp::Snapshot {
            state: json!({"cart": {}, "email": "o@x"}),
        },
    ));
    assert_eq!(
        two.engine.state(),
        &json!({"cart": {}, "email": "o@x"}),
        "nothing listed"
    );
    two.advance(two.now + 20);
    one.hear();
    assert_eq!(
        one.engine.state(),
        &json!({"cart": {"X": 1}, "email": "o@x"})
    );
    assert!(!one.kinds().contains(&"Conflict".to_string()));
}

/// Rule 3: tab 1 clicked on top of tab 2's change, taken from the stored
/// copy before its link had it. The server refuses tab 1's op as a
/// conflict with that very change: it is submitted again, not lost.
#[test]
fn an_op_made_on_top_of_another_tabs_change_is_submitted_again() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    two.connected(Transport::WebSocket);
    two.frame(welcome(1, 0, CatchUp::UpToDate));
    two.update(json!({"cart": {"X": 1}}));
    two.advance(two.now + 20);
    one.hear();
    assert_eq!(one.engine.state(), &json!({"cart": {"X": 1}}));
    one.update(json!({"cart": {"X": 2}}));
    let me = client(1);
    // Tab 2's op reached the server first (version 2); tab 1's, made on version 1, conflicts.
    one.frame(conflict(&me, 1, 2, json!({"cart": {"X": 1}})));
    assert!(
        !one.kinds().contains(&"Conflict".to_string()),
        "{:?}",
        one.kinds()
    );
    let ops = one.ops();
    assert_eq!(ops.len(), 2);
    assert_eq!(
        (&ops[1]["id"]["seq"], &ops[1]["base"], &ops[1]["patch"]),
        (&json!(2), &json!(2), &json!({"cart": {"X": 2}}))
    );
    assert_eq!(
        one.engine.state(),
        &json!({"cart": {"X": 2}}),
        "still shown"
    );
    one.frame(ack(&me, 2, 3));
    assert_eq!(one.engine.state(), &json!({"cart": {"X": 2}}));
    // Someone else's value at that path is a real conflict: the server wins.
    one.update(json!({"cart": {"X": 3}}));
    one.frame(conflict(&me, 3, 4, json!({"cart": {"X": 9}})));
    assert!(one.kinds().contains(&"Conflict".to_string()));
    assert_eq!(one.engine.state(), &json!({"cart": {"X": 9}}));
}

/// A tab whose link is down holds the server's copy as it was when the
/// link went: when another tab's register entry comes and goes, that copy
/// (older than the state this tab took from the other tab) replaces
/// nothing (openSession's "a tab that opens while another tab's change is
/// unsent keeps it").
#[test]
fn a_tab_offline_keeps_the_copy_it_took_when_another_tabs_entry_goes() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    one.engine.handle_online(false, one.now);
    one.update(json!({"cart": {"X": 1}}));
    one.advance(one.now + 20);
    two.hear_register(NS, &client(1).0);
    two.hear();
    two.connected(Transport::WebSocket);
    two.frame(welcome(
        2,
        0,
        CatchUp::Snapshot {
            state: json!({"cart": {}}),
        },
    ));
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 1}}));
    two.update(json!({"cart": {"X": 2}}));
    two.advance(two.now + 20);
    one.hear();
    assert_eq!(one.engine.state(), &json!({"cart": {"X": 2}}), "two's copy");
    one.hear_register(NS, &client(2).0);
    two.frame(ack(&client(2), 1, 3));
    two.advance(two.now + 20);
    one.hear_register(NS, &client(2).0);
    assert_eq!(
        one.engine.state(),
        &json!({"cart": {"X": 2}}),
        "the offline link's older copy replaced nothing"
    );
}

/// The transport opens and the server welcomes at `version` with `state`.
fn welcomed(p: &mut Page, version: u64, state: serde_json::Value) {
    p.connected(Transport::WebSocket);
    p.frame(welcome(version, 0, CatchUp::Snapshot { state }));
}

/// Chaos seed 5's start: tab 1 adds a product twice, offline; tab 2 hears
/// of it, connects (the server's copy at version 1 lacks both) and shows
/// both adds (rule 1).
fn two_adds_offline_in_tab_one(b: &Shared) -> (Page, Page) {
    let (mut one, mut two) = two_tabs(b);
    one.engine.handle_online(false, one.now);
    one.update(json!({"cart": {"X": 1}}));
    one.update(json!({"cart": {"X": 2}}));
    one.advance(one.now + 20);
    two.hear_register(NS, &client(1).0);
    two.hear();
    welcomed(&mut two, 1, json!({"cart": {}}));
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 2}}), "rule 1");
    (one, two)
}

/// Chaos seed 5: tab 1 adds a product twice offline and crashes; tab 2
/// shows those clicks (rule 1) and removes one; a tab that adopts tab 1's
/// id sends its outbox after tab 2's op was applied. The server's value
/// there is the one tab 1's second click was made on, but it is tab 2's
/// change made on top of that click: the click is not submitted again over
/// it (the remove would be lost), it loses its conflict.
#[test]
fn an_adopted_op_another_tab_changed_on_top_of_is_not_sent_again_over_that_change() {
    let b = browser();
    let (one, mut two) = two_adds_offline_in_tab_one(&b);
    drop(one); // crashed: no pagehide, its entry and record stay
    two.update(json!({"cart": {"X": 1}}));
    two.frame(ack(&client(2), 1, 2));
    two.advance(two.now + 20);
    drop(two);
    let mut three = Page::open(&b, synced_config(NS, 1), 5_000);
    let server = json!({"cart": {"X": 1}});
    welcomed(&mut three, 2, server.clone());
    let me = client(1);
    assert_eq!(three.ops().len(), 2, "tab 1's outbox goes out");
    three.frame(conflict(&me, 1, 2, server.clone()));
    three.frame(conflict(&me, 2, 2, server.clone()));
    assert_eq!(
        three.ops().len(),
        2,
        "nothing submitted again: {:?}",
        three.ops()
    );
    assert_eq!(three.engine.state(), &server, "tab 2's remove stands");
    three.advance(three.now + 20);
    assert_eq!(b.borrow().stored(BackendKind::IndexedDb), Some(server));
}

/// The same with tab 1 still open (offline, then back): its second click
/// is held in tab 2's remove, which tab 2's entry says; refused as a
/// conflict with it, the click is not submitted again over it.
#[test]
fn an_op_another_tab_changed_on_top_of_is_not_sent_again_over_that_change() {
    let b = browser();
    let (mut one, mut two) = two_adds_offline_in_tab_one(&b);
    two.update(json!({"cart": {"X": 1}}));
    let entry: serde_json::Value = serde_json::from_str(&b.borrow().local[&key_of(2)]).unwrap();
    assert_eq!(
        entry["over"],
        json!([{"client": client(1).0, "seq": 2, "paths": [["cart", "X"]]}])
    );
    two.frame(ack(&client(2), 1, 2));
    two.advance(two.now + 20);
    let entry: serde_json::Value = serde_json::from_str(&b.borrow().local[&key_of(2)]).unwrap();
    assert_eq!(
        entry,
        json!({"session": SESSION, "ops": [], "over": [{"client": client(1).0, "seq": 2, "paths": [["cart", "X"]]}]}),
        "the mark stays while tab 1 lists the ops"
    );
    one.hear_register(NS, &client(2).0);
    one.hear();
    let opened = one.opened.len();
    one.engine.handle_online(true, one.now);
    one.run();
    while one.opened.len() == opened {
        let at = one.engine.poll_timeout().expect("a connection is due");
        one.advance(at);
    }
    let server = json!({"cart": {"X": 1}});
    welcomed(&mut one, 2, server.clone());
    let me = client(1);
    let sent = one.ops().len();
    one.frame(conflict(&me, 1, 2, server.clone()));
    one.frame(conflict(&me, 2, 2, server.clone()));
    assert_eq!(one.ops().len(), sent, "nothing submitted again");
    assert_eq!(one.engine.state(), &server);
    assert!(
        one.kinds().contains(&"Conflict".to_string()),
        "the page is told"
    );
    // Tab 1's ops answered, its entry goes, and tab 2's mark with it.
    assert!(!b.borrow().local.contains_key(&key_of(1)));
    two.hear_register(NS, &client(1).0);
    assert!(
        !b.borrow().local.contains_key(&key_of(2)),
        "{:?}",
        b.borrow().local.get(&key_of(2))
    );
}

/// Tab 2 (no welcome yet) holds a change; tab 1, which took it from the
/// stored copy, changes the same path on top of it (marking it) and its
/// op is applied. Returns the tabs, tab 2 not welcomed.
fn a_held_change_marked_by_tab_one(b: &Shared, held: serde_json::Value) -> (Page, Page) {
    let (mut one, mut two) = two_tabs(b);
    two.update(held);
    two.advance(two.now + 20);
    one.hear_register(NS, &client(2).0);
    one.hear();
    one.update(json!({"cart": {"X": 2}}));
    let entry: serde_json::Value = serde_json::from_str(&b.borrow().local[&key_of(1)]).unwrap();
    assert_eq!(entry["over"][0]["client"], json!(client(2).0), "{entry}");
    one.frame(ack(&client(1), 1, 2));
    one.advance(one.now + 20);
    two.hear_register(NS, &client(1).0);
    (one, two)
}

/// A held change made after another tab's mark over an older held change
/// is not covered by that mark: tab 2 takes tab 1's X = 2 (made on top of
/// its held X = 1) and sets X = 3, still before its welcome. X = 1 is
/// dropped (tab 1's change holds it), X = 3 is sent.
#[test]
fn a_held_change_made_after_a_mark_over_an_older_one_is_sent() {
    let b = browser();
    let (_one, mut two) = a_held_change_marked_by_tab_one(&b, json!({"cart": {"X": 1}}));
    two.hear();
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 2}}));
    two.update(json!({"cart": {"X": 3}}));
    welcomed(&mut two, 2, json!({"cart": {"X": 2}}));
    let patches: Vec<_> = two.ops().iter().map(|o| o["patch"].clone()).collect();
    assert_eq!(
        patches,
        [json!({"cart": {"X": 3}})],
        "X = 1 dropped, X = 3 sent"
    );
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 3}}));
    two.frame(ack(&client(2), 1, 3));
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 3}}));
}

/// A mark over a held change dies with its use: tab 1 marks tab 2's held
/// change and crashes (its entry stays). Tab 2's held change is dropped at
/// its welcome; a later op of tab 2 at that path, refused as a conflict on
/// the value it was made on, is submitted again (rule 3), and a change it
/// holds after a reload is sent.
#[test]
fn a_mark_over_a_held_change_covers_no_later_change_of_that_client() {
    let b = browser();
    let (one, mut two) = a_held_change_marked_by_tab_one(&b, json!({"cart": {"X": 1}}));
    drop(one); // crashed: its entry, with the mark, stays
    assert!(b.borrow().local.contains_key(&key_of(1)));
    welcomed(&mut two, 2, json!({"cart": {"X": 2}}));
    assert!(two.ops().is_empty(), "X = 1 is held in tab 1's change");
    assert_eq!(two.engine.state(), &json!({"cart": {"X": 2}}));
    let conflicts = |p: &Page| p.kinds().iter().filter(|k| *k == "Conflict").count();
    assert_eq!(conflicts(&two), 1, "X = 1 is told as a conflict");
    // A real op on X, refused on the value it was made on: submitted again.
    two.update(json!({"cart": {"X": 4}}));
    let me = client(2);
    two.frame(conflict(&me, 1, 3, json!({"cart": {"X": 2}, "o": 1})));
    assert_eq!(conflicts(&two), 1, "{:?}", two.kinds());
    let last = two.ops().last().cloned().unwrap();
    assert_eq!(
        (&last["id"]["seq"], &last["patch"]),
        (&json!(2), &json!({"cart": {"X": 4}}))
    );
    two.frame(ack(&me, 2, 4));
    two.advance(two.now + 20);
    // A reload before its welcome holds a change on X again: it is sent.
    drop(two);
    let mut again = Page::open(&b, synced_config(NS, 2), 9_000);
    again.update(json!({"cart": {"X": 5}}));
    welcomed(&mut again, 4, json!({"cart": {"X": 4}, "o": 1}));
    let patches: Vec<_> = again.ops().iter().map(|o| o["patch"].clone()).collect();
    assert_eq!(patches, [json!({"cart": {"X": 5}})]);
    assert_eq!(again.engine.state(), &json!({"cart": {"X": 5}, "o": 1}));
}

/// Only the marked paths of a held change are dropped: tab 2 held
/// `{cart: {X: 1}, email}`, tab 1 changed X on top of it. At tab 2's welcome
/// (before it took tab 1's copy) the email goes and stays shown, X is the
/// server's (the store does not put the held X = 1 back on top), and the
/// part left out is told as a conflict.
#[test]
fn a_held_change_loses_only_its_marked_paths() {
    let b = browser();
    let held = json!({"cart": {"X": 1}, "email": "e@x"});
    let (_one, mut two) = a_held_change_marked_by_tab_one(&b, held);
    assert_eq!(
        two.engine.state(),
        &json!({"cart": {"X": 1}, "email": "e@x"})
    );
    welcomed(&mut two, 2, json!({"cart": {"X": 2}}));
    let patches: Vec<_> = two.ops().iter().map(|o| o["patch"].clone()).collect();
    assert_eq!(patches, [json!({"email": "e@x"})]);
    let shown = json!({"cart": {"X": 2}, "email": "e@x"});
    assert_eq!(two.engine.state(), &shown);
    let lost: Vec<_> = two
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Conflict { op, local, .. } => Some((op.seq, local.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(lost, [(0, json!({"cart": {"X": 1}}))]);
    two.frame(ack(&client(2), 1, 3));
    assert_eq!(two.engine.state(), &shown);
    two.advance(two.now + 20);
    assert_eq!(b.borrow().stored(BackendKind::IndexedDb), Some(shown));
}

/// The same for a real op refused as a conflict: tab 1's op `{cart: {X:
/// 1}, email}` is refused after tab 2's change on X made on top of it was
/// applied. X loses (tab 2's change holds it); the email, at a value the
/// server still holds as it was made on, is submitted again.
#[test]
fn a_refused_op_loses_only_its_marked_paths_and_the_rest_is_submitted_again() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    welcomed(&mut two, 1, json!({"cart": {}}));
    one.update(json!({"cart": {"X": 1}, "email": "e@x"}));
    one.advance(one.now + 20);
    two.hear_register(NS, &client(1).0);
    two.hear();
    two.update(json!({"cart": {"X": 2}}));
    two.frame(ack(&client(2), 1, 2));
    two.advance(two.now + 20);
    one.hear_register(NS, &client(2).0);
    let me = client(1);
    one.frame(conflict(&me, 1, 2, json!({"cart": {"X": 2}})));
    let last = one.ops().last().cloned().unwrap();
    assert_eq!(
        (&last["id"]["seq"], &last["base"], &last["patch"]),
        (&json!(2), &json!(2), &json!({"email": "e@x"}))
    );
    let shown = json!({"cart": {"X": 2}, "email": "e@x"});
    assert_eq!(one.engine.state(), &shown);
    let lost: Vec<_> = one
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Conflict { op, local, .. } => Some((op.seq, local.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(lost, [(1, json!({"cart": {"X": 1}}))]);
    one.frame(ack(&me, 2, 3));
    assert_eq!(one.engine.state(), &shown);
}

/// Tab 1 takes another device's change (version 2) and has not stored it
/// yet; tab 2, whose link has not had it, clicks offline and stores first.
/// Returns the state tab 1 must end with: the server's latest state plus
/// tab 2's unsent click (rule 1).
fn a_server_state_taken_and_not_stored(one: &mut Page, two: &mut Page) -> serde_json::Value {
    two.connected(Transport::WebSocket);
    two.frame(welcome(1, 0, CatchUp::UpToDate));
    let device = client(3);
    one.frame(patch(2, json!({"email": "o@x"}), Some((&device.0, 1))));
    assert_eq!(one.engine.state(), &json!({"cart": {}, "email": "o@x"}));
    two.engine.handle_online(false, two.now);
    two.update(json!({"cart": {"X": 1}}));
    two.advance(two.now + 20);
    assert_eq!(
        b_stored(two),
        Some(json!({"cart": {"X": 1}})),
        "tab 2 stored first"
    );
    json!({"cart": {"X": 1}, "email": "o@x"})
}

fn b_stored(page: &Page) -> Option<serde_json::Value> {
    page.browser.borrow().stored(BackendKind::IndexedDb)
}

/// A tab whose write of a server state is refused takes the other tab's
/// copy, which lacks that state, and puts the state back on top: with
/// nothing left to send and the other tab offline, nothing else would
/// bring it back (chaos seeds 16, 341 and 418).
#[test]
fn a_tab_whose_write_of_the_servers_state_is_refused_keeps_that_state() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    let expected = a_server_state_taken_and_not_stored(&mut one, &mut two);
    one.advance(one.now + 20);
    assert!(one.kinds().contains(&"Store".to_string()), "a copy taken");
    assert_eq!(one.engine.state(), &expected);
    assert!(one.ops().is_empty(), "nothing to send");
    one.advance(one.now + 20);
    assert_eq!(b_stored(&one), Some(expected.clone()), "and stored");
    two.hear();
    assert_eq!(two.engine.state(), &expected, "tab 2 follows");
}

/// The same when tab 1 hears of tab 2's copy before its own write.
#[test]
fn a_tab_that_hears_of_a_copy_without_the_servers_state_it_took_keeps_that_state() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    let expected = a_server_state_taken_and_not_stored(&mut one, &mut two);
    one.hear();
    assert_eq!(one.engine.state(), &expected);
    assert!(one.ops().is_empty(), "nothing to send");
    one.advance(one.now + 20);
    assert_eq!(b_stored(&one), Some(expected.clone()));
    two.hear();
    assert_eq!(two.engine.state(), &expected, "tab 2 follows");
}

/// Rule 1 over the server state put back: where tab 2 still has its click
/// to send, tab 1 keeps tab 2's value from the copy, not the server's.
#[test]
fn a_server_state_put_back_leaves_what_another_tab_still_has_to_send() {
    let b = browser();
    let (mut one, mut two) = two_tabs(&b);
    two.connected(Transport::WebSocket);
    two.frame(welcome(1, 0, CatchUp::UpToDate));
    let device = client(3);
    let theirs = json!({"cart": {"X": 3}, "email": "o@x"});
    one.frame(patch(2, theirs.clone(), Some((&device.0, 1))));
    assert_eq!(one.engine.state(), &theirs);
    two.engine.handle_online(false, two.now);
    two.update(json!({"cart": {"X": 1}}));
    two.advance(two.now + 20);
    one.hear_register(NS, &client(2).0);
    one.advance(one.now + 20);
    assert_eq!(
        one.engine.state(),
        &json!({"cart": {"X": 1}, "email": "o@x"})
    );
}
