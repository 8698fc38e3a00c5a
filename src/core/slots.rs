//! Crash-safe persistence in two slots: which slot the next write goes to
//! (never the one holding the newest valid copy) and which copy a restore
//! takes (the newest valid one, every skipped copy reported with its error).
//! Pure logic: the web drivers read and write the bytes.

use super::envelope::{decode, EnvelopeConfig, Snapshot};
use super::error::SessileError;

/// Where a copy of the state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlotId {
    /// The first of the two alternating slots.
    A,
    /// The second of the two alternating slots.
    B,
    /// A copy written synchronously to localStorage when the page is hidden
    /// or unloaded while an asynchronous write was still under way.
    Rescue,
}

impl SlotId {
    /// The storage key suffix of this slot (`a`, `b`, `rescue`).
    pub fn name(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
            Self::Rescue => "rescue",
        }
    }

    /// Every slot a restore reads, in a fixed order.
    pub const ALL: [SlotId; 3] = [SlotId::A, SlotId::B, SlotId::Rescue];
}

/// `a` is a later generation than `b` in serial-number arithmetic (RFC 1982):
/// correct across the wrap from 65535 to 0 while the two are less than 32768
/// writes apart (alternating slots are one apart).
pub fn generation_is_newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

/// What reading one slot gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRead<'a> {
    /// Nothing is stored there.
    Missing,
    /// These bytes are stored there.
    Bytes(&'a [u8]),
    /// Something is stored there but could not even be read as bytes (for
    /// example text in localStorage that is not base64).
    Failed(SessileError),
}

impl<'a> From<Option<&'a [u8]>> for SlotRead<'a> {
    fn from(bytes: Option<&'a [u8]>) -> Self {
        bytes.map_or(SlotRead::Missing, SlotRead::Bytes)
    }
}

/// A slot that held bytes which could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotProblem {
    /// The slot.
    pub slot: SlotId,
    /// What decoding it said.
    pub error: SessileError,
}

/// What a restore found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restore {
    /// No slot held anything: a new session (or, if the page knows it had
    /// data, an evicted one).
    Empty,
    /// The newest valid copy; `skipped` lists slots that held unusable bytes.
    Restored {
        /// The snapshot restored.
        snapshot: Snapshot,
        /// The slot it came from.
        slot: SlotId,
        /// Slots whose bytes were corrupt or unreadable, skipped.
        skipped: Vec<SlotProblem>,
    },
    /// Something was stored but no copy is valid. The caller starts fresh and
    /// tells the page; the bytes are left for inspection until overwritten.
    Unreadable {
        /// Why each slot was refused.
        problems: Vec<SlotProblem>,
    },
}

/// Orders two valid snapshots: the higher state version wins; at equal
/// versions the later generation does.
fn is_newer(a: &Snapshot, b: &Snapshot) -> bool {
    match a.meta.state_version.cmp(&b.meta.state_version) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => generation_is_newer(a.meta.generation, b.meta.generation),
    }
}

/// Decodes every slot's bytes and picks the newest valid copy: the first
/// (in the order given) that no other valid copy is newer than. Versions
/// always order copies, but generations exactly 32768 apart are neither
/// newer nor older (RFC 1982 leaves them undefined), so "newer" is not
/// transitive; when every copy has a newer one, the last one found newer
/// while scanning in order is taken.
pub fn restore(slots: &[(SlotId, SlotRead<'_>)], cfg: &EnvelopeConfig) -> Restore {
    let mut valid: Vec<(SlotId, Snapshot)> = Vec::new();
    let mut problems = Vec::new();
    let mut any_bytes = false;
    for (slot, read) in slots {
        let slot = *slot;
        let bytes = match read {
            SlotRead::Missing => continue,
            SlotRead::Bytes(bytes) => bytes,
            SlotRead::Failed(error) => {
                any_bytes = true;
                problems.push(SlotProblem {
                    slot,
                    error: error.clone(),
                });
                continue;
            }
        };
        any_bytes = true;
        match decode(bytes, cfg) {
            Ok(snap) => valid.push((slot, snap)),
            Err(error) => problems.push(SlotProblem { slot, error }),
        }
    }
    let unbeaten = valid
        .iter()
        .position(|(_, s)| !valid.iter().any(|(_, o)| is_newer(o, s)));
    let scanned = || {
        (1..valid.len()).fold(0, |best, i| {
            if is_newer(&valid[i].1, &valid[best].1) {
                i
            } else {
                best
            }
        })
    };
    let chosen = match unbeaten {
        Some(i) => i,
        None if valid.is_empty() => {
            return if any_bytes {
                Restore::Unreadable { problems }
            } else {
                Restore::Empty
            };
        }
        None => scanned(),
    };
    let (slot, snapshot) = valid.swap_remove(chosen);
    Restore::Restored {
        snapshot,
        slot,
        skipped: problems,
    }
}

/// Where the next write goes and with which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePlan {
    /// The slot to overwrite.
    pub slot: SlotId,
    /// The generation to put in the snapshot's header.
    pub generation: u16,
}

/// Plans the write after the last good one: the other slot, one generation
/// later. With nothing written yet, slot A with generation 1.
pub fn next_write(last_good: Option<(SlotId, u16)>) -> WritePlan {
    match last_good {
        Some((SlotId::A, g)) => WritePlan {
            slot: SlotId::B,
            generation: g.wrapping_add(1),
        },
        Some((_, g)) => WritePlan {
            slot: SlotId::A,
            generation: g.wrapping_add(1),
        },
        None => WritePlan {
            slot: SlotId::A,
            generation: 1,
        },
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
