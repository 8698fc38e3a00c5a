//! Opening a store: what is restored from which slot or rescue copy, what
//! is skipped and reported, backend fallbacks, migrations, eviction, and
//! options refused. The cases of js/test/store_browser.test.mjs, on the
//! fake storage.

use serde_json::json;

use super::super::*;
use super::harness::*;
use crate::core::slots::SlotId;

#[test]
fn the_newest_slot_is_restored_with_its_version() {
    let w = world();
    let (_, second) = saved_twice(&w);
    let tab = Tab::open(&w, config("t-reopen", 1), 10);
    assert_eq!(tab.engine.phase(), &Phase::Ready);
    assert_eq!(tab.state(), second);
    assert_eq!(tab.engine.version(), 2);
    assert_eq!(
        tab.restored(),
        RestoreOutcome::Restored {
            from: SlotId::B,
            version: 2,
            schema_version: 1,
            migrated: false,
            skipped: vec![],
        }
    );
    assert_eq!(tab.engine.diagnostics().last_write.unwrap().generation, 2);
}

#[test]
fn each_corrupted_slot_in_turn_is_skipped_and_the_next_write_goes_over_it() {
    for (bad, good) in [(SlotId::B, SlotId::A), (SlotId::A, SlotId::B)] {
        let w = world();
        let (first, second) = saved_twice(&w);
        {
            let mut world = w.borrow_mut();
            let slots = world.slots(BackendKind::IndexedDb);
            let stored = if bad == SlotId::A {
                &mut slots.a
            } else {
                &mut slots.b
            };
            let Stored::Bytes(bytes) = stored else {
                panic!()
            };
            // A bit of the payload (the header's lengths would say TRUNCATED).
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
        }
        let mut tab = Tab::open(&w, config("t-corrupt", 1), 10);
        assert_eq!(tab.state(), if good == SlotId::A { first } else { second });
        assert_eq!(tab.engine.version(), 2, "never below the stored head");
        let RestoreOutcome::Restored { from, skipped, .. } = tab.restored() else {
            panic!()
        };
        assert_eq!(from, good);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, bad);
        assert_eq!(skipped[0].1.code(), "CHECKSUM_MISMATCH");
        assert!(tab.errors().is_empty());
        tab.set(json!({ "step": "upsell-1" }));
        tab.flush().unwrap();
        let last = tab.engine.diagnostics().last_write.unwrap();
        assert_eq!(
            last.slot, bad,
            "the write goes to the corrupted slot, never over the good one"
        );
        assert_eq!(last.generation, if good == SlotId::A { 2 } else { 3 });
        assert!(w.borrow().state_in(BackendKind::IndexedDb, good).is_some());
    }
}

#[test]
fn both_slots_corrupted_give_the_initial_state_an_unreadable_restore_and_an_error() {
    let w = world();
    saved_twice(&w);
    {
        let mut world = w.borrow_mut();
        let slots = world.slots(BackendKind::IndexedDb);
        slots.a = Stored::Bytes(b"SSNP\x01torn".to_vec());
        slots.b = Stored::Bytes(b"SSNP\x01torn".to_vec());
    }
    let mut tab = Tab::open(&w, config("t-corrupt-both", 1), 10);
    assert_eq!(tab.state(), json!({ "step": "cart" }));
    let RestoreOutcome::Unreadable { skipped } = tab.restored() else {
        panic!()
    };
    let codes: Vec<_> = skipped.iter().map(|(s, e)| (*s, e.code())).collect();
    assert_eq!(codes, [(SlotId::A, "TRUNCATED"), (SlotId::B, "TRUNCATED")]);
    assert_eq!(tab.errors(), [("TRUNCATED".to_string(), During::Restore)]);
    assert_eq!(
        tab.set(json!({ "step": "checkout" })),
        3,
        "a new write still wins over head 2"
    );
    tab.flush().unwrap();
    let again = Tab::open(&w, config("t-corrupt-both", 2), 20);
    assert_eq!(again.state(), json!({ "step": "checkout" }));
}

#[test]
fn indexeddb_unavailable_falls_back_to_localstorage_and_says_so() {
    let w = world();
    w.borrow_mut().unavailable.insert(BackendKind::IndexedDb);
    let auto = StoreConfig {
        storage: None,
        ..config("t-no-idb", 1)
    };
    let mut tab = Tab::open(&w, auto, 10);
    assert_eq!(tab.engine.backend(), Some(BackendKind::LocalStorage));
    let StoreEvent::StorageDegraded {
        backend,
        using,
        error,
    } = &tab.events[0]
    else {
        panic!("{:?}", tab.events)
    };
    assert_eq!(
        (*backend, *using),
        (BackendKind::IndexedDb, BackendKind::LocalStorage)
    );
    assert_eq!(error.code(), "STORAGE_UNAVAILABLE");
    assert!(error.to_string().contains("SecurityError"));
    tab.set(json!({ "n": 2 }));
    tab.flush().unwrap();
    assert_eq!(
        w.borrow_mut().slots(BackendKind::LocalStorage).head.version,
        1
    );
    assert_eq!(tab.engine.diagnostics().degraded.len(), 1);

    // A page that named IndexedDB gets the error, not a silent fallback.
    let named = Tab::open(&w, config("t-no-idb2", 2), 10);
    let Phase::Failed(error) = named.engine.phase() else {
        panic!()
    };
    assert_eq!(error.code(), "STORAGE_UNAVAILABLE");
}

#[test]
fn no_storage_at_all_runs_in_memory_with_two_degraded_events() {
    let w = world();
    w.borrow_mut()
        .unavailable
        .extend([BackendKind::IndexedDb, BackendKind::LocalStorage]);
    let mut tab = Tab::open(
        &w,
        StoreConfig {
            storage: None,
            ..config("t-none", 1)
        },
        10,
    );
    let degraded: Vec<_> = tab
        .events
        .iter()
        .filter_map(|e| match e {
            StoreEvent::StorageDegraded { backend, using, .. } => Some((*backend, *using)),
            _ => None,
        })
        .collect();
    assert_eq!(
        degraded,
        [
            (BackendKind::IndexedDb, BackendKind::Memory),
            (BackendKind::LocalStorage, BackendKind::Memory)
        ]
    );
    assert_eq!(tab.restored(), RestoreOutcome::Fresh);
    tab.set(json!({ "n": 2 }));
    tab.flush().unwrap();
    let d = tab.engine.diagnostics();
    assert!(!d.unsaved);
    assert_eq!(d.last_write.unwrap().slot, SlotId::A);
    // Memory keeps no rescue copy and no marker.
    tab.set(json!({ "n": 3 }));
    tab.pagehide();
    assert!(w.borrow().rescues.is_empty());
    assert_eq!(w.borrow().marker, None);
}

#[test]
fn bad_options_are_refused_before_anything_is_opened() {
    let bad_name = StoreEngine::new(StoreConfig::new("", client(1)), 0).unwrap_err();
    assert_eq!(bad_name.code(), "INVALID_OPTIONS");
    assert!(bad_name.to_string().contains("`name`"));
    let slow = StoreConfig {
        debounce_ms: 60_001,
        ..StoreConfig::new("x", client(1))
    };
    assert_eq!(
        StoreEngine::new(slow, 0).unwrap_err().code(),
        "INVALID_OPTIONS"
    );
}

fn migrate(from: u32, state: serde_json::Value) -> Result<serde_json::Value, String> {
    let mut s = state;
    match from {
        1 => s["step"] = json!("checkout"),
        2 => {
            let mail = s
                .as_object_mut()
                .unwrap()
                .remove("mail")
                .unwrap_or_default();
            s["email"] = mail;
        }
        _ => return Err(format!("no migration function migrate[{from}]")),
    }
    Ok(s)
}

#[test]
fn older_schemas_are_migrated_in_order_and_written_back_as_a_new_version() {
    for schema in [1, 2] {
        let w = world();
        let stored = json!({ "step": "cart", "mail": "a@example.com" });
        {
            let mut world = w.borrow_mut();
            let slots = world.slots(BackendKind::IndexedDb);
            slots.a = Stored::Bytes(snapshot(&stored, 4, 1, schema));
            slots.head = Head::at(4);
        }
        let cfg = StoreConfig {
            schema_version: 3,
            ..config("t-schema", 1)
        };
        let mut tab = Tab::open_with(&w, cfg, 10, Some(Box::new(migrate)));
        let expected = if schema == 1 {
            json!({ "step": "checkout", "email": "a@example.com" })
        } else {
            json!({ "step": "cart", "email": "a@example.com" })
        };
        assert_eq!(tab.state(), expected);
        assert_eq!(tab.engine.version(), 5, "a migrated state is a new version");
        let RestoreOutcome::Restored {
            migrated,
            schema_version,
            ..
        } = tab.restored()
        else {
            panic!()
        };
        assert!(migrated);
        assert_eq!(schema_version, schema);
        assert!(tab.engine.diagnostics().unsaved, "written back");
        tab.flush().unwrap();
        assert_eq!(
            w.borrow().state_in(BackendKind::IndexedDb, SlotId::B),
            Some(expected)
        );
    }
}

#[test]
fn a_newer_schema_or_a_failing_migration_is_refused_and_the_bytes_are_left_alone() {
    let cases: [(u32, u32, Option<&str>); 3] = [
        (4, 3, None),
        (1, 3, Some("bad data")),
        (1, 3, Some("missing")),
    ];
    for (stored_schema, page_schema, failing) in cases {
        let w = world();
        let bytes = snapshot(&json!({ "mail": "a@example.com" }), 4, 1, stored_schema);
        {
            let mut world = w.borrow_mut();
            let slots = world.slots(BackendKind::IndexedDb);
            slots.a = Stored::Bytes(bytes.clone());
            slots.head = Head::at(4);
        }
        let cfg = StoreConfig {
            schema_version: page_schema,
            ..config("t-schema-bad", 1)
        };
        let f: Box<dyn Fn(u32, serde_json::Value) -> Result<serde_json::Value, String>> =
            match failing {
                Some("bad data") => Box::new(|from, s| {
                    if from == 1 {
                        Err("bad data".into())
                    } else {
                        Ok(s)
                    }
                }),
                _ => Box::new(|from, s| {
                    if from == 1 {
                        Ok(s)
                    } else {
                        Err(format!("no migration function migrate[{from}]"))
                    }
                }),
            };
        let tab = Tab::open_with(&w, cfg, 10, Some(f));
        let Phase::Failed(error) = tab.engine.phase() else {
            panic!()
        };
        match failing {
            None => assert_eq!(error.code(), "SCHEMA_TOO_NEW"),
            Some("bad data") => {
                assert_eq!(error.code(), "MIGRATION_FAILED");
                assert!(error.to_string().contains("bad data"));
            }
            Some(_) => {
                assert_eq!(error.code(), "MIGRATION_FAILED");
                assert!(error.to_string().contains("migrate[2]"));
            }
        }
        assert_eq!(
            w.borrow_mut().slots(BackendKind::IndexedDb).a,
            Stored::Bytes(bytes)
        );
    }
}

#[test]
fn an_evicted_namespace_is_reported_and_clear_ends_it() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-evicted", 1), 10);
    tab.set(json!({ "step": "checkout" }));
    tab.flush().unwrap();
    tab.set(json!({ "step": "upsell-1" }));
    tab.flush().unwrap();
    assert_eq!(w.borrow().marker.as_deref(), Some("2"));
    // What eviction or "clear site data" does to IndexedDB.
    w.borrow_mut().backends.clear();
    let mut again = Tab::open(&w, config("t-evicted", 2), 20);
    assert_eq!(
        again.restored(),
        RestoreOutcome::Evicted {
            last_version: "2".into()
        }
    );
    again.clear().unwrap();
    assert_eq!(w.borrow().marker, None);
    let last = Tab::open(&w, config("t-evicted", 3), 30);
    assert_eq!(last.restored(), RestoreOutcome::Fresh);
}

#[test]
fn a_rescue_copy_alone_is_restored_written_back_and_removed_and_a_broken_one_reported() {
    let w = world();
    {
        let mut world = w.borrow_mut();
        let bytes = snapshot(&json!({ "step": "upsell-2" }), 5, 3, 1);
        world
            .rescues
            .insert("t:rescue:closedtab".into(), (0, Stored::Bytes(bytes)));
        let broken = Stored::Failed(SessileError::CorruptPayload {
            reason: "rescue copy without its base version",
        });
        world.rescues.insert("t:rescue:broken".into(), (0, broken));
    }
    let mut tab = Tab::open(&w, config("t", 1), 10);
    let RestoreOutcome::Restored { from, skipped, .. } = tab.restored() else {
        panic!()
    };
    assert_eq!(from, SlotId::Rescue);
    let codes: Vec<_> = skipped.iter().map(|(s, e)| (*s, e.code())).collect();
    assert_eq!(codes, [(SlotId::Rescue, "CORRUPT_PAYLOAD")]);
    assert_eq!(tab.state(), json!({ "step": "upsell-2" }));
    assert_eq!(tab.engine.version(), 5, "continues the (empty) stored head");
    assert!(tab.engine.diagnostics().unsaved);
    assert_eq!(
        w.borrow().rescues.len(),
        1,
        "the broken copy is removed at once"
    );
    tab.flush().unwrap();
    assert_eq!(tab.engine.diagnostics().last_write.unwrap().slot, SlotId::A);
    assert!(w.borrow().rescues.is_empty(), "removed once written back");
}

#[test]
fn a_rescue_copy_based_on_an_older_head_loses_and_is_a_conflict() {
    let w = world();
    w.borrow_mut().put(
        BackendKind::IndexedDb,
        SlotId::A,
        &json!({ "step": "checkout" }),
        3,
        1,
    );
    let old = snapshot(&json!({ "step": "success", "card": "4242" }), 2, 1, 1);
    w.borrow_mut()
        .rescues
        .insert("t:rescue:y".into(), (1, Stored::Bytes(old)));
    let tab = Tab::open(&w, config("t", 1), 10);
    assert_eq!(tab.state(), json!({ "step": "checkout" }));
    assert_eq!(
        tab.conflicts(),
        [(
            json!({ "step": "success", "card": "4242" }),
            json!({ "step": "checkout" }),
            Winner::Remote
        )]
    );
    assert!(w.borrow().rescues.is_empty());
}

#[test]
fn a_failed_first_read_fails_the_open() {
    let w = world();
    w.borrow_mut().fail_read = Some(SessileError::StorageUnavailable {
        reason: "UnknownError".into(),
    });
    let tab = Tab::open(&w, config("t", 1), 10);
    let Phase::Failed(error) = tab.engine.phase() else {
        panic!()
    };
    assert_eq!(error.code(), "STORAGE_UNAVAILABLE");
}
