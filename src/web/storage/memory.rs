//! Memory backend: slots in a map shared by every store of this page (so two
//! stores of one namespace see each other, as two tabs would through real
//! storage). Lost on reload; the last resort of the `auto` chain.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

use super::{slot_key, SlotStorage, SlotsRead};

thread_local! {
    static SLOTS: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
    static HEADS: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
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
        SLOTS.with(|m| m.borrow().get(&slot_key(&self.namespace, slot)).cloned())
    }
}

impl SlotStorage for MemorySlots {
    async fn read_all(&self) -> Result<SlotsRead, SessileError> {
        Ok(SlotsRead {
            a: Ok(self.get(SlotId::A)),
            b: Ok(self.get(SlotId::B)),
            head: HEADS.with(|h| h.borrow().get(&self.namespace).copied().unwrap_or(0)),
        })
    }

    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError> {
        let stored = HEADS.with(|h| h.borrow().get(&self.namespace).copied().unwrap_or(0));
        if stored != base {
            return Err(SessileError::StaleWrite {
                stored,
                attempted: version,
            });
        }
        SLOTS.with(|m| {
            m.borrow_mut()
                .insert(slot_key(&self.namespace, slot), bytes.to_vec())
        });
        HEADS.with(|h| h.borrow_mut().insert(self.namespace.clone(), version));
        Ok(())
    }

    async fn clear(&self, tombstone: u64) -> Result<(), SessileError> {
        SLOTS.with(|m| {
            m.borrow_mut()
                .retain(|k, _| !k.starts_with(&format!("{}:", self.namespace)))
        });
        HEADS.with(|h| h.borrow_mut().insert(self.namespace.clone(), tombstone));
        Ok(())
    }
}
