//! Memory backend: slots in a table shared by every store of this page (so
//! two stores of one namespace see each other, as two tabs would through real
//! storage). Lost on reload; the last resort of the `auto` chain.
//!
//! The table is a `Vec` searched linearly: a page has a handful of
//! namespaces, and a `HashMap` costs about 2 KB of wasm.

use std::cell::RefCell;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

use super::{SlotStorage, SlotsRead};

/// What memory holds for one namespace.
struct Entry {
    namespace: String,
    /// Slot bytes, indexed by `SlotId as usize` (A and B).
    slots: [Option<Vec<u8>>; 2],
    /// Version of the last successful write (the compare-and-set head), 0
    /// when none.
    head: u64,
}

thread_local! {
    static TABLE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the entry of `namespace`, if there is one.
fn with_entry<T>(namespace: &str, f: impl FnOnce(&Entry) -> T) -> Option<T> {
    TABLE.with(|t| t.borrow().iter().find(|e| e.namespace == namespace).map(f))
}

/// Runs `f` on the entry of `namespace`, created empty if needed.
fn with_entry_mut<T>(namespace: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
    TABLE.with(|t| {
        let mut table = t.borrow_mut();
        let i = match table.iter().position(|e| e.namespace == namespace) {
            Some(i) => i,
            None => {
                table.push(Entry {
                    namespace: namespace.to_owned(),
                    slots: [None, None],
                    head: 0,
                });
                table.len() - 1
            }
        };
        f(&mut table[i])
    })
}

pub(crate) struct MemorySlots {
    namespace: String,
}

impl MemorySlots {
    pub(crate) fn open(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    fn get(&self, slot: SlotId) -> Option<Vec<u8>> {
        with_entry(&self.namespace, |e| {
            e.slots.get(slot as usize).cloned().flatten()
        })
        .flatten()
    }
}

impl SlotStorage for MemorySlots {
    async fn read_all(&self) -> Result<SlotsRead, SessileError> {
        Ok(SlotsRead {
            a: Ok(self.get(SlotId::A)),
            b: Ok(self.get(SlotId::B)),
            head: with_entry(&self.namespace, |e| e.head).unwrap_or(0),
        })
    }

    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError> {
        with_entry_mut(&self.namespace, |entry| {
            if entry.head != base {
                return Err(SessileError::StaleWrite {
                    stored: entry.head,
                    attempted: version,
                });
            }
            if let Some(place) = entry.slots.get_mut(slot as usize) {
                *place = Some(bytes.to_vec());
            }
            entry.head = version;
            Ok(())
        })
    }

    async fn clear(&self, tombstone: u64) -> Result<(), SessileError> {
        with_entry_mut(&self.namespace, |entry| {
            entry.slots = [None, None];
            entry.head = tombstone;
        });
        Ok(())
    }
}
