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
    /// Slot bytes, indexed by `SlotId as usize`.
    slots: [Option<Vec<u8>>; 3],
    /// Version of the last successful write (the compare-and-set head).
    head: Option<u64>,
}

thread_local! {
    static TABLE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the entry of `namespace`, if there is one.
fn with_entry<T>(namespace: &str, f: impl FnOnce(&Entry) -> T) -> Option<T> {
    TABLE.with(|t| t.borrow().iter().find(|e| e.namespace == namespace).map(f))
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
        with_entry(&self.namespace, |e| e.slots[slot as usize].clone()).flatten()
    }
}

impl SlotStorage for MemorySlots {
    async fn read_all(&self) -> Result<SlotsRead, SessileError> {
        Ok(SlotsRead {
            a: Ok(self.get(SlotId::A)),
            b: Ok(self.get(SlotId::B)),
            head_version: with_entry(&self.namespace, |e| e.head).flatten(),
        })
    }

    async fn write_if_newer(
        &self,
        slot: SlotId,
        bytes: &[u8],
        version: u64,
    ) -> Result<(), SessileError> {
        TABLE.with(|t| {
            let mut table = t.borrow_mut();
            let i = match table.iter().position(|e| e.namespace == self.namespace) {
                Some(i) => i,
                None => {
                    table.push(Entry {
                        namespace: self.namespace.clone(),
                        slots: [None, None, None],
                        head: None,
                    });
                    table.len() - 1
                }
            };
            let entry = &mut table[i];
            if let Some(stored) = entry.head.filter(|&s| s >= version) {
                return Err(SessileError::StaleWrite {
                    stored,
                    attempted: version,
                });
            }
            entry.slots[slot as usize] = Some(bytes.to_vec());
            entry.head = Some(version);
            Ok(())
        })
    }

    async fn clear(&self) -> Result<(), SessileError> {
        TABLE.with(|t| t.borrow_mut().retain(|e| e.namespace != self.namespace));
        Ok(())
    }
}
