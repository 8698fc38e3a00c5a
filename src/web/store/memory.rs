//! The memory backend: slots and head in a table shared by every store of
//! this page (two stores of one namespace see each other, as two tabs do
//! through real storage). Lost on reload; the last resort of `auto`.

use std::cell::RefCell;

use super::backend::SlotsRead;
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{Head, Stored, WriteResult};
use crate::core::slots::SlotId;

#[derive(Default)]
struct Entry {
    a: Option<Vec<u8>>,
    b: Option<Vec<u8>>,
    head: Head,
}

thread_local! {
    /// Namespace and entry. A list, not a `HashMap`: a page holds a few
    /// namespaces, and hashbrown with SipHash costs the wasm module about
    /// 3 KB (docs/PERFORMANCE.md).
    static TABLE: RefCell<Vec<(String, Entry)>> = const { RefCell::new(Vec::new()) };
}

/// One namespace's entry of the page's table.
pub(crate) struct MemoryBackend {
    ns: String,
}

fn stored(bytes: &Option<Vec<u8>>) -> Stored {
    bytes.clone().map_or(Stored::Missing, Stored::Bytes)
}

impl MemoryBackend {
    /// Always opens.
    pub(crate) fn open(layout: &Layout) -> Self {
        Self {
            ns: layout.shared_name(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entry) -> T) -> T {
        TABLE.with(|t| {
            let mut table = t.borrow_mut();
            let at = match table.iter().position(|(ns, _)| *ns == self.ns) {
                Some(at) => at,
                None => {
                    table.push((self.ns.clone(), Entry::default()));
                    table.len() - 1
                }
            };
            f(&mut table[at].1)
        })
    }

    pub(crate) fn read(&self) -> SlotsRead {
        self.with(|e| SlotsRead {
            a: stored(&e.a),
            b: stored(&e.b),
            head: e.head.clone(),
        })
    }

    pub(crate) fn write_if_head(
        &self,
        slot: SlotId,
        base: u64,
        head: &Head,
        bytes: &[u8],
    ) -> WriteResult {
        self.with(|e| {
            if e.head.version != base {
                return WriteResult::Refused {
                    head: e.head.version,
                };
            }
            match slot {
                SlotId::B => e.b = Some(bytes.to_vec()),
                _ => e.a = Some(bytes.to_vec()),
            }
            e.head = head.clone();
            WriteResult::Stored
        })
    }

    pub(crate) fn clear(&self, at_least: u64) -> u64 {
        self.with(|e| {
            let tombstone = at_least.max(e.head.version + 1);
            *e = Entry {
                head: Head::at(tombstone),
                ..Entry::default()
            };
            tombstone
        })
    }
}
