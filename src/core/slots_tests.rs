//! Tests of slot selection: newest valid copy wins, every torn or corrupt
//! copy is skipped and reported, writes never land on the newest copy.

use super::*;
use crate::core::envelope::{encode, SnapshotMeta};

fn snap(state_version: u64, generation: u16, json: &str) -> Vec<u8> {
    let meta = SnapshotMeta {
        generation,
        schema_version: 1,
        state_version,
        modified_at_ms: 1000 + state_version,
    };
    encode(json, &meta, &EnvelopeConfig::default()).unwrap()
}

fn restored(r: &Restore) -> (SlotId, u64, usize) {
    match r {
        Restore::Restored {
            snapshot,
            slot,
            skipped,
        } => (*slot, snapshot.meta.state_version, skipped.len()),
        other => panic!("expected a restore, got {other:?}"),
    }
}

#[test]
fn empty_slots_are_a_new_session() {
    let cfg = EnvelopeConfig::default();
    assert_eq!(
        restore(
            &[
                (SlotId::A, SlotRead::Missing),
                (SlotId::B, SlotRead::Missing)
            ],
            &cfg
        ),
        Restore::Empty
    );
}

#[test]
fn newest_version_wins_whichever_slot_it_is_in() {
    let cfg = EnvelopeConfig::default();
    let (a, b) = (snap(4, 4, "{\"v\":4}"), snap(5, 5, "{\"v\":5}"));
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&a)),
            (SlotId::B, SlotRead::Bytes(&b)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::B, 5, 0));
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&b)),
            (SlotId::B, SlotRead::Bytes(&a)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::A, 5, 0));
}

#[test]
fn equal_versions_are_ordered_by_generation_across_the_wrap() {
    let cfg = EnvelopeConfig::default();
    let (old, new) = (
        snap(7, u16::MAX, "{\"g\":\"old\"}"),
        snap(7, 0, "{\"g\":\"new\"}"),
    );
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&old)),
            (SlotId::B, SlotRead::Bytes(&new)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r).0, SlotId::B);
    assert!(generation_is_newer(0, u16::MAX));
    assert!(generation_is_newer(2, 1));
    assert!(!generation_is_newer(1, 2));
    assert!(!generation_is_newer(5, 5));
}

#[test]
fn each_corrupted_slot_in_turn_is_skipped_and_reported() {
    let cfg = EnvelopeConfig::default();
    let (a, b) = (snap(1, 1, "{\"v\":1}"), snap(2, 2, "{\"v\":2}"));
    let mut torn_b = b.clone();
    torn_b.truncate(b.len() - 3);
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&a)),
            (SlotId::B, SlotRead::Bytes(&torn_b)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::A, 1, 1));
    let mut flipped_a = a.clone();
    flipped_a[45] ^= 0x10;
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&flipped_a)),
            (SlotId::B, SlotRead::Bytes(&b)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::B, 2, 1));
    if let Restore::Restored { skipped, .. } = r {
        assert_eq!(skipped[0].slot, SlotId::A);
        assert_eq!(skipped[0].error.code(), "CHECKSUM_MISMATCH");
    }
}

#[test]
fn both_slots_corrupted_is_unreadable_with_both_reasons() {
    let cfg = EnvelopeConfig::default();
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(b"garbage")),
            (SlotId::B, SlotRead::Bytes(&[])),
        ],
        &cfg,
    );
    match r {
        Restore::Unreadable { problems } => {
            let codes: Vec<_> = problems.iter().map(|p| (p.slot, p.error.code())).collect();
            assert_eq!(codes, [(SlotId::A, "BAD_MAGIC"), (SlotId::B, "TRUNCATED")]);
        }
        other => panic!("expected unreadable, got {other:?}"),
    }
}

#[test]
fn a_slot_that_could_not_be_read_is_reported() {
    let cfg = EnvelopeConfig::default();
    let b = snap(2, 2, "{}");
    let failed = SlotRead::Failed(SessileError::CorruptPayload {
        reason: "stored text is not base64",
    });
    let r = restore(
        &[
            (SlotId::A, failed.clone()),
            (SlotId::B, SlotRead::Bytes(&b)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::B, 2, 1));
    let r = restore(&[(SlotId::A, failed), (SlotId::B, SlotRead::Missing)], &cfg);
    assert!(matches!(r, Restore::Unreadable { .. }));
}

#[test]
fn a_rescue_copy_newer_than_both_slots_wins() {
    let cfg = EnvelopeConfig::default();
    let (a, b, rescue) = (snap(3, 3, "{}"), snap(4, 4, "{}"), snap(6, 5, "{}"));
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&a)),
            (SlotId::B, SlotRead::Bytes(&b)),
            (SlotId::Rescue, SlotRead::Bytes(&rescue)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::Rescue, 6, 0));
}

#[test]
fn writes_alternate_and_never_touch_the_newest_copy() {
    let first = next_write(None);
    assert_eq!(
        first,
        WritePlan {
            slot: SlotId::A,
            generation: 1
        }
    );
    let second = next_write(Some((first.slot, first.generation)));
    assert_eq!(
        second,
        WritePlan {
            slot: SlotId::B,
            generation: 2
        }
    );
    let third = next_write(Some((second.slot, second.generation)));
    assert_eq!(
        third,
        WritePlan {
            slot: SlotId::A,
            generation: 3
        }
    );
    let after_rescue = next_write(Some((SlotId::Rescue, 9)));
    assert_eq!(
        after_rescue,
        WritePlan {
            slot: SlotId::A,
            generation: 10
        }
    );
    assert_eq!(next_write(Some((SlotId::B, u16::MAX))).generation, 0);
}

#[test]
fn a_crash_between_any_two_writes_leaves_a_valid_newest_copy() {
    // Simulates 50 writes; after each, the write to the next slot is torn.
    let cfg = EnvelopeConfig::default();
    let mut slots: [Option<Vec<u8>>; 2] = [None, None];
    let mut last = None;
    for version in 1..=50u64 {
        let plan = next_write(last);
        let idx = if plan.slot == SlotId::A { 0 } else { 1 };
        let bytes = snap(version, plan.generation, &format!("{{\"v\":{version}}}"));
        // A torn write of the next version must not lose this one.
        let mut torn = slots.clone();
        let next = next_write(Some((plan.slot, plan.generation)));
        let next_idx = if next.slot == SlotId::A { 0 } else { 1 };
        slots[idx] = Some(bytes.clone());
        torn[idx] = Some(bytes.clone());
        torn[next_idx] = Some(bytes[..bytes.len() / 2].to_vec());
        let view = [
            (SlotId::A, torn[0].as_deref().into()),
            (SlotId::B, torn[1].as_deref().into()),
        ];
        assert_eq!(restored(&restore(&view, &cfg)).1, version);
        last = Some((plan.slot, plan.generation));
    }
}

/// Found by the `slot_restore` fuzz target (fuzz/corpus/slot_restore/
/// regression-incomparable-generations): generations exactly 32768 apart
/// are neither newer nor older, so a scan that keeps the better of two at
/// a time can keep a copy that another one beats. The copy no other beats
/// is restored.
#[test]
fn the_copy_no_other_beats_is_restored_across_incomparable_generations() {
    let cfg = EnvelopeConfig::default();
    let a = snap(3, 65535, "{\"slot\":\"a\"}");
    let rescue = snap(3, 32767, "{\"slot\":\"rescue\"}");
    let b = snap(3, 32511, "{\"slot\":\"b\"}");
    // b is newer than a, rescue newer than b, a and rescue incomparable.
    assert!(generation_is_newer(32511, 65535) && generation_is_newer(32767, 32511));
    assert!(!generation_is_newer(65535, 32767) && !generation_is_newer(32767, 65535));
    let r = restore(
        &[
            (SlotId::A, SlotRead::Bytes(&a)),
            (SlotId::Rescue, SlotRead::Bytes(&rescue)),
            (SlotId::B, SlotRead::Bytes(&b)),
        ],
        &cfg,
    );
    assert_eq!(restored(&r), (SlotId::Rescue, 3, 0));
}
