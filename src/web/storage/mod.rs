//! Where snapshot slots live: IndexedDB (binary values, one database per
//! namespace), localStorage (base64 text) or memory, three drivers of one
//! `SlotStorage` trait: read every slot, write a slot only if the stored head
//! is still the version the write is based on (so a tab that missed another
//! tab's write never overwrites it), clear. `open` picks the backend and says who stepped in and why.

mod indexeddb;
pub(crate) mod local;
mod memory;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

/// Which backend holds the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackendKind {
    IndexedDb,
    LocalStorage,
    Memory,
}

impl BackendKind {
    /// The name pages use in options and diagnostics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::IndexedDb => "indexeddb",
            Self::LocalStorage => "localstorage",
            Self::Memory => "memory",
        }
    }

    /// Parses a `storage` option.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "indexeddb" => Some(Self::IndexedDb),
            "localstorage" => Some(Self::LocalStorage),
            "memory" => Some(Self::Memory),
            _ => None,
        }
    }
}

/// The raw content of every slot (each read may have failed on its own).
pub(crate) struct SlotsRead {
    pub(crate) a: Result<Option<Vec<u8>>, SessileError>,
    pub(crate) b: Result<Option<Vec<u8>>, SessileError>,
    /// Version of the last successful write (the compare-and-set head), 0
    /// when nothing was written.
    pub(crate) head: u64,
}

/// What every backend does, in the core's terms: read slots A and B and the
/// head (the version of the last write, 0 when none), write one slot and move
/// the head to `version` only if the head is still `base` (`STALE_WRITE`
/// otherwise, nothing written), and clear the slots leaving a tombstone head.
pub(crate) trait SlotStorage {
    /// Reads slots A and B and the head.
    async fn read_all(&self) -> Result<SlotsRead, SessileError>;
    /// Writes `bytes` to `slot` and sets the head to `version`, if the stored
    /// head is `base`.
    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError>;
    /// Removes both slots and sets the head to `tombstone`.
    async fn clear(&self, tombstone: u64) -> Result<(), SessileError>;
}

/// An opened backend: one of the three drivers.
pub(crate) enum Backend {
    IndexedDb(indexeddb::IdbSlots),
    LocalStorage(local::LocalSlots),
    Memory(memory::MemorySlots),
}

impl Backend {
    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Self::IndexedDb(_) => BackendKind::IndexedDb,
            Self::LocalStorage(_) => BackendKind::LocalStorage,
            Self::Memory(_) => BackendKind::Memory,
        }
    }

    /// Whether the browser closed the connection (IndexedDB only); the store
    /// reopens it before the next operation.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Self::IndexedDb(s) if s.is_closed())
    }
}

impl SlotStorage for Backend {
    async fn read_all(&self) -> Result<SlotsRead, SessileError> {
        match self {
            Self::IndexedDb(s) => s.read_all().await,
            Self::LocalStorage(s) => s.read_all().await,
            Self::Memory(s) => s.read_all().await,
        }
    }

    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError> {
        match self {
            Self::IndexedDb(s) => s.write_if_head(slot, bytes, base, version).await,
            Self::LocalStorage(s) => s.write_if_head(slot, bytes, base, version).await,
            Self::Memory(s) => s.write_if_head(slot, bytes, base, version).await,
        }
    }

    async fn clear(&self, tombstone: u64) -> Result<(), SessileError> {
        match self {
            Self::IndexedDb(s) => s.clear(tombstone).await,
            Self::LocalStorage(s) => s.clear(tombstone).await,
            Self::Memory(s) => s.clear(tombstone).await,
        }
    }
}

/// A backend that could not be used, and why.
pub(crate) struct Degradation {
    pub(crate) kind: BackendKind,
    pub(crate) error: SessileError,
}

/// Opens `wanted` (only that one: a page that asked for IndexedDB gets an
/// error, not a silent fallback), or with `None` ("auto") the first of
/// IndexedDB, localStorage, memory that works, with the reasons the others
/// were passed over.
pub(crate) async fn open(
    namespace: &str,
    wanted: Option<BackendKind>,
) -> Result<(Backend, Vec<Degradation>), SessileError> {
    let chain: &[BackendKind] = match wanted {
        Some(BackendKind::IndexedDb) => &[BackendKind::IndexedDb],
        Some(BackendKind::LocalStorage) => &[BackendKind::LocalStorage],
        Some(BackendKind::Memory) => &[BackendKind::Memory],
        None => &[
            BackendKind::IndexedDb,
            BackendKind::LocalStorage,
            BackendKind::Memory,
        ],
    };
    let mut passed_over = Vec::new();
    for &kind in chain {
        let opened = match kind {
            BackendKind::IndexedDb => indexeddb::IdbSlots::open(namespace)
                .await
                .map(Backend::IndexedDb),
            BackendKind::LocalStorage => {
                local::LocalSlots::open(namespace).map(Backend::LocalStorage)
            }
            BackendKind::Memory => Ok(Backend::Memory(memory::MemorySlots::open(namespace))),
        };
        match opened {
            Ok(backend) => return Ok((backend, passed_over)),
            Err(error) if wanted.is_none() => passed_over.push(Degradation { kind, error }),
            Err(error) => return Err(error),
        }
    }
    // Unreachable in practice: memory always opens.
    Err(SessileError::StorageUnavailable {
        reason: "no storage backend could be opened".into(),
    })
}

/// The key of `slot` under `namespace` (localStorage and memory).
pub(crate) fn slot_key(namespace: &str, slot: SlotId) -> String {
    format!("{namespace}:{}", slot.name())
}
