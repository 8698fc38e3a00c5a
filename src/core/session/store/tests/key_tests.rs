//! Encrypted copies in the store engine: a copy the page cannot decrypt
//! (`KEY_REQUIRED`, `DECRYPT_FAILED`) stops the open and nothing is written
//! or forgotten, unless the page asked `discardLocal`; an older slot the
//! key does not open is only skipped; a rewrite stores the state again at
//! the same version (how a changed key re-encrypts both slots).

use serde_json::json;

use super::super::*;
use super::harness::*;
use crate::core::envelope::EnvelopeConfig;
use crate::core::sealed::seal_with;
use crate::core::sealed::tests::RustCrypto;
use crate::core::slots::SlotId;

/// Seals what is stored in `slot` (as the browser driver writes it).
fn seal_slot(w: &Shared, slot: SlotId) {
    let mut world = w.borrow_mut();
    let slots = world.slots(BackendKind::IndexedDb);
    let stored = if slot == SlotId::A {
        &mut slots.a
    } else {
        &mut slots.b
    };
    let Stored::Bytes(bytes) = stored else {
        panic!("nothing in {slot:?}")
    };
    *bytes = seal_with(&RustCrypto::new(&[1; 32]), &[2; 12], bytes).unwrap();
}

/// What the driver hands over when its key does not open `slot`.
fn undecryptable(w: &Shared, slot: SlotId, version: u64) {
    let mut world = w.borrow_mut();
    let slots = world.slots(BackendKind::IndexedDb);
    let failed = Stored::Failed(SessileError::DecryptFailed {
        state_version: version,
    });
    if slot == SlotId::A {
        slots.a = failed;
    } else {
        slots.b = failed;
    }
}

#[test]
fn an_encrypted_copy_opened_without_a_key_is_key_required_and_kept() {
    let w = world();
    saved_twice(&w);
    seal_slot(&w, SlotId::A);
    seal_slot(&w, SlotId::B);
    let before = format!("{:?}", w.borrow().backends);
    let tab = Tab::open(&w, config("k-none", 1), 10);
    assert_eq!(
        tab.engine.phase(),
        &Phase::Failed(SessileError::KeyRequired { state_version: 2 })
    );
    assert_eq!(format!("{:?}", w.borrow().backends), before);
    assert!(w.borrow().history.is_empty(), "nothing written");
}

#[test]
fn a_newest_copy_that_does_not_decrypt_stops_the_open() {
    let w = world();
    saved_twice(&w);
    undecryptable(&w, SlotId::B, 2);
    let tab = Tab::open(&w, config("k-wrong", 1), 10);
    assert_eq!(
        tab.engine.phase().clone(),
        Phase::Failed(SessileError::DecryptFailed { state_version: 2 })
    );
    assert!(w.borrow().history.is_empty());
}

#[test]
fn an_older_copy_that_does_not_decrypt_is_only_skipped() {
    let w = world();
    let (_, second) = saved_twice(&w);
    undecryptable(&w, SlotId::A, 1);
    let tab = Tab::open(&w, config("k-older", 1), 10);
    assert_eq!(tab.engine.phase(), &Phase::Ready);
    assert_eq!(tab.state(), second);
    let RestoreOutcome::Restored { skipped, .. } = tab.restored() else {
        panic!()
    };
    assert_eq!(skipped[0].1.code(), "DECRYPT_FAILED");
}

#[test]
fn a_rescue_copy_that_does_not_decrypt_stops_the_open_and_is_kept() {
    let w = world();
    saved_twice(&w);
    w.borrow_mut().rescues.insert(
        "k-rescue:rescue:x".into(),
        (
            2,
            Stored::Failed(SessileError::DecryptFailed { state_version: 3 }),
        ),
    );
    let tab = Tab::open(&w, config("k-rescue", 1), 10);
    assert_eq!(
        tab.engine.phase().clone(),
        Phase::Failed(SessileError::DecryptFailed { state_version: 3 })
    );
    assert_eq!(
        w.borrow().rescues.len(),
        1,
        "the rescue copy is not forgotten"
    );
}

#[test]
fn discard_local_starts_without_the_copy_and_writes_over_it() {
    let w = world();
    saved_twice(&w);
    seal_slot(&w, SlotId::A);
    seal_slot(&w, SlotId::B);
    let cfg = StoreConfig {
        discard_local: true,
        ..config("k-discard", 1)
    };
    let mut tab = Tab::open(&w, cfg, 10);
    assert_eq!(tab.engine.phase(), &Phase::Ready);
    assert_eq!(tab.state(), json!({ "step": "cart" }));
    tab.set(json!({ "step": "checkout" }));
    tab.flush().unwrap();
    let world = w.borrow();
    let stored = [SlotId::A, SlotId::B].map(|s| world.state_in(BackendKind::IndexedDb, s));
    assert!(stored.contains(&Some(json!({ "step": "checkout" }))));
}

#[test]
fn a_rewrite_stores_the_same_version_in_each_slot_in_turn() {
    let w = world();
    let (_, second) = saved_twice(&w);
    let mut tab = Tab::open(&w, config("k-rewrite", 1), 10);
    for _ in 0..2 {
        tab.engine.rewrite(20).unwrap();
        tab.flush().unwrap();
    }
    assert_eq!(
        w.borrow().history,
        vec![Some(second.clone()), Some(second.clone())]
    );
    assert_eq!(tab.engine.version(), 2, "a rewrite is not a change");
    let reopened = Tab::open(&w, config("k-rewrite", 2), 30);
    assert_eq!(reopened.state(), second);
    let _ = EnvelopeConfig::default();
}

fn decrypt_failed(version: u64) -> Stored {
    Stored::Failed(SessileError::DecryptFailed {
        state_version: version,
    })
}

#[test]
fn a_slot_another_key_sealed_is_never_replaced() {
    let key = SessileError::KeyRequired { state_version: 3 };
    assert_eq!(
        may_replace(&decrypt_failed(3), 0),
        Err(decrypt_failed_error(3))
    );
    assert_eq!(may_replace(&Stored::Failed(key.clone()), 2), Err(key));
    assert_eq!(may_replace(&Stored::Missing, 0), Ok(()));
    assert_eq!(may_replace(&Stored::Bytes(vec![1, 2, 3]), 0), Ok(()));
    let damaged = SessileError::CorruptPayload { reason: "bad" };
    assert_eq!(may_replace(&Stored::Failed(damaged), 0), Ok(()));
    // What the page decided to drop (discardLocal, a rotation) may go.
    assert_eq!(may_replace(&decrypt_failed(3), 3), Ok(()));
}

fn decrypt_failed_error(version: u64) -> SessileError {
    SessileError::DecryptFailed {
        state_version: version,
    }
}

#[test]
fn a_refused_write_does_not_write_over_a_newer_copy_of_another_key() {
    let read = |a: Stored| StoredRead {
        a,
        b: Stored::Missing,
        head: Head::at(5),
        rescues: Vec::new(),
        marker: None,
    };
    let cfg = EnvelopeConfig::default();
    // Another tab stored version 5 with its key: this tab waits, writes nothing.
    match super::super::restore::after_refusal(&read(decrypt_failed(5)), 5, &cfg) {
        super::super::restore::AfterRefusal::Unread(e) => {
            assert_eq!(e, decrypt_failed_error(5))
        }
        other => panic!("{other:?}"),
    }
    // An older copy the key does not open (before a rotation) is written over.
    let older = super::super::restore::after_refusal(&read(decrypt_failed(4)), 5, &cfg);
    assert!(matches!(
        older,
        super::super::restore::AfterRefusal::WriteOver { head: 5 }
    ));
}
