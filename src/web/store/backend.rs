//! The three places a store keeps its slots, behind one type: open, read
//! slots `a`, `b` and the head, compare-and-set write of one slot with its
//! head, clear leaving a tombstone head. Also what a thrown storage error
//! becomes: `QUOTA_EXCEEDED` (with the size of the write) or
//! `STORAGE_UNAVAILABLE`.

use wasm_bindgen::JsValue;

use super::idb::IdbBackend;
use super::local::LocalBackend;
use super::memory::MemoryBackend;
use super::page::{js_message, js_name};
use crate::core::error::SessileError;
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{BackendKind, Head, Stored, WriteResult};
use crate::core::slots::SlotId;

/// Slots `a` and `b` and the head, as read.
pub(crate) struct SlotsRead {
    pub a: Stored,
    pub b: Stored,
    pub head: Head,
}

/// An open backend.
pub(crate) enum Backend {
    IndexedDb(IdbBackend),
    LocalStorage(LocalBackend),
    Memory(MemoryBackend),
}

impl Backend {
    /// Opens `kind` for namespace `layout`: it must answer (a read, a probe
    /// write) before it is taken.
    pub(crate) async fn open(kind: BackendKind, layout: &Layout) -> Result<Self, SessileError> {
        Ok(match kind {
            BackendKind::IndexedDb => Self::IndexedDb(IdbBackend::open(layout).await?),
            BackendKind::LocalStorage => Self::LocalStorage(LocalBackend::open(layout)?),
            BackendKind::Memory => Self::Memory(MemoryBackend::open(layout)),
        })
    }

    /// Reads both slots and the head.
    pub(crate) async fn read(&self) -> Result<SlotsRead, SessileError> {
        match self {
            Self::IndexedDb(b) => b.read().await,
            Self::LocalStorage(b) => b.read(),
            Self::Memory(b) => Ok(b.read()),
        }
    }

    /// Stores `bytes` in `slot` and `head` as the head, if the stored head
    /// is still `base`; nothing is written otherwise, or on failure.
    pub(crate) async fn write_if_head(
        &self,
        slot: SlotId,
        base: u64,
        head: &Head,
        bytes: &[u8],
    ) -> WriteResult {
        match self {
            Self::IndexedDb(b) => b.write_if_head(slot, base, head, bytes).await,
            Self::LocalStorage(b) => b.write_if_head(slot, base, head, bytes),
            Self::Memory(b) => b.write_if_head(slot, base, head, bytes),
        }
    }

    /// Removes both slots and leaves the head `max(at_least, stored + 1)`;
    /// returns that tombstone.
    pub(crate) async fn clear(&self, at_least: u64) -> Result<u64, SessileError> {
        match self {
            Self::IndexedDb(b) => b.clear(at_least).await,
            Self::LocalStorage(b) => b.clear(at_least),
            Self::Memory(b) => Ok(b.clear(at_least)),
        }
    }
}

/// A thrown storage error: quota errors (under every browser's name) are
/// `QUOTA_EXCEEDED` with the size of the write, the rest
/// `STORAGE_UNAVAILABLE` naming what the browser said.
pub(crate) fn storage_error(thrown: &JsValue, bytes: usize) -> SessileError {
    named_error(&js_name(thrown), &js_message(thrown), bytes)
}

/// [`storage_error`] from a name and a message.
pub(crate) fn named_error(name: &str, message: &str, bytes: usize) -> SessileError {
    // Firefox once said NS_ERROR_DOM_QUOTA_REACHED; Firefox and Safari wrap
    // IndexedDB quota failures in an AbortError that mentions the quota.
    let quota = name == "QuotaExceededError"
        || name == "NS_ERROR_DOM_QUOTA_REACHED"
        || (name == "AbortError" && message.to_ascii_lowercase().contains("quota"));
    if quota {
        return SessileError::QuotaExceeded {
            bytes: bytes as u64,
        };
    }
    let reason = if name.is_empty() {
        message.into()
    } else {
        [name, ": ", message].concat()
    };
    SessileError::StorageUnavailable { reason }
}

/// `STORAGE_UNAVAILABLE` with `reason`.
pub(crate) fn unavailable(reason: &str) -> SessileError {
    SessileError::StorageUnavailable {
        reason: reason.into(),
    }
}
