//! Runs the store engine's storage commands in the browser. The ones
//! without an answer (rescue copies, marker) are synchronous localStorage
//! and cookie work; the others (open, read, slot write, clear) are async
//! and give an [`Answer`] the engine (the store's, or the session's that
//! composes it) takes with its `handle_*`. Slot writes
//! and clears run under the namespace's Web Lock. With the session's key
//! (`crate::web::crypt`) what is written is sealed and what is read opened,
//! and a slot write first reads the copy it replaces, under the lock: one
//! the key does not open (another tab's key) is not written over
//! (`may_replace`), unless the page dropped it (`stored_version`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use web_sys::CryptoKey;

use super::backend::{unavailable, Backend};
use super::local;
use super::locks::exclusive;
use super::page::{read_marker_cookie, write_marker_cookie};
use crate::core::error::SessileError;
use crate::core::session::engine::SessionEngine;
use crate::core::session::store::layout::{version_text, Layout};
use crate::core::session::store::{
    may_replace, StorageCommand, StoreEngine, Stored, StoredRead, WriteResult,
};
use crate::core::slots::SlotId;
use crate::web::crypt;

/// Whether `command` is answered (and so runs asynchronously, one at a time).
pub(crate) fn is_async(command: &StorageCommand) -> bool {
    matches!(
        command,
        StorageCommand::Open(_)
            | StorageCommand::Read { .. }
            | StorageCommand::WriteSlot { .. }
            | StorageCommand::Clear { .. }
    )
}

/// What an answered command gave.
pub(crate) enum Answer {
    Opened(Result<Backend, SessileError>),
    Read(Result<StoredRead, SessileError>),
    Written(WriteResult),
    Cleared(Result<u64, SessileError>),
}

/// An engine that takes the store's storage answers: the store engine, or
/// the session engine composing one.
pub(crate) trait StorageInputs {
    fn backend_opened(&mut self, result: Result<(), SessileError>, now: u64);
    fn read(&mut self, read: Result<StoredRead, SessileError>, now: u64);
    fn written(&mut self, result: WriteResult, now: u64);
    fn cleared(&mut self, result: Result<u64, SessileError>, now: u64);
}

impl StorageInputs for StoreEngine {
    fn backend_opened(&mut self, result: Result<(), SessileError>, now: u64) {
        self.handle_backend_opened(result, now);
    }
    fn read(&mut self, read: Result<StoredRead, SessileError>, now: u64) {
        self.handle_read(read, now);
    }
    fn written(&mut self, result: WriteResult, now: u64) {
        self.handle_write_result(result, now);
    }
    fn cleared(&mut self, result: Result<u64, SessileError>, now: u64) {
        self.handle_cleared(result, now);
    }
}

impl StorageInputs for SessionEngine {
    fn backend_opened(&mut self, result: Result<(), SessileError>, now: u64) {
        self.handle_backend_opened(result, now);
    }
    fn read(&mut self, read: Result<StoredRead, SessileError>, now: u64) {
        self.handle_read(read, now);
    }
    fn written(&mut self, result: WriteResult, now: u64) {
        self.handle_write_result(result, now);
    }
    fn cleared(&mut self, result: Result<u64, SessileError>, now: u64) {
        self.handle_cleared(result, now);
    }
}

impl Answer {
    /// Hands the answer to the engine; an opened backend goes to `backend`.
    pub(crate) fn deliver(
        self,
        engine: &mut impl StorageInputs,
        backend: &mut Option<Rc<Backend>>,
        now: u64,
    ) {
        match self {
            Self::Opened(Ok(opened)) => {
                *backend = Some(Rc::new(opened));
                engine.backend_opened(Ok(()), now);
            }
            Self::Opened(Err(error)) => engine.backend_opened(Err(error), now),
            Self::Read(read) => engine.read(read, now),
            Self::Written(result) => engine.written(result, now),
            Self::Cleared(result) => engine.cleared(result, now),
        }
    }
}

fn no_backend() -> SessileError {
    unavailable("no storage backend is open")
}

/// An answered command under way.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Answer>>>;

/// Starts `command`: one without an answer runs now (`None`); an answered
/// one is returned as a future to run (on `backend`, the one open). With
/// `cipher` (the session's key) copies are sealed and opened, and a slot
/// write replaces no copy the key does not open above version
/// `replaces_up_to` (`may_replace`).
pub(crate) fn start(
    command: StorageCommand,
    layout: &Layout,
    backend: Option<Rc<Backend>>,
    cipher: Option<&CryptoKey>,
    replaces_up_to: u64,
) -> Option<Pending> {
    let layout = layout.clone();
    let cipher = cipher.cloned();
    let pending: Pending = match command {
        StorageCommand::WriteRescue { key, base, bytes } => {
            match cipher {
                None => local::write_rescue(&key, base, &bytes),
                // WebCrypto answers later: sealed as soon as it can, never
                // written in the clear (docs/STORAGE.md, "Encryption").
                Some(cipher) => wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(sealed) = crypt::seal_with(&cipher, &bytes).await {
                        local::write_rescue(&key, base, &sealed);
                    }
                }),
            }
            return None;
        }
        StorageCommand::ForgetRescue { key } => {
            local::forget(&key);
            return None;
        }
        StorageCommand::ForgetAllRescues => {
            local::forget_rescues(&layout);
            return None;
        }
        StorageCommand::WriteMarker { version } => {
            local::write_marker(&layout, version);
            write_marker_cookie(layout.name(), Some(&version_text(version)));
            return None;
        }
        StorageCommand::ClearMarker => {
            local::forget(&layout.marker_key());
            write_marker_cookie(layout.name(), None);
            return None;
        }
        StorageCommand::Open(kind) => {
            Box::pin(async move { Answer::Opened(Backend::open(kind, &layout).await) })
        }
        StorageCommand::Read { rescues } => Box::pin(read(layout, backend, rescues, cipher)),
        StorageCommand::WriteSlot {
            slot,
            base,
            head,
            bytes,
        } => Box::pin(async move {
            let Some(backend) = backend else {
                return Answer::Written(WriteResult::Failed {
                    error: no_backend(),
                    connection_closed: false,
                });
            };
            let bytes = match crypt::seal(cipher.as_ref(), bytes).await {
                Ok(bytes) => bytes,
                Err(error) => {
                    return Answer::Written(WriteResult::Failed {
                        error,
                        connection_closed: false,
                    })
                }
            };
            let work = move || async move {
                if let Some(key) = &cipher {
                    if let Err(error) = replaceable(&backend, slot, key, replaces_up_to).await {
                        return Ok(WriteResult::Failed {
                            error,
                            connection_closed: false,
                        });
                    }
                }
                Ok(backend.write_if_head(slot, base, &head, &bytes).await)
            };
            Answer::Written(match exclusive(&layout.shared_name(), work).await {
                Ok(result) => result,
                Err(error) => WriteResult::Failed {
                    error,
                    connection_closed: false,
                },
            })
        }),
        StorageCommand::Clear { at_least } => Box::pin(async move {
            let Some(backend) = backend else {
                return Answer::Cleared(Err(no_backend()));
            };
            let work = move || async move { backend.clear(at_least).await };
            Answer::Cleared(exclusive(&layout.shared_name(), work).await)
        }),
    };
    Some(pending)
}

/// Whether `slot` may be written over by a session holding `key`: the copy
/// there, opened with the key, is not another key's (`may_replace`). A
/// failed read leaves it to the write.
async fn replaceable(
    backend: &Backend,
    slot: SlotId,
    key: &CryptoKey,
    up_to: u64,
) -> Result<(), SessileError> {
    let Ok(read) = backend.read().await else {
        return Ok(());
    };
    let target = if slot == SlotId::B { read.b } else { read.a };
    may_replace(&crypt::open_with(Some(key), target).await, up_to)
}

/// The version stored now (the head), read under the namespace's lock as
/// a slot write's check is: the copies `discardLocal` lets this session
/// write over, and no copy another tab stores after it.
pub(crate) async fn stored_version(
    layout: &Layout,
    backend: Rc<Backend>,
) -> Result<u64, SessileError> {
    let work = move || async move { Ok(backend.read().await?.head.version) };
    exclusive(&layout.shared_name(), work).await
}

/// Slots and head, and with `rescues` every rescue copy and the eviction
/// marker (localStorage, else the cookie), opened with `cipher`.
async fn read(
    layout: Layout,
    backend: Option<Rc<Backend>>,
    rescues: bool,
    cipher: Option<CryptoKey>,
) -> Answer {
    let Some(backend) = backend else {
        return Answer::Read(Err(no_backend()));
    };
    let slots = match backend.read().await {
        Ok(slots) => slots,
        Err(error) => return Answer::Read(Err(error)),
    };
    let name = layout.name();
    let mut copies = if rescues {
        local::read_rescues(&layout)
    } else {
        Vec::new()
    };
    for copy in &mut copies {
        let stored = std::mem::replace(&mut copy.bytes, Stored::Missing);
        copy.bytes = crypt::open_with(cipher.as_ref(), stored).await;
    }
    Answer::Read(Ok(StoredRead {
        a: crypt::open_with(cipher.as_ref(), slots.a).await,
        b: crypt::open_with(cipher.as_ref(), slots.b).await,
        head: slots.head,
        rescues: copies,
        marker: rescues
            .then(|| local::read_marker(&layout).or_else(|| read_marker_cookie(name)))
            .flatten(),
    }))
}
