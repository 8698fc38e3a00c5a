//! Where a synced session keeps this client's link record between loads:
//! the store `<name>:link:<client>` on the session's backend (the one the
//! page named; IndexedDB for `auto`), as the TypeScript client kept it
//! (one snapshot envelope per slot, the newer valid one restored, writes
//! alternating: `core::session::link::stored`), sealed with the
//! session's key when it has one. The store driver's backends do the IO;
//! nothing is decided here.

use std::cell::RefCell;
use std::rc::Rc;

use web_sys::CryptoKey;

use super::super::store::backend::Backend;
use crate::core::error::SessileError;
use crate::core::session::link::stored::{store_name, RecordSlots, Restored};
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{BackendKind, Head, Stored, WriteResult};
use crate::core::slots::SlotRead;
use crate::web::crypt;
use crate::web::store::page::now;

/// One client's record store, open.
pub(crate) struct Records {
    backend: Backend,
    /// The session's key, which seals the record (`rotateKey` replaces it).
    key: RefCell<Option<CryptoKey>>,
    kind: BackendKind,
    /// The largest record stored (`record_limit` of the state limit).
    limit: usize,
    slots: RefCell<RecordSlots>,
    /// The head's version as last read or written (the base of the next
    /// compare-and-set).
    head: RefCell<u64>,
}

fn slot_read(stored: &Stored) -> SlotRead<'_> {
    match stored {
        Stored::Missing => SlotRead::Missing,
        Stored::Bytes(bytes) => SlotRead::Bytes(bytes),
        Stored::Failed(e) => SlotRead::Failed(e.clone()),
    }
}

impl Records {
    /// Opens the record store of `client` in namespace `name` on `kind`.
    pub(crate) async fn open(
        name: &str,
        client: &str,
        kind: BackendKind,
        limit: usize,
        key: Option<CryptoKey>,
    ) -> Result<Rc<Records>, SessileError> {
        let layout = Layout::new(&store_name(name, client));
        let backend = Backend::open(kind, &layout).await?;
        Ok(Rc::new(Records {
            backend,
            key: RefCell::new(key),
            kind,
            limit,
            slots: RefCell::new(RecordSlots::up_to(limit)),
            head: RefCell::new(0),
        }))
    }

    /// Seals the record with `key` from the next save on.
    pub(crate) fn set_key(&self, key: CryptoKey) {
        *self.key.borrow_mut() = Some(key);
    }

    /// Where the record is kept.
    pub(crate) fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The newest valid copy's text, and why stored bytes were passed over.
    pub(crate) async fn load(&self) -> Result<Restored, SessileError> {
        let read = self.backend.read().await?;
        *self.head.borrow_mut() = read.head.version;
        let key = self.key.borrow().clone();
        let a = crypt::open_with(key.as_ref(), read.a).await;
        let b = crypt::open_with(key.as_ref(), read.b).await;
        let restored =
            self.slots
                .borrow_mut()
                .restore(slot_read(&a), slot_read(&b), read.head.version);
        Ok(restored)
    }

    /// Stores `text` as the newest copy; resolves once it is stored.
    pub(crate) async fn save(&self, text: &str) -> Result<(), SessileError> {
        // A head moved under this client (a tab that went by its id before)
        // is taken as the new base once.
        for _ in 0..2 {
            let write = self.slots.borrow().plan(text, now())?;
            let base = *self.head.borrow();
            let head = Head::at(write.version.max(base + 1));
            let key = self.key.borrow().clone();
            let bytes = crypt::seal(key.as_ref(), write.bytes.clone()).await?;
            match self
                .backend
                .write_if_head(write.slot, base, &head, &bytes)
                .await
            {
                WriteResult::Stored => {
                    *self.head.borrow_mut() = head.version;
                    self.slots.borrow_mut().written(&write);
                    return Ok(());
                }
                WriteResult::Refused { head } => *self.head.borrow_mut() = head,
                WriteResult::Failed { error, .. } => return Err(error),
            }
        }
        Err(SessileError::StorageUnavailable {
            reason: "the link record's head kept moving".into(),
        })
    }

    /// Removes the record (the session ended).
    pub(crate) async fn remove(&self) -> Result<(), SessileError> {
        let base = *self.head.borrow();
        let tombstone = self.backend.clear(base).await?;
        *self.head.borrow_mut() = tombstone;
        *self.slots.borrow_mut() = RecordSlots::up_to(self.limit);
        Ok(())
    }
}
