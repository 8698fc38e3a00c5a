//! What goes in and out of the store engine: the storage commands a driver
//! executes and the results it hands back, the events a page receives, the
//! messages tabs exchange, the migration requests, and the op ids the store
//! shares with the link (client id, sequence number).

use serde_json::Value;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

/// A client (one tab of one page): 128 random bits as 32 lowercase hex
/// digits, as `protocol::Hello::client`. The driver draws it (the engine
/// never draws random numbers) and keeps it in sessionStorage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub String);

/// The sequence number of one local change of a client: 1, 2, ... It is the
/// `seq` of the op the link sends for that change (`protocol::OpId`).
pub type OpSeq = u64;

/// Which backend holds the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// IndexedDB: binary slots, compare-and-set in one transaction.
    IndexedDb,
    /// localStorage: base64 slots, compare-and-set in one task.
    LocalStorage,
    /// Memory: lost on reload; the last resort of `auto`.
    Memory,
}

impl BackendKind {
    /// The name pages see (`indexeddb`, `localstorage`, `memory`).
    pub fn name(self) -> &'static str {
        match self {
            Self::IndexedDb => "indexeddb",
            Self::LocalStorage => "localstorage",
            Self::Memory => "memory",
        }
    }

    /// The page's `storage` option: `Some(None)` for `auto` (the chain),
    /// `Some(Some(kind))` for one backend, `None` for an unknown name.
    pub fn from_option(name: &str) -> Option<Option<BackendKind>> {
        match name {
            "auto" => Some(None),
            "indexeddb" => Some(Some(Self::IndexedDb)),
            "localstorage" => Some(Some(Self::LocalStorage)),
            "memory" => Some(Some(Self::Memory)),
            _ => None,
        }
    }

    /// What the `storage` option accepts, for its error message.
    pub const OPTION_NAMES: &'static str =
        "must be \"auto\", \"indexeddb\", \"localstorage\" or \"memory\"";

    /// The `auto` chain: IndexedDB, then localStorage, then memory.
    pub const AUTO: [BackendKind; 3] = [Self::IndexedDb, Self::LocalStorage, Self::Memory];
}

/// The compare-and-set head: the version of the last stored write (0: none)
/// and, per client, the last of its changes the stored state includes. The
/// driver stores it with the slot in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Version of the last stored write, or the tombstone of a clear.
    pub version: u64,
    /// `(client, seq)`: the stored state includes that client's changes up
    /// to `seq`. At most [`MAX_INCLUDES`](super::MAX_INCLUDES) entries.
    pub includes: Vec<(ClientId, OpSeq)>,
}

impl Head {
    /// A head with a version and nothing known about the changes it includes
    /// (what a store written by an earlier build holds).
    pub fn at(version: u64) -> Self {
        Self {
            version,
            includes: Vec::new(),
        }
    }
}

/// What reading one stored value gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Nothing is stored there.
    Missing,
    /// These bytes are stored there.
    Bytes(Vec<u8>),
    /// The read failed, or the value is not bytes (text that is not base64);
    /// a retryable error means the value may be fine and just unreachable.
    Failed(SessileError),
}

/// A rescue copy a tab left in localStorage when the page went away with a
/// write pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescueCopy {
    /// Its key (without the `sessile:` prefix), to remove it.
    pub key: String,
    /// The stored head version the rescued state was based on.
    pub base: u64,
    /// The snapshot bytes, or why they could not be read (a missing base is
    /// `CORRUPT_PAYLOAD`).
    pub bytes: Stored,
}

/// What a [`StorageCommand::Read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRead {
    /// Slot `a`.
    pub a: Stored,
    /// Slot `b`.
    pub b: Stored,
    /// The compare-and-set head.
    pub head: Head,
    /// Every tab's rescue copy (only when asked for).
    pub rescues: Vec<RescueCopy>,
    /// The eviction marker: the last version stored, from localStorage or
    /// the cookie (only when asked for).
    pub marker: Option<String>,
}

/// Work for the driver. Each command that has a result is answered by the
/// `handle_*` method named in its doc, one at a time, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageCommand {
    /// Open this backend; answer with `handle_backend_opened`.
    Open(BackendKind),
    /// Read slots `a`, `b` and the head; with `rescues`, also every rescue
    /// copy and the eviction marker. Answer with `handle_read`.
    Read {
        /// Also read the rescue copies and the eviction marker.
        rescues: bool,
    },
    /// Under the namespace's lock (Web Locks where present): if the stored
    /// head's version is still `base`, store `bytes` in `slot` and `head` as
    /// the new head, in one transaction. Answer with `handle_write_result`:
    /// stored, refused (with the head found) or failed.
    WriteSlot {
        /// `a` or `b`, never the slot holding the newest valid copy.
        slot: SlotId,
        /// The head version this write is based on.
        base: u64,
        /// The head to store with it.
        head: Head,
        /// The encoded snapshot.
        bytes: Vec<u8>,
    },
    /// Now, synchronously (the page is going away): store this tab's rescue
    /// copy `<base>:<base64 bytes>` in localStorage under `key`. No answer;
    /// a failure is ignored.
    WriteRescue {
        /// `<ns>:rescue:<client>`.
        key: String,
        /// The head version the rescued state is based on.
        base: u64,
        /// The encoded snapshot.
        bytes: Vec<u8>,
    },
    /// Remove the rescue copy under `key`. No answer.
    ForgetRescue {
        /// The key.
        key: String,
    },
    /// Remove every tab's rescue copy of the namespace. No answer.
    ForgetAllRescues,
    /// Set the eviction marker (localStorage and cookie) to `version`. No answer.
    WriteMarker {
        /// The version just stored.
        version: u64,
    },
    /// Remove the eviction marker (localStorage and cookie). No answer.
    ClearMarker,
    /// Under the namespace's lock: remove both slots and set the head to
    /// the tombstone `max(at_least, stored head + 1)`, above every version
    /// stored so far (another tab may have stored one this tab has not
    /// heard of). Answer with `handle_cleared(Ok(tombstone))`.
    Clear {
        /// The lowest tombstone: above every version this tab knows.
        at_least: u64,
    },
}

/// How a [`StorageCommand::WriteSlot`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The bytes and the head are stored.
    Stored,
    /// The stored head was not the base: nothing was written.
    Refused {
        /// The head found.
        head: u64,
    },
    /// The write failed (`QUOTA_EXCEEDED`, `STORAGE_UNAVAILABLE`); nothing
    /// was written.
    Failed {
        /// Why.
        error: SessileError,
        /// The browser had closed the connection (the driver reopened it):
        /// the engine tries the same write once more.
        connection_closed: bool,
    },
}

/// A message to (or from) the other tabs of the namespace (BroadcastChannel
/// `sessile:<ns>`), sent after each stored write or clear.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TabMessage {
    /// `version` is stored, with this state.
    Stored {
        /// The tab that stored it.
        from: ClientId,
        /// The stored head version.
        version: u64,
        /// The slot it went to.
        slot: SlotId,
        /// The slot's generation.
        generation: u16,
        /// The schema version of `state`.
        schema: u32,
        /// The state.
        state: Value,
        /// The changes the state includes (the head's `includes`).
        includes: Vec<(ClientId, OpSeq)>,
    },
    /// The namespace was cleared, leaving head `version`.
    Cleared {
        /// The tab that cleared it.
        from: ClientId,
        /// The tombstone head.
        version: u64,
    },
}

/// The page's migration `migrate[from]` is needed on `state` (schema
/// `from`); answer with `handle_migrated(from, result)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRequest {
    /// The schema version the state has; the migration makes it `from + 1`.
    pub from: u32,
    /// The state to migrate.
    pub state: Value,
}

/// Where a restored state came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreOutcome {
    /// A stored copy.
    Restored {
        /// Slot `a`, `b`, or a rescue copy.
        from: SlotId,
        /// The version the page now holds.
        version: u64,
        /// The schema version the copy was stored with.
        schema_version: u32,
        /// Whether migrations ran (the migrated state is written back).
        migrated: bool,
        /// Copies that could not be used, and why.
        skipped: Vec<(SlotId, SessileError)>,
    },
    /// Nothing was stored: a new session.
    Fresh,
    /// Nothing is stored but the marker says something was: the browser
    /// evicted it or site data was cleared.
    Evicted {
        /// The last version stored, as the marker holds it.
        last_version: String,
    },
    /// Something is stored but no copy is valid; the page starts from its
    /// initial state and the next write goes over the bad copies.
    Unreadable {
        /// Why each copy was refused.
        skipped: Vec<(SlotId, SessileError)>,
    },
}

/// When an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum During {
    /// Restoring at open.
    Restore,
    /// Writing a change.
    Write,
    /// Taking another tab's state.
    Sync,
}

/// Which value a conflict kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// The stored (or other tab's) value replaced this tab's.
    Remote,
    /// This tab's value is written over the stored one.
    Local,
}

/// Something the page is told.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// The store is open: where its state came from.
    StateRestored(RestoreOutcome),
    /// A backend of the `auto` chain could not be used; `using` took over.
    StorageDegraded {
        /// The backend passed over.
        backend: BackendKind,
        /// The backend in use.
        using: BackendKind,
        /// Why it was passed over.
        error: SessileError,
    },
    /// Something failed that the page did not call directly (a timed write,
    /// a restore, a state from another tab that cannot be taken).
    ErrorOccurred {
        /// What failed.
        error: SessileError,
        /// When.
        during: During,
    },
    /// Two values met and one was kept.
    Conflict {
        /// This tab's value.
        local: Value,
        /// The other value (`null` when it could not be read).
        remote: Value,
        /// Which was kept.
        winner: Winner,
        /// This tab's version.
        local_version: u64,
        /// The other value's version.
        remote_version: u64,
    },
    /// Another tab changed (or cleared) the state and this tab took it.
    SessionUpdated {
        /// The version now held.
        version: u64,
        /// The namespace was cleared.
        cleared: bool,
        /// How many of this tab's own changes were put back on top.
        rebased: usize,
    },
}

/// What this engine last stored (or, after open, the slot it restored from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWrite {
    /// The slot.
    pub slot: SlotId,
    /// Its generation.
    pub generation: u16,
    /// The snapshot's CRC-32.
    pub checksum: u32,
    /// Size of the snapshot, header included.
    pub stored_bytes: usize,
    /// Whether the payload is deflated.
    pub compressed: bool,
    /// When it was written (ms since the epoch).
    pub at: u64,
}

/// What `diagnostics()` reports of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreDiagnostics {
    /// The backend in use (`None` while opening).
    pub backend: Option<BackendKind>,
    /// Backends passed over, and why.
    pub degraded: Vec<(BackendKind, SessileError)>,
    /// This tab's state version.
    pub version: u64,
    /// The stored head this tab knows of.
    pub stored_version: u64,
    /// Changes not yet handed to a write.
    pub unsaved: bool,
    /// A write is under way.
    pub writing: bool,
    /// Size of the state's JSON, in bytes.
    pub raw_bytes: usize,
    /// See [`LastWrite`].
    pub last_write: Option<LastWrite>,
    /// The last write's error, until a write succeeds.
    pub last_error: Option<SessileError>,
    /// Why writing stopped (a newer schema is stored), if it did.
    pub blocked: Option<SessileError>,
    /// This tab's changes not yet both stored and acknowledged.
    pub pending_changes: usize,
}

/// A `flush`, `clear` or `close` the driver waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The request.
    pub id: RequestId,
    /// Its result.
    pub result: Result<(), SessileError>,
}

/// Where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Opening a backend, reading or migrating; the page waits.
    Opening,
    /// Open: `state()` is the page's state.
    Ready,
    /// Opening failed (`STORAGE_UNAVAILABLE` for a backend named by the
    /// page, `SCHEMA_TOO_NEW`, `MIGRATION_FAILED`, a failed read); nothing
    /// was written.
    Failed(SessileError),
    /// `close()` finished.
    Closed,
}
