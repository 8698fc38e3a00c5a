//! What goes in and out of the session engine: the commands a driver runs
//! (storage, the link record, small remembered values, the pending
//! register, calls to the server's HTTP API), the events a page receives,
//! the page's requests and how they end, and what `diagnostics()` reports.
//! Plain data; the machine is in the other files of this folder.

use serde_json::Value;

use crate::core::error::SessileError;
use crate::core::protocol::OpId;
use crate::core::session::link::{ConflictWinner, Diagnostics, LossReason, Transport};
use crate::core::session::store::{StorageCommand, StoreDiagnostics, StoreEvent};

/// A session on the server: its id (32 hex digits) and its secret token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSession {
    /// The session id.
    pub id: String,
    /// The token, sent in `hello` and as `Authorization: Bearer`.
    pub token: String,
}

/// Where a remembered value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// localStorage: every tab of the origin, across reloads.
    Local,
    /// sessionStorage: this tab only, across its reloads.
    Tab,
}

/// Work for the driver, in order. Only [`SessionCommand::Store`],
/// [`SessionCommand::WriteRecord`], [`SessionCommand::WriteRegister`] and
/// [`SessionCommand::Call`] have an answer (the `handle_*` method each
/// names); the others are fire-and-forget.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionCommand {
    /// Storage work of the session's store, with the contract of
    /// [`StoreEngine`](crate::core::session::store::StoreEngine): answer
    /// through the engine's `handle_backend_opened`, `handle_read`,
    /// `handle_write_result` or `handle_cleared`, one at a time, in order.
    Store(StorageCommand),
    /// Store this client's link record (JSON text) under `key` (the store
    /// `<name>:link:<client>`) crash-safely, replacing the one there; answer
    /// with `handle_record_stored`. Frames wait for the answer when the
    /// record holds new ops.
    WriteRecord {
        /// Where (without the `sessile:` prefix).
        key: String,
        /// `{"session": id, "record": {...}}`.
        text: String,
    },
    /// Remove the link record under `key`. No answer.
    RemoveRecord {
        /// Where (without the `sessile:` prefix).
        key: String,
    },
    /// Write `value` under `key` (without the `sessile:` prefix), or remove
    /// the key for `None`. No answer; a failure is ignored (the value only
    /// saves a round trip after a reload).
    Remember {
        /// localStorage or sessionStorage.
        scope: Scope,
        /// The key: `<name>:server`, `<name>:lifecycle`, `<name>:fallback`.
        key: String,
        /// The JSON text, or `None` to remove it.
        value: Option<String>,
    },
    /// Write this client's entry of the pending register in localStorage
    /// (`<name>:pending:<client>`), or remove it for `None`; answer with
    /// `handle_register_written`. The other tabs hear of it through the
    /// `storage` event and hand it to their engine's
    /// `handle_register_entry`.
    WriteRegister {
        /// The key (without the `sessile:` prefix).
        key: String,
        /// The entry's JSON text, or `None` to remove it.
        value: Option<String>,
    },
    /// A request to the server's HTTP API; answer with `handle_call_result`
    /// (a failure at the network level is the retryable
    /// `SERVER_UNREACHABLE`).
    Call {
        /// The call's id, for the answer.
        id: CallId,
        /// What to ask.
        call: ServerCall,
    },
    /// This tab no longer speaks for its client id: release its Web Lock;
    /// with `forget` (the session ended and its outbox is cleared) also
    /// remove the id from the namespace's list of clients. No answer.
    ReleaseClient {
        /// Remove the id from `<name>:clients`.
        forget: bool,
    },
}

/// A call of the server's HTTP API (docs/PROTOCOL.md, "HTTP API").
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerCall {
    /// `POST /v1/sessions` with this body (`{state, flow?, ttlSeconds?}`);
    /// the answer is `{id, token, status, expiresAt, ...}`.
    Create {
        /// The request body.
        body: Value,
    },
    /// `POST /v1/sessions/{id}/extend` with `{seconds}`; the answer is
    /// `{expiresAt}`.
    Extend {
        /// The session (its id in the path, its token as the bearer).
        session: ServerSession,
        /// Seconds to add.
        seconds: u64,
    },
    /// `POST /v1/sessions/{id}/validate`; the answer is `{valid, code?,
    /// expiresAt?}`.
    Validate {
        /// The session.
        session: ServerSession,
    },
    /// `DELETE /v1/sessions/{id}`; the answer is `{status}`.
    End {
        /// The session.
        session: ServerSession,
    },
}

/// Names one [`ServerCall`], for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A page's `flush`, `extend`, `validate`, `end`, `authenticate` or
/// `close`, for its [`Completion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a call or a request failed: a stable code (a [`SessileError`]'s, a
/// server's, or `SERVER_UNREACHABLE` from the driver), a message a
/// developer can act on, and whether the same call may work later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable code.
    pub code: String,
    /// What happened.
    pub message: String,
    /// The same call may succeed later without any change.
    pub retryable: bool,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: &str, message: &str, retryable: bool) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            retryable,
        }
    }
}

impl std::fmt::Display for Failure {
    /// `CODE: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)?;
        f.write_str(": ")?;
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<&SessileError> for Failure {
    fn from(e: &SessileError) -> Self {
        Failure::new(
            e.code(),
            &crate::core::error_text::message(e),
            e.is_retryable(),
        )
    }
}

impl From<SessileError> for Failure {
    fn from(e: SessileError) -> Self {
        Failure::from(&e)
    }
}

/// What `validate` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// Usable until `expires_at` (ms since the epoch).
    Valid {
        /// The expiry.
        expires_at: u64,
    },
    /// Not usable: `SESSION_EXPIRED`, `SESSION_CLOSED`, `INVALID_TOKEN`,
    /// `SESSION_NOT_FOUND`.
    Invalid {
        /// Why.
        code: String,
    },
}

/// What a finished request gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `flush`, `end`, `authenticate` or `close` is done.
    Done,
    /// `extend` moved the expiry here (ms since the epoch).
    ExpiresAt(u64),
    /// What `validate` found.
    Validity(Validity),
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The request.
    pub id: RequestId,
    /// Its result.
    pub result: Result<Outcome, Failure>,
}

/// Something the page is told (the `type` of the JavaScript event is in
/// each variant's doc).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An event of the store: `state_restored`, `storage_degraded`,
    /// `error_occurred` (restore, write, sync), `conflict` between tabs
    /// and `session_updated` with origin `tab`.
    Store(StoreEvent),
    /// `session_created`: the server created the session.
    SessionCreated {
        /// Its id.
        id: String,
    },
    /// `session_expired`: the TTL passed (here or on the server).
    SessionExpired {
        /// The expiry, ms since the epoch.
        expires_at: u64,
        /// The flow's expired status.
        status: String,
    },
    /// `session_terminated`: the session reached a closed status.
    SessionTerminated {
        /// The status it was ended with (or the page's reason).
        reason: String,
        /// The status now.
        status: String,
    },
    /// `status_changed`: the page or the server moved the status.
    StatusChanged {
        /// The new status.
        status: String,
    },
    /// `session_updated` with origin `server`: the server's copy (and this
    /// tab's unanswered changes on top) replaced the page's state.
    SessionUpdated {
        /// The page's state version now.
        version: u64,
        /// The server version it holds.
        server_version: u64,
    },
    /// `connection_established`: the first connection is up and synced.
    ConnectionEstablished {
        /// The transport in use.
        transport: Transport,
    },
    /// `connection_lost`: a connection ended; the link retries.
    ConnectionLost {
        /// Why.
        reason: LossReason,
    },
    /// `connection_restored`: connected and synced again.
    ConnectionRestored {
        /// The transport in use.
        transport: Transport,
    },
    /// `state_synchronized`: the server confirmed up to `version`.
    StateSynchronized {
        /// The server version held.
        version: u64,
        /// How many of this tab's changes it confirmed.
        confirmed: usize,
    },
    /// `auth_required`: the session's token or id was refused; call
    /// `authenticate`.
    AuthRequired {
        /// `INVALID_TOKEN` or `SESSION_NOT_FOUND`.
        code: String,
    },
    /// `auth_success`: the first `welcome` of a server session.
    AuthSuccess {
        /// The session id.
        id: String,
    },
    /// `auth_failed`: the server refused the token or the id.
    AuthFailed {
        /// `INVALID_TOKEN` or `SESSION_NOT_FOUND`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// `conflict`: an op of this tab was refused and the server's value won.
    Conflict {
        /// The op (its sequence is the page's `op`).
        op: OpId,
        /// Its patch.
        local: Value,
        /// The server's state that won.
        server: Value,
        /// Whose value the page now holds.
        winner: ConflictWinner,
    },
    /// `error_occurred` during `sync`: something the page did not call
    /// directly failed; `terminal` ones stopped retries.
    ErrorOccurred {
        /// Stable code.
        code: String,
        /// What happened.
        message: String,
        /// Retries stopped.
        terminal: bool,
    },
}

impl SessionEvent {
    /// An `error_occurred` from a [`Failure`].
    pub(super) fn error(failure: &Failure, terminal: bool) -> Self {
        SessionEvent::ErrorOccurred {
            code: failure.code.clone(),
            message: failure.message.clone(),
            terminal,
        }
    }
}

/// Where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnginePhase {
    /// The store is opening (restore, migrations): the page waits.
    Opening,
    /// Open: the page's calls are taken.
    Ready,
    /// The store could not open (its error); nothing was written.
    Failed(SessileError),
    /// `close` or `end` finished.
    Closed,
}

/// What `diagnostics()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDiagnostics {
    /// The store's figures.
    pub store: StoreDiagnostics,
    /// The server session id, once known.
    pub session_id: Option<String>,
    /// The lifecycle status.
    pub status: String,
    /// The expiry, ms since the epoch.
    pub expires_at: u64,
    /// The link's figures, while there is a link.
    pub link: Option<Diagnostics>,
    /// This tab's changes the server has not answered.
    pub unanswered: usize,
}
