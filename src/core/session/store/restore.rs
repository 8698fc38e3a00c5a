//! What a store takes from storage: the newest valid slot (the two-slot
//! rules of `core::slots`), or a rescue copy that continues it (left by a
//! tab closed with a write pending); which rescue copies lost and are
//! removed; and, after a refused write, whether the stored copy is newer
//! than the head that refused it. Pure decisions on what was read.

use super::types::{RescueCopy, Stored, StoredRead};
use crate::core::envelope::{decode, EnvelopeConfig, Snapshot};
use crate::core::error::SessileError;
use crate::core::slots::{self, Restore, SlotId, SlotRead};

/// A copy that could not be used, and why.
pub type Skipped = (SlotId, SessileError);

fn slot_read(stored: &Stored) -> SlotRead<'_> {
    match stored {
        Stored::Missing => SlotRead::Missing,
        Stored::Bytes(bytes) => SlotRead::Bytes(bytes),
        Stored::Failed(error) => SlotRead::Failed(error.clone()),
    }
}

/// The newest valid copy of slots `a` and `b`, and every slot skipped (a
/// failed read counts as skipped), in slot order.
pub fn choose_slot(
    read: &StoredRead,
    cfg: &EnvelopeConfig,
) -> (Option<(SlotId, Snapshot)>, Vec<Skipped>) {
    let reads = [
        (SlotId::A, slot_read(&read.a)),
        (SlotId::B, slot_read(&read.b)),
    ];
    match slots::restore(&reads, cfg) {
        Restore::Restored {
            snapshot,
            slot,
            skipped,
        } => (
            Some((slot, snapshot)),
            skipped.into_iter().map(|p| (p.slot, p.error)).collect(),
        ),
        Restore::Unreadable { problems } => (
            None,
            problems.into_iter().map(|p| (p.slot, p.error)).collect(),
        ),
        _ => (None, Vec::new()),
    }
}

/// The rescue copies sorted out.
#[derive(Debug, Default)]
pub struct Rescues {
    /// The newest copy that continues the stored state, with its key.
    pub chosen: Option<(String, Snapshot)>,
    /// Valid copies that lost: based on an older head, or older than `chosen`.
    pub stale: Vec<Snapshot>,
    /// Copies that could not be decoded.
    pub broken: Vec<Skipped>,
    /// Keys of every copy but `chosen`: removed now.
    pub forget: Vec<String>,
}

/// Keeps the newest rescue copy based on `head` (any one when nothing was
/// ever stored: head 0, as after an eviction). With a tombstone head (a
/// clear) and no slot, only a copy based on the tombstone continues.
pub fn sort_rescues(
    copies: &[RescueCopy],
    head: u64,
    nothing_stored: bool,
    cfg: &EnvelopeConfig,
) -> Rescues {
    let mut out = Rescues::default();
    for copy in copies {
        let decoded = match &copy.bytes {
            Stored::Bytes(bytes) => decode(bytes, cfg),
            Stored::Failed(error) => Err(error.clone()),
            Stored::Missing => continue,
        };
        let snap = match decoded {
            Ok(snap) => snap,
            Err(error) => {
                out.broken.push((SlotId::Rescue, error));
                out.forget.push(copy.key.clone());
                continue;
            }
        };
        let version = snap.meta.state_version;
        let continues = (nothing_stored && head == 0) || (copy.base == head && version > head);
        let newer = out
            .chosen
            .as_ref()
            .is_none_or(|(_, c)| version > c.meta.state_version);
        if continues && newer {
            if let Some((key, old)) = out.chosen.take() {
                out.stale.push(old);
                out.forget.push(key);
            }
            out.chosen = Some((copy.key.clone(), snap));
        } else {
            out.stale.push(snap);
            out.forget.push(copy.key.clone());
        }
    }
    out
}

/// What the stored copy says after a write was refused by head `refused_by`.
#[derive(Debug)]
pub enum AfterRefusal {
    /// A slot could not be read and may hold the newer copy: decide nothing.
    Unread(SessileError),
    /// Another tab cleared the namespace (a tombstone head and no slot).
    Cleared {
        /// The tombstone.
        tombstone: u64,
    },
    /// No valid copy at least as new as the head: this tab's state is
    /// written over what is there, based on `head`.
    WriteOver {
        /// The head the next write is based on.
        head: u64,
    },
    /// The stored copy is newer: take it.
    Take(SlotId, Snapshot),
}

/// Decides what a refused write leads to, from a fresh read.
pub fn after_refusal(read: &StoredRead, refused_by: u64, cfg: &EnvelopeConfig) -> AfterRefusal {
    let (found, _) = choose_slot(read, cfg);
    let newest = found
        .as_ref()
        .is_some_and(|(_, s)| s.meta.state_version >= refused_by);
    if !newest {
        for stored in [&read.a, &read.b] {
            if let Stored::Failed(error) = stored {
                if error.is_retryable() {
                    return AfterRefusal::Unread(error.clone());
                }
            }
        }
    }
    let both_missing = read.a == Stored::Missing && read.b == Stored::Missing;
    if read.head.version > 0 && both_missing {
        return AfterRefusal::Cleared {
            tombstone: read.head.version,
        };
    }
    match found {
        Some((slot, snapshot)) if newest => AfterRefusal::Take(slot, snapshot),
        _ => AfterRefusal::WriteOver { head: refused_by },
    }
}
