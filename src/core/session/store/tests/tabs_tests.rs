//! Several tabs of one namespace: following another tab's writes, a
//! refused compare-and-set, a clear elsewhere, a read that fails after a
//! refusal (the cases of store_browser.test.mjs and store_safety.test.mjs),
//! and the rebase of a synced tab's changes onto another tab's copy (the
//! lost click of issue 16).

use serde_json::json;

use super::super::*;
use super::harness::*;
use crate::core::slots::SlotId;

const IDB: BackendKind = BackendKind::IndexedDb;

#[test]
fn a_tab_follows_another_tabs_write_and_an_older_version_never_wins() {
    let w = world();
    let mut a = Tab::open(&w, config("t-tabs", 1), 0);
    let mut b = Tab::open(&w, config("t-tabs", 2), 0);
    a.set(json!({ "step": "checkout" }));
    a.flush().unwrap();
    b.hear();
    assert_eq!(b.state(), json!({ "step": "checkout" }));
    assert_eq!(b.engine.version(), 1);
    assert_eq!(b.updates(), [(1, false, 0)]);
    // A stale write: b changes before it hears of a's next write.
    a.set(json!({ "step": "upsell-1" }));
    a.flush().unwrap();
    b.set(json!({ "step": "success" }));
    assert_eq!(b.flush().unwrap_err().code(), "STALE_WRITE");
    assert_eq!(b.state(), json!({ "step": "upsell-1" }));
    assert_eq!(
        b.conflicts(),
        [(
            json!({ "step": "success" }),
            json!({ "step": "upsell-1" }),
            Winner::Remote
        )]
    );
    let reopened = Tab::open(&w, config("t-tabs", 3), 10);
    assert_eq!(reopened.state(), json!({ "step": "upsell-1" }));
}

#[test]
fn a_tab_with_more_unsaved_edits_cannot_overwrite_a_newer_stored_state() {
    let w = world();
    let mut a = Tab::open(&w, config("t-race", 1), 0);
    let mut b = Tab::open(&w, config("t-race", 2), 0);
    a.set(json!({ "step": "checkout", "by": "a" }));
    assert_eq!(a.set(json!({ "step": "upsell-1", "by": "a" })), 2);
    assert_eq!(b.set(json!({ "step": "success", "by": "b" })), 1);
    b.flush().unwrap();
    assert_eq!(a.flush().unwrap_err().code(), "STALE_WRITE");
    assert_eq!(a.state(), json!({ "step": "success", "by": "b" }));
    assert_eq!(a.conflicts()[0].0, json!({ "step": "upsell-1", "by": "a" }));
    assert_eq!(
        Tab::open(&w, config("t-race", 3), 1).state(),
        json!({ "step": "success", "by": "b" })
    );
}

#[test]
fn a_refused_write_takes_the_newer_copy_and_no_write_plans_from_the_stale_slot() {
    let w = world();
    let mut x = Tab::open(&w, config("s-stale-plan", 1), 0);
    x.set(json!({ "step": "checkout", "by": "x" }));
    x.flush().unwrap(); // head 1, slot a
    x.hold = true; // the other tab holds the lock
    x.set(json!({ "step": "payment", "by": "x" }));
    let first = x.start_flush();
    assert!(x.engine.diagnostics().writing);
    x.set(json!({ "step": "payment-2", "by": "x" }));
    let second = x.start_flush();
    // The other tab stores its newer state (version 2, slot b) under the lock.
    w.borrow_mut().put(
        IDB,
        SlotId::B,
        &json!({ "step": "success", "by": "y" }),
        2,
        2,
    );
    x.release();
    assert_eq!(x.result(first).unwrap().unwrap_err().code(), "STALE_WRITE");
    assert_eq!(x.result(second), Some(Ok(())));
    assert_eq!(
        w.borrow().state_in(IDB, SlotId::B),
        Some(json!({ "step": "success", "by": "y" }))
    );
    assert_eq!(w.borrow_mut().slots(IDB).head.version, 2);
    assert_eq!(x.state(), json!({ "step": "success", "by": "y" }));
    assert_eq!(
        x.conflicts(),
        [(
            json!({ "step": "payment-2", "by": "x" }),
            json!({ "step": "success", "by": "y" }),
            Winner::Remote
        )]
    );
    x.close().unwrap();
    assert_eq!(
        Tab::open(&w, config("s-stale-plan", 2), 1).state(),
        json!({ "step": "success", "by": "y" })
    );
}

#[test]
fn a_clear_in_another_tab_while_a_write_waits_stays_cleared() {
    let w = world();
    let mut x = Tab::open(&w, config("s-stale-clear", 1), 0);
    x.set(json!({ "step": "checkout", "by": "x" }));
    x.flush().unwrap();
    x.hold = true;
    x.set(json!({ "step": "payment", "by": "x" }));
    let flush = x.start_flush();
    // The other tab clears under the lock (tombstone head 2) and says so.
    {
        let mut world = w.borrow_mut();
        *world.slots(IDB) = Slots {
            head: Head::at(2),
            ..Slots::default()
        };
        world.channel.push(TabMessage::Cleared {
            from: client(2),
            version: 2,
        });
    }
    x.hear(); // delivered while x's write still waits
    x.release();
    assert_eq!(x.result(flush).unwrap().unwrap_err().code(), "STALE_WRITE");
    let slots = w.borrow_mut().slots(IDB).clone();
    assert_eq!(
        (slots.a, slots.b, slots.head.version),
        (Stored::Missing, Stored::Missing, 2)
    );
    assert_eq!(x.state(), json!({ "step": "cart" }), "reset to initial");
    let d = x.engine.diagnostics();
    assert!(!d.unsaved);
    assert_eq!(d.stored_version, 2);
    let cleared: Vec<_> = x.updates().into_iter().filter(|u| u.1).collect();
    assert_eq!(cleared.len(), 1, "told once that the session was cleared");
    assert_eq!(
        x.conflicts(),
        [(
            json!({ "step": "payment", "by": "x" }),
            json!({ "step": "cart" }),
            Winner::Remote
        )]
    );
    x.close().unwrap();
    assert_eq!(
        w.borrow_mut().slots(IDB).a,
        Stored::Missing,
        "close wrote nothing back"
    );
}

#[test]
fn after_clear_no_tabs_rescue_copy_brings_the_session_back() {
    let w = world();
    let mut x = Tab::open(&w, config("s-clear-rescue", 1), 0);
    x.set(json!({ "step": "checkout", "by": "x" }));
    x.flush().unwrap();
    let card = json!({ "step": "success", "card": "4242" });
    let rescue = || (1, Stored::Bytes(snapshot(&card, 2, 1, 1)));
    w.borrow_mut()
        .rescues
        .insert("s-clear-rescue:rescue:tab-y".into(), rescue());
    x.clear().unwrap();
    assert!(
        w.borrow().rescues.is_empty(),
        "clear() removed every tab's rescue copy"
    );
    assert_eq!(w.borrow_mut().slots(IDB).head.version, 2);
    let z = Tab::open(&w, config("s-clear-rescue", 3), 1);
    assert_eq!(
        (z.state(), z.restored()),
        (json!({ "step": "cart" }), RestoreOutcome::Fresh)
    );
    // A tab that had not heard of the clear leaves a copy based on the old head.
    w.borrow_mut()
        .rescues
        .insert("s-clear-rescue:rescue:tab-y".into(), rescue());
    let z2 = Tab::open(&w, config("s-clear-rescue", 4), 2);
    assert_eq!(
        z2.state(),
        json!({ "step": "cart" }),
        "a copy based on a head before the tombstone is not restored"
    );
    assert_eq!(z2.restored(), RestoreOutcome::Fresh);
    assert_eq!(
        z2.conflicts(),
        [(card.clone(), json!({ "step": "cart" }), Winner::Remote)]
    );
    assert!(w.borrow().rescues.is_empty());
}

#[test]
fn a_failed_read_after_a_refused_write_decides_nothing_and_never_overwrites() {
    let w = world();
    let cfg = StoreConfig {
        storage: Some(BackendKind::LocalStorage),
        ..config("s-stale-read", 1)
    };
    let mut x = Tab::open(&w, cfg, 0);
    x.set(json!({ "step": "checkout", "by": "x" }));
    x.flush().unwrap();
    x.hold = true;
    x.set(json!({ "step": "payment", "by": "x" }));
    let flush = x.start_flush();
    {
        let mut world = w.borrow_mut();
        world.put(
            BackendKind::LocalStorage,
            SlotId::B,
            &json!({ "step": "success", "by": "y" }),
            2,
            2,
        );
        world.fail_read = Some(SessileError::StorageUnavailable {
            reason: "SecurityError: Access is denied for this document.".into(),
        });
    }
    x.release();
    let error = x.result(flush).unwrap().unwrap_err();
    assert_eq!(
        error.code(),
        "STORAGE_UNAVAILABLE",
        "a retryable read error, not a write over the copy"
    );
    let d = x.engine.diagnostics();
    assert!(d.unsaved, "the state stays unsaved");
    assert_eq!(d.stored_version, 1, "the head it knows did not move");
    assert!(
        x.conflicts().is_empty(),
        "no winner declared while nothing could be read"
    );
    assert_eq!(x.flush().unwrap_err().code(), "STALE_WRITE");
    assert_eq!(x.state(), json!({ "step": "success", "by": "y" }));
    assert_eq!(x.conflicts()[0].0, json!({ "step": "payment", "by": "x" }));
    let again = Tab::open(
        &w,
        StoreConfig {
            storage: Some(BackendKind::LocalStorage),
            ..config("s-stale-read", 2)
        },
        1,
    );
    assert_eq!(again.state(), json!({ "step": "success", "by": "y" }));
}

#[test]
fn bytes_that_do_not_decode_behind_a_refusal_are_written_over() {
    let w = world();
    let mut x = Tab::open(&w, config("t-over", 1), 0);
    x.set(json!({ "n": 1 }));
    x.flush().unwrap();
    {
        let mut world = w.borrow_mut();
        let slots = world.slots(IDB);
        slots.b = Stored::Bytes(b"SSNP\x01torn".to_vec());
        slots.head = Head::at(2);
    }
    x.set(json!({ "n": 2 }));
    x.flush().unwrap();
    assert_eq!(
        x.conflicts(),
        [(json!({ "n": 2 }), serde_json::Value::Null, Winner::Local)]
    );
    assert_eq!(w.borrow_mut().slots(IDB).head.version, 3);
    assert_eq!(
        Tab::open(&w, config("t-over", 2), 1).state(),
        json!({ "n": 2 })
    );
}

#[test]
fn clear_in_one_tab_resets_the_others_and_a_later_write_is_kept() {
    let w = world();
    let mut a = Tab::open(&w, config("t-clear-tabs", 1), 0);
    let mut b = Tab::open(&w, config("t-clear-tabs", 2), 0);
    a.set(json!({ "step": "success" }));
    a.flush().unwrap();
    b.hear();
    assert_eq!(b.state(), json!({ "step": "success" }));
    a.clear().unwrap();
    b.hear();
    assert_eq!(a.state(), json!({ "step": "cart" }));
    assert_eq!(b.state(), json!({ "step": "cart" }), "b heard of the clear");
    assert!(b.updates().iter().any(|u| u.1));
    assert_eq!(w.borrow().marker, None);
    b.set(json!({ "step": "checkout" }));
    b.flush().unwrap();
    let reopened = Tab::open(&w, config("t-clear-tabs", 3), 1);
    assert_eq!(reopened.state(), json!({ "step": "checkout" }));
}

#[test]
fn a_newer_schema_from_another_tab_blocks_writing_instead_of_overwriting_it() {
    let w = world();
    let mut a = Tab::open(&w, config("t-newer", 1), 0);
    w.borrow_mut().channel.push(TabMessage::Stored {
        from: client(2),
        version: 1,
        slot: SlotId::A,
        generation: 1,
        schema: 2,
        state: json!({ "v2": true }),
        includes: vec![],
    });
    a.hear();
    assert_eq!(a.errors(), [("SCHEMA_TOO_NEW".to_string(), During::Sync)]);
    assert_eq!(
        a.engine.set(json!({}), 1).unwrap_err().code(),
        "SCHEMA_TOO_NEW"
    );
}

fn synced(name: &str, n: u8) -> StoreConfig {
    StoreConfig {
        rebase: true,
        initial: json!({ "cart": {} }),
        ..config(name, n)
    }
}

/// Issue 16's lost click, at the store: tab 1's change is not acknowledged
/// (its link is down) when tab 2, which restored tab 1's stored copy, adds
/// the same product again and stores it. Tab 1 takes tab 2's copy: it keeps
/// tab 2's value for the product (which already includes tab 1's click)
/// and puts its own later change back on top.
#[test]
fn a_synced_tab_rebases_its_unacknowledged_changes_onto_another_tabs_copy() {
    let w = world();
    let mut one = Tab::open(&w, synced("t-rebase", 1), 0);
    one.set(json!({ "cart": { "X": 1 } }));
    one.flush().unwrap();
    let mut two = Tab::open(&w, synced("t-rebase", 2), 1);
    assert_eq!(two.state(), json!({ "cart": { "X": 1 } }));
    one.set(json!({ "cart": { "X": 1, "Y": 1 } })); // not stored yet
    two.set(json!({ "cart": { "X": 2 } }));
    two.flush().unwrap();
    one.hear();
    assert_eq!(
        one.state(),
        json!({ "cart": { "X": 2, "Y": 1 } }),
        "tab 2's click and tab 1's own change"
    );
    // Nothing of either tab was lost; the page is told tab 2's copy won
    // over its unsaved state, and holds its own change on top of it.
    assert_eq!(
        one.conflicts(),
        [(
            json!({ "cart": { "X": 1, "Y": 1 } }),
            json!({ "cart": { "X": 2 } }),
            Winner::Remote
        )]
    );
    assert_eq!(one.updates(), [(3, false, 1)]);
    one.flush().unwrap();
    two.hear();
    assert_eq!(two.state(), json!({ "cart": { "X": 2, "Y": 1 } }));
    assert_eq!(
        w.borrow().state_in(IDB, SlotId::A),
        Some(json!({ "cart": { "X": 2, "Y": 1 } }))
    );
}

#[test]
fn a_synced_tab_rebases_after_a_refused_write_and_its_flush_still_stores() {
    let w = world();
    let mut one = Tab::open(&w, synced("t-rebase-cas", 1), 0);
    let mut two = Tab::open(&w, synced("t-rebase-cas", 2), 0);
    one.set(json!({ "cart": { "Y": 1 } }));
    two.set(json!({ "cart": { "X": 1 } }));
    two.flush().unwrap();
    // One has not heard: its write is refused, it takes two's copy, puts
    // its change back on top and writes that.
    one.flush().unwrap();
    assert_eq!(one.state(), json!({ "cart": { "X": 1, "Y": 1 } }));
    // The page hears of the copy that met its unsaved change (the conflict
    // the package's session test asserts); nothing was lost: the state has both.
    assert_eq!(
        one.conflicts(),
        [(
            json!({ "cart": { "Y": 1 } }),
            json!({ "cart": { "X": 1 } }),
            Winner::Remote
        )],
        "the write lost to two's copy: the page is told"
    );
    let stored = Tab::open(&w, synced("t-rebase-cas", 3), 1);
    assert_eq!(stored.state(), json!({ "cart": { "X": 1, "Y": 1 } }));
}

#[test]
fn a_store_alone_lets_the_newer_copy_win_and_reports_the_conflict() {
    let w = world();
    let alone = |n| StoreConfig {
        rebase: false,
        ..synced("t-alone", n)
    };
    let mut one = Tab::open(&w, alone(1), 0);
    one.set(json!({ "cart": { "X": 1 } }));
    one.flush().unwrap();
    let mut two = Tab::open(&w, alone(2), 1);
    one.set(json!({ "cart": { "X": 1, "Y": 1 } }));
    two.set(json!({ "cart": { "X": 2 } }));
    two.flush().unwrap();
    one.hear();
    assert_eq!(one.state(), json!({ "cart": { "X": 2 } }));
    assert_eq!(
        one.conflicts(),
        [(
            json!({ "cart": { "X": 1, "Y": 1 } }),
            json!({ "cart": { "X": 2 } }),
            Winner::Remote
        )]
    );
}

#[test]
fn a_change_is_kept_until_it_is_stored_and_acknowledged() {
    let w = world();
    let mut one = Tab::open(&w, synced("t-ack", 1), 0);
    one.set(json!({ "cart": { "X": 1 } }));
    assert_eq!(one.engine.last_seq(), 1);
    one.engine.handle_acknowledged(1);
    assert_eq!(
        one.engine.diagnostics().pending_changes,
        1,
        "acknowledged, not stored"
    );
    one.flush().unwrap();
    assert_eq!(one.engine.diagnostics().pending_changes, 0);
    one.set(json!({ "cart": { "X": 2 } }));
    one.flush().unwrap();
    assert_eq!(
        one.engine.diagnostics().pending_changes,
        1,
        "stored, not acknowledged"
    );
    one.engine.handle_acknowledged(2);
    assert_eq!(one.engine.diagnostics().pending_changes, 0);
}

/// A copy from the server never replaces a change some live tab still has
/// to send: the tab that takes it puts its own later changes back on top,
/// and the other tab, taking the stored result, puts back its own.
#[test]
fn a_server_copy_keeps_every_tabs_unsent_changes() {
    let w = world();
    let mut one = Tab::open(&w, synced("t-server", 1), 0);
    let mut two = Tab::open(&w, synced("t-server", 2), 0);
    one.set(json!({ "cart": { "X": 1 } }));
    one.set(json!({ "cart": { "X": 1, "Y": 1 } }));
    two.set(json!({ "cart": { "W": 1 } })); // not stored, not sent
                                            // The server has one's first change (and someone's Z) but not its second.
    let server = json!({ "cart": { "X": 1, "Z": 9 } });
    one.engine.handle_server_state(server, 1, 1).unwrap();
    one.run();
    assert_eq!(one.state(), json!({ "cart": { "X": 1, "Y": 1, "Z": 9 } }));
    one.flush().unwrap();
    two.hear();
    assert_eq!(
        two.state(),
        json!({ "cart": { "X": 1, "Y": 1, "Z": 9, "W": 1 } })
    );
    // The page hears of the copy that met its unsaved change (the conflict
    // the package's session test asserts); nothing was lost: the state has both.
    assert_eq!(
        two.conflicts(),
        [(
            json!({ "cart": { "W": 1 } }),
            json!({ "cart": { "X": 1, "Y": 1, "Z": 9 } }),
            Winner::Remote
        )]
    );
    two.flush().unwrap();
    one.hear();
    assert_eq!(one.state(), two.state());
    assert_eq!(
        one.engine.diagnostics().pending_changes,
        1,
        "Y: stored, not acknowledged"
    );
}

#[test]
fn clear_called_twice_completes_both_once_the_namespace_is_cleared() {
    let w = world();
    let mut a = Tab::open(&w, config("t-clear-twice", 1), 0);
    a.set(json!({ "n": 1 }));
    a.flush().unwrap();
    a.hold = true;
    let first = a.engine.clear(1).unwrap();
    a.run();
    let second = a.engine.clear(2).unwrap();
    a.run();
    assert_eq!(
        (a.result(first), a.result(second)),
        (None, None),
        "not done before the clear is"
    );
    a.release();
    assert_eq!(
        (a.result(first), a.result(second)),
        (Some(Ok(())), Some(Ok(())))
    );
    assert_eq!(w.borrow_mut().slots(IDB).a, Stored::Missing);
}

/// A clear by a tab that has not heard of the newest write still leaves a
/// tombstone above it, so the tab that wrote it follows the clear instead
/// of writing the ended session back.
#[test]
fn a_clear_from_a_tab_behind_the_head_still_ends_the_session_everywhere() {
    let w = world();
    let mut a = Tab::open(&w, config("t-clear-behind", 1), 0);
    let mut b = Tab::open(&w, config("t-clear-behind", 2), 0);
    a.set(json!({ "step": "checkout" }));
    a.flush().unwrap(); // head 1
    b.hear();
    b.set(json!({ "step": "success", "card": "4242" }));
    b.flush().unwrap(); // head 2; a has not heard
    a.clear().unwrap();
    let head = w.borrow_mut().slots(IDB).head.version;
    assert!(
        head > 2,
        "the tombstone {head} is above every version stored"
    );
    b.hear();
    assert_eq!(b.state(), json!({ "step": "cart" }), "b followed the clear");
    b.set(json!({ "step": "cart", "new": true }));
    b.flush().unwrap();
    let reopened = Tab::open(&w, config("t-clear-behind", 3), 1);
    assert_eq!(reopened.state(), json!({ "step": "cart", "new": true }));
}

fn rename_mail(from: u32, mut state: serde_json::Value) -> Result<serde_json::Value, String> {
    if from != 1 {
        return Err(["no migration function migrate[", &from.to_string(), "]"].concat());
    }
    let mail = state
        .as_object_mut()
        .unwrap()
        .remove("mail")
        .unwrap_or_default();
    state["email"] = mail;
    Ok(state)
}

fn stored_message(from: u8, version: u64, schema: u32, state: serde_json::Value) -> TabMessage {
    TabMessage::Stored {
        from: client(from),
        version,
        slot: if version % 2 == 1 {
            SlotId::A
        } else {
            SlotId::B
        },
        generation: version as u16,
        schema,
        state,
        includes: vec![],
    }
}

#[test]
fn an_older_pages_copy_is_migrated_before_it_is_taken_and_messages_meanwhile_wait() {
    let w = world();
    let cfg = StoreConfig {
        schema_version: 2,
        ..config("t-adopt-migrate", 1)
    };
    let mut tab = Tab::open_with(&w, cfg, 0, Some(Box::new(rename_mail)));
    tab.defer_migrations = true;
    w.borrow_mut()
        .channel
        .push(stored_message(2, 1, 1, json!({ "mail": "a@example.com" })));
    tab.hear();
    assert_eq!(tab.deferred.len(), 1, "migrate[1] asked of the page");
    assert_eq!(
        tab.state(),
        json!({ "step": "cart" }),
        "not taken before it is migrated"
    );
    // Two more announcements while the page migrates: the newest is kept.
    w.borrow_mut()
        .channel
        .push(stored_message(2, 2, 2, json!({ "email": "b@example.com" })));
    w.borrow_mut()
        .channel
        .push(stored_message(2, 3, 2, json!({ "email": "c@example.com" })));
    tab.hear();
    tab.answer_migrations();
    assert_eq!(tab.state(), json!({ "email": "c@example.com" }));
    assert_eq!(tab.engine.version(), 3);
    assert_eq!(
        tab.updates().iter().map(|u| u.0).collect::<Vec<_>>(),
        [1, 3]
    );
}

#[test]
fn a_copy_found_after_a_refused_write_is_migrated_before_it_is_taken() {
    let w = world();
    let cfg = StoreConfig {
        schema_version: 2,
        ..config("t-refused-migrate", 1)
    };
    let mut tab = Tab::open_with(&w, cfg, 0, Some(Box::new(rename_mail)));
    // An older page (schema 1) stored version 1 since.
    {
        let mut world = w.borrow_mut();
        let slots = world.slots(IDB);
        slots.a = Stored::Bytes(snapshot(&json!({ "mail": "old@example.com" }), 1, 1, 1));
        slots.head = Head::at(1);
    }
    tab.set(json!({ "step": "checkout" }));
    assert_eq!(tab.flush().unwrap_err().code(), "STALE_WRITE");
    assert_eq!(tab.state(), json!({ "email": "old@example.com" }));
    assert_eq!(tab.conflicts()[0].2, Winner::Remote);
    // Taking it is not writing it: a later change is written at schema 2.
    tab.set(json!({ "email": "new@example.com" }));
    tab.flush().unwrap();
    assert_eq!(
        w.borrow().state_in(IDB, SlotId::B),
        Some(json!({ "email": "new@example.com" }))
    );
}

/// A tab never shows a version below one it showed: server states it took
/// (the same as its own, so there is nothing to put back) and has not stored
/// yet, met by another tab's head that is newer than what this tab stored
/// but older than what it shows, are stored again above both (the demo's
/// two-tab test saw v5 → v4).
#[test]
fn another_tabs_head_below_the_version_shown_does_not_lower_it() {
    let w = world();
    let mut one = Tab::open(&w, synced("t-never-back", 1), 0);
    let mut two = Tab::open(&w, synced("t-never-back", 2), 0);
    one.set(json!({ "cart": { "X": 1 } }));
    one.flush().unwrap();
    two.hear();
    // Twice the server's state, the same as one's: v2, v3, not stored yet.
    let same = json!({ "cart": { "X": 1 } });
    one.engine.handle_server_state(same.clone(), 1, 1).unwrap();
    let shown = one.engine.handle_server_state(same, 1, 2).unwrap();
    one.run();
    assert_eq!(one.engine.diagnostics().stored_version, 1);
    two.set(json!({ "cart": { "X": 1, "Y": 1 } }));
    two.flush().unwrap();
    assert_eq!(two.engine.diagnostics().stored_version, 2);
    one.hear();
    let after = one.engine.diagnostics().version;
    assert!(after > shown, "the version went back: {shown} → {after}");
    assert_eq!(one.state(), json!({ "cart": { "X": 1, "Y": 1 } }));
    // Stored above two's head, which two then takes.
    one.flush().unwrap();
    two.hear();
    assert_eq!(two.engine.diagnostics().version, after);
    assert_eq!(two.state(), one.state());
}
