//! What a store takes from storage: the newest valid slot (the two-slot
//! rules of `core::slots`), or a rescue copy that continues it (left by a
//! tab closed with a write pending); which rescue copies lost and are
//! removed; and, after a refused write, whether the stored copy is newer
//! than the head that refused it. Pure decisions on what was read.

use super::types::{RescueCopy, Stored, StoredRead};
use crate::core::envelope::{decode, EnvelopeConfig, Snapshot};
use crate::core::error::SessileError;
use crate::core::sealed::{blocking_key_error, key_error_version};
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

/// Whether a write may replace `target`, the copy in the slot it writes as
/// read (and opened with the page's key) just before, under the
/// namespace's lock: not when the page's key does not open it
/// (`DECRYPT_FAILED`, or `KEY_REQUIRED`) and its version is above
/// `up_to`. Such a copy is another tab's, sealed with a key this one
/// lacks, and is never written over: the write fails with that error and
/// the state stays unsaved. `up_to` is what the page already decided to
/// drop: the head when it opened with `discardLocal`, the version stored
/// when it rotated the key (the copies under the old key); 0 otherwise.
/// An empty slot, a plain copy and a damaged one may be replaced.
pub fn may_replace(target: &Stored, up_to: u64) -> Result<(), SessileError> {
    match target {
        Stored::Failed(error) if key_error_version(error).is_some_and(|v| v > up_to) => {
            Err(error.clone())
        }
        _ => Ok(()),
    }
}

/// What the stored copy says after a write was refused by head `refused_by`.
#[derive(Debug)]
pub enum AfterRefusal {
    /// A slot could not be read, or the page's key does not open it, and it
    /// may hold the newer copy: decide nothing, write nothing over it.
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
        let failed = [&read.a, &read.b].into_iter().filter_map(|s| match s {
            Stored::Failed(error) => Some(error),
            _ => None,
        });
        // A newer copy sealed with a key this page lacks (another tab's).
        if let Some(error) = blocking_key_error(failed, Some(refused_by)) {
            return AfterRefusal::Unread(error);
        }
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
