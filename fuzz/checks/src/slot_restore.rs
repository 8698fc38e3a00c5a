//! Target `slot_restore`: the two-slot restore choice and the write plan
//! after it (`src/core/slots.rs`).
//!
//! Input: a mode byte (bit 0: decode with a 64-byte limit), then for each
//! of the slots A, B and rescue (in an order the input picks, one of them
//! now and then left out) what reading it gave: nothing, a read error, a
//! valid snapshot (state version 0 to 3, so that versions tie, any
//! generation, a small JSON state), a valid snapshot with one byte changed
//! or cut short, or raw bytes.
//!
//! Asserts: restoring never panics; `Empty` exactly when no slot held
//! anything; every slot that held bytes or failed and is not the one chosen
//! is reported, in order, with the error decoding it gives; `Unreadable`
//! exactly when no copy decodes; the copy restored is the one decoding its
//! slot gives, and it is the newest valid copy: when some valid copy has no
//! newer one (by state version, then generation in serial-number
//! arithmetic), the copy chosen has none either, and when all such copies
//! are equal in version and generation the choice does not depend on the
//! order of the slots; the next write goes to A or B, never to the slot
//! restored, one generation later, and that generation is newer.

use sessile::core::envelope::{decode, encode, EnvelopeConfig, Snapshot, SnapshotMeta};
use sessile::core::error::SessileError;
use sessile::core::slots::{
    generation_is_newer, next_write, restore, Restore, SlotId, SlotProblem, SlotRead,
};

use crate::input::Input;

const STATES: [&str; 4] = ["{}", "{\"a\":1}", "[1,2,3]", "{\"cart\":{\"items\":[1,2]}}"];

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let config = if input.byte() & 1 == 1 {
        EnvelopeConfig {
            max_raw_bytes: 64,
            ..EnvelopeConfig::default()
        }
    } else {
        EnvelopeConfig::default()
    };
    let mut order = SlotId::ALL.to_vec();
    for i in 0..order.len() {
        let j = i + input.below(order.len() - i);
        order.swap(i, j);
    }
    if input.one_in(4) {
        order.pop();
    }
    let stored: Vec<(SlotId, Stored)> = order
        .into_iter()
        .map(|slot| (slot, stored(&mut input)))
        .collect();
    check_slots(&stored, &config);
}

/// What one slot holds, owned.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Nothing.
    Missing,
    /// A read error.
    Failed(SessileError),
    /// Bytes.
    Bytes(Vec<u8>),
}

fn stored(input: &mut Input<'_>) -> Stored {
    match input.below(6) {
        0 => Stored::Missing,
        1 => Stored::Failed(SessileError::StorageUnavailable {
            reason: "not base64".into(),
        }),
        2 => {
            let n = input.below(64);
            Stored::Bytes(input.bytes(n).to_vec())
        }
        kind => {
            let meta = SnapshotMeta {
                generation: if input.one_in(2) {
                    u16::from(input.byte() % 4)
                } else {
                    input.u16()
                },
                schema_version: 1,
                state_version: u64::from(input.byte() % 4),
                modified_at_ms: 1_000,
            };
            let json = input.pick(&STATES);
            let mut bytes =
                encode(json, &meta, &EnvelopeConfig::default()).expect("a small state encodes");
            if kind == 4 {
                let at = input.below(bytes.len());
                bytes[at] ^= input.byte() | 1;
            } else if kind == 5 {
                let len = input.below(bytes.len());
                bytes.truncate(len);
            }
            Stored::Bytes(bytes)
        }
    }
}

fn is_newer(a: &Snapshot, b: &Snapshot) -> bool {
    match a.meta.state_version.cmp(&b.meta.state_version) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => generation_is_newer(a.meta.generation, b.meta.generation),
    }
}

fn reads(stored: &[(SlotId, Stored)]) -> Vec<(SlotId, SlotRead<'_>)> {
    stored
        .iter()
        .map(|(slot, s)| {
            let read = match s {
                Stored::Missing => SlotRead::Missing,
                Stored::Failed(e) => SlotRead::Failed(e.clone()),
                Stored::Bytes(b) => SlotRead::Bytes(b),
            };
            (*slot, read)
        })
        .collect()
}

/// The assertions on one set of slots.
pub fn check_slots(stored: &[(SlotId, Stored)], config: &EnvelopeConfig) {
    let result = restore(&reads(stored), config);
    let mut valid: Vec<(SlotId, Snapshot)> = Vec::new();
    let mut problems: Vec<SlotProblem> = Vec::new();
    for (slot, s) in stored {
        match s {
            Stored::Missing => {}
            Stored::Failed(error) => problems.push(SlotProblem {
                slot: *slot,
                error: error.clone(),
            }),
            Stored::Bytes(b) => match decode(b, config) {
                Ok(snap) => valid.push((*slot, snap)),
                Err(error) => problems.push(SlotProblem { slot: *slot, error }),
            },
        }
    }
    let all_missing = stored.iter().all(|(_, s)| matches!(s, Stored::Missing));
    let (snapshot, slot) = match result {
        Restore::Empty => {
            assert!(all_missing, "Empty with something stored: {stored:?}");
            assert_eq!(next_write(None).slot, SlotId::A);
            assert_eq!(next_write(None).generation, 1);
            return;
        }
        Restore::Unreadable { problems: got } => {
            assert!(!all_missing && valid.is_empty(), "Unreadable: {stored:?}");
            assert_eq!(got, problems);
            return;
        }
        Restore::Restored {
            snapshot,
            slot,
            skipped,
        } => {
            assert_eq!(skipped, problems, "skipped slots");
            (snapshot, slot)
        }
        other => panic!("unknown restore outcome {other:?}"),
    };
    let (_, from_slot) = valid
        .iter()
        .find(|(s, _)| *s == slot)
        .expect("the slot restored holds a valid copy");
    assert_eq!(&snapshot, from_slot, "the copy restored is its slot's");
    let newest: Vec<&Snapshot> = valid
        .iter()
        .map(|(_, s)| s)
        .filter(|s| !valid.iter().any(|(_, o)| is_newer(o, s)))
        .collect();
    if !newest.is_empty() {
        assert!(
            !valid.iter().any(|(_, o)| is_newer(o, &snapshot)),
            "a newer valid copy than slot {slot:?} was left: {valid:?}"
        );
        let key = |s: &Snapshot| (s.meta.state_version, s.meta.generation);
        if newest.iter().all(|s| key(s) == key(newest[0])) {
            let reversed: Vec<(SlotId, Stored)> = stored.iter().rev().cloned().collect();
            match restore(&reads(&reversed), config) {
                Restore::Restored { snapshot: r, .. } => {
                    assert_eq!(key(&r), key(&snapshot), "the choice depends on slot order")
                }
                other => panic!("reversed slots restore {other:?}"),
            }
        }
    }
    let generation = snapshot.meta.generation;
    let plan = next_write(Some((slot, generation)));
    assert!(matches!(plan.slot, SlotId::A | SlotId::B), "{plan:?}");
    assert_ne!(
        plan.slot, slot,
        "the next write overwrites the copy restored"
    );
    assert_eq!(plan.generation, generation.wrapping_add(1));
    assert!(generation_is_newer(plan.generation, generation));
}
