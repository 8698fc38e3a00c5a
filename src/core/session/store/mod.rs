//! The client store engine, sans-IO: every decision of the persistent store
//! (backend choice, restore, migration order, debounce and flush on hide,
//! compare-and-set writes, rescue copy, eviction marker, what a tab
//! announces and adopts) with no clock, no storage and no randomness.
//!
//! Inputs are the `handle_*` methods and the page's calls (`set`, `flush`,
//! `clear`, `close`), each given `now` (ms since the epoch). Outputs are
//! polled: [`poll_command`](StoreEngine::poll_command) (storage work),
//! [`poll_timeout`](StoreEngine::poll_timeout) (when to call
//! `handle_timeout`), [`poll_event`](StoreEngine::poll_event) (for the page),
//! [`poll_announcement`](StoreEngine::poll_announcement) (for the other
//! tabs), [`poll_migration`](StoreEngine::poll_migration) (the page's
//! migrations) and [`poll_completion`](StoreEngine::poll_completion) (a
//! finished `flush`, `clear` or `close`). A driver drains them all after
//! every input.
//!
//! What a driver owes the engine: it answers each command that has an
//! answer (open, read, slot write, clear) with its `handle_*`, one at a
//! time and in order; it runs [`StorageCommand::WriteRescue`] synchronously
//! (it comes first after `handle_pagehide`, while the page goes away); it
//! runs slot writes and clears under the namespace's Web Lock where there
//! is one, and stores a write's [`Head`] (version and `includes`) in the
//! same transaction as its slot; it sends every announcement on the
//! namespace's BroadcastChannel and hands every message heard to
//! `handle_tab_message`.
//!
//! A store alone keeps today's rule between tabs: the newest stored copy
//! wins and this tab's unsaved change is reported as a `conflict`. A store
//! under a synced session (`rebase`) keeps each change until it is stored and
//! acknowledged (`handle_acknowledged`), and puts the changes another tab's
//! copy lacks back on top of it instead.

pub mod base64;
mod debounce;
pub mod identity;
pub mod layout;
mod open;
mod pending;
mod restore;
mod tabs;
mod types;
pub mod wire;
mod write;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde_json::Value;

pub use self::debounce::MAX_BACKOFF_MS;
pub use self::pending::{Listed, MAX_INCLUDES, MAX_PENDING};
pub use self::restore::may_replace;
pub use self::types::*;

use self::debounce::Debouncer;
use self::open::MigrationJob;
use self::pending::Pending;
use self::write::{FlushWait, InFlight};
use crate::core::envelope::EnvelopeConfig;
use crate::core::error::SessileError;

/// Longest debounce a page may ask for, in ms.
pub const MAX_DEBOUNCE_MS: u64 = 60_000;

/// What a store is opened with.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The storage namespace: 1 to 100 bytes, no control characters.
    pub name: String,
    /// The backend the page named; `None` is `auto` (IndexedDB, then
    /// localStorage, then memory, each one passed over reported).
    pub storage: Option<BackendKind>,
    /// Delay between the last change and its write, ms (at most 60 000).
    pub debounce_ms: u64,
    /// The page's state schema version.
    pub schema_version: u32,
    /// The state when nothing valid is stored.
    pub initial: Value,
    /// Compression threshold, size limit and deflate level.
    pub envelope: EnvelopeConfig,
    /// This tab's client id (drawn by the driver, kept in sessionStorage).
    pub client: ClientId,
    /// The sequence number of this client's next change (1 for a new client;
    /// after a reload, one past the last the link used).
    pub first_seq: OpSeq,
    /// A synced session: keep this tab's changes until they are stored and
    /// acknowledged, and rebase them onto another tab's copy instead of
    /// letting that copy win.
    pub rebase: bool,
    /// A stored copy this page cannot decrypt (`KEY_REQUIRED`,
    /// `DECRYPT_FAILED`) is dropped and the store starts without it; by
    /// default the open fails with that error and nothing is overwritten.
    pub discard_local: bool,
}

impl StoreConfig {
    /// A store alone (no server) of namespace `name` for client `client`,
    /// with the defaults of `openStore`.
    pub fn new(name: &str, client: ClientId) -> Self {
        Self {
            name: name.into(),
            storage: None,
            debounce_ms: 250,
            schema_version: 1,
            initial: Value::Null,
            envelope: EnvelopeConfig::default(),
            client,
            first_seq: 1,
            rebase: false,
            discard_local: false,
        }
    }

    /// Checks the options: `INVALID_OPTIONS` naming the first bad one.
    pub fn validate(&self) -> Result<(), SessileError> {
        let bad_name = self.name.is_empty()
            || self.name.len() > 100
            || self.name.chars().any(char::is_control);
        if bad_name {
            return Err(SessileError::InvalidOptions {
                option: "name",
                reason: "must be 1 to 100 characters, none of them control characters".into(),
            });
        }
        if self.debounce_ms > MAX_DEBOUNCE_MS {
            return Err(SessileError::InvalidOptions {
                option: "debounceMs",
                reason: "must be a whole number from 0 to 60000".into(),
            });
        }
        self.envelope.validate()
    }
}

/// What the engine waits for from the driver (one answer at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Open,
    OpenRead,
    Write,
    RefusalRead,
    Clear,
}

/// The store engine of one namespace in one tab. See the module doc.
#[derive(Debug)]
pub struct StoreEngine {
    config: StoreConfig,
    initial_json: String,
    phase: Phase,
    backend: Option<BackendKind>,
    chain: Vec<BackendKind>,
    degraded: Vec<(BackendKind, SessileError)>,
    state: Value,
    json: String,
    version: u64,
    modified_at: u64,
    stored_version: u64,
    last_good: Option<(crate::core::slots::SlotId, u16)>,
    last_write: Option<LastWrite>,
    last_error: Option<SessileError>,
    blocked: Option<SessileError>,
    restored_rescue: Option<String>,
    debouncer: Debouncer,
    pending: Pending,
    awaiting: Awaiting,
    in_flight: Option<InFlight>,
    writes: u64,
    failures: u32,
    backoff_until: Option<u64>,
    write_soon: bool,
    flushes: Vec<FlushWait>,
    /// `clear()` calls not yet done: one clear completes them all.
    clears: Vec<RequestId>,
    closing: bool,
    deferred_clear: Option<u64>,
    migration: Option<MigrationJob>,
    queued_tab: Option<TabMessage>,
    requests: u64,
    commands: VecDeque<StorageCommand>,
    events: VecDeque<StoreEvent>,
    announcements: VecDeque<TabMessage>,
    migrations: VecDeque<MigrationRequest>,
    completions: VecDeque<Completion>,
}

impl StoreEngine {
    /// Starts opening: the first command opens a backend. `INVALID_OPTIONS`
    /// for a bad config, before anything is asked of storage.
    pub fn new(config: StoreConfig, now: u64) -> Result<Self, SessileError> {
        config.validate()?;
        let initial_json = to_json(&config.initial);
        let chain = match config.storage {
            Some(kind) => vec![kind],
            None => BackendKind::AUTO.to_vec(),
        };
        let mut engine = Self {
            initial_json: initial_json.clone(),
            phase: Phase::Opening,
            backend: None,
            chain,
            degraded: Vec::new(),
            state: config.initial.clone(),
            json: initial_json,
            version: 0,
            modified_at: now,
            stored_version: 0,
            last_good: None,
            last_write: None,
            last_error: None,
            blocked: None,
            restored_rescue: None,
            debouncer: Debouncer::new(config.debounce_ms),
            pending: Pending::new(config.client.clone(), config.first_seq, config.rebase),
            awaiting: Awaiting::Nothing,
            in_flight: None,
            writes: 0,
            failures: 0,
            backoff_until: None,
            write_soon: false,
            flushes: Vec::new(),
            clears: Vec::new(),
            closing: false,
            deferred_clear: None,
            migration: None,
            queued_tab: None,
            requests: 0,
            commands: VecDeque::new(),
            events: VecDeque::new(),
            announcements: VecDeque::new(),
            migrations: VecDeque::new(),
            completions: VecDeque::new(),
            config,
        };
        engine.open_next_backend();
        Ok(engine)
    }

    /// Where the engine is: opening, ready, failed to open, closed.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The current state: restored, set, or taken from another tab.
    pub fn state(&self) -> &Value {
        &self.state
    }

    /// The current state as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The current state version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where other clients of this browser still have a change to send (a
    /// synced session tells it before an input that may take another tab's
    /// copy): a server state put back on that copy leaves them as they are.
    pub fn set_listed(&mut self, listed: Listed) {
        self.pending.set_listed(listed);
    }

    /// The sequence number of this tab's newest change (the link's op seq).
    pub fn last_seq(&self) -> OpSeq {
        self.pending.last_seq()
    }

    /// The backend in use, once one opened.
    pub fn backend(&self) -> Option<BackendKind> {
        self.backend
    }

    /// Replaces the state as a new version and schedules its write; returns
    /// the version. `STATE_TOO_LARGE` above `maxBytes` of JSON,
    /// `STORE_CLOSED` unless open (and not closing), the blocking error once
    /// a newer schema was found; the state is unchanged on error.
    pub fn set(&mut self, state: Value, now: u64) -> Result<u64, SessileError> {
        let json = to_json(&state);
        let limit = self.config.envelope.max_raw_bytes;
        if json.len() > limit {
            return Err(SessileError::StateTooLarge {
                size: json.len() as u64,
                limit: limit as u64,
            });
        }
        if self.phase != Phase::Ready || self.closing {
            return Err(SessileError::StoreClosed);
        }
        if let Some(blocked) = &self.blocked {
            return Err(blocked.clone());
        }
        self.pending.record(&self.state, &state);
        self.version = self.version.max(self.stored_version) + 1;
        self.state = state;
        self.json = json;
        self.modified_at = now;
        self.debouncer.changed(now);
        Ok(self.version)
    }

    /// Counts the state as unsaved: the next write stores it again, at the
    /// same version, in the other slot. A driver whose encryption key
    /// changed re-encrypts what is stored this way (two writes: both slots).
    pub fn rewrite(&mut self, now: u64) -> Result<(), SessileError> {
        if self.phase != Phase::Ready || self.closing {
            return Err(SessileError::StoreClosed);
        }
        if let Some(blocked) = &self.blocked {
            return Err(blocked.clone());
        }
        self.debouncer.changed(now);
        Ok(())
    }

    /// Writes everything unsaved now. Completes when nothing is unsaved and
    /// no write is under way; with `STALE_WRITE` when another tab stored a
    /// newer state first and this tab took it (after a few attempts where
    /// this tab's state is written over it instead), or with the write's
    /// error (the state stays unsaved and is retried).
    pub fn flush(&mut self, now: u64) -> Result<RequestId, SessileError> {
        self.refuse_if_closed()?;
        let id = self.request_id();
        self.flushes.push(FlushWait::new(id, false));
        self.drive(now);
        Ok(id)
    }

    /// Removes every stored copy (both slots under the lock, leaving a
    /// tombstone head above every version so far; every tab's rescue copy;
    /// the marker), resets to the initial state and tells the other tabs.
    /// Waits for a write under way first.
    pub fn clear(&mut self, now: u64) -> Result<RequestId, SessileError> {
        self.refuse_if_closed()?;
        let id = self.request_id();
        self.clears.push(id);
        self.drive(now);
        Ok(id)
    }

    /// Refuses further changes, flushes, then closes. A failed flush leaves
    /// a rescue copy and completes with its error.
    pub fn close(&mut self, now: u64) -> Result<RequestId, SessileError> {
        self.refuse_if_closed()?;
        if self.closing {
            return Err(SessileError::StoreClosed);
        }
        self.closing = true;
        let id = self.request_id();
        self.flushes.push(FlushWait::new(id, true));
        self.drive(now);
        Ok(id)
    }

    /// The page is hidden (`visibilitychange`): write at once.
    pub fn handle_hidden(&mut self, now: u64) {
        self.write_at_once(now);
    }

    /// Writes what is unsaved at once, not after the debounce: a change
    /// the other tabs must find stored even if this tab crashes next (a
    /// synced session's change, which its register entry lists).
    pub fn write_at_once(&mut self, now: u64) {
        self.write_soon = true;
        self.drive(now);
    }

    /// `pagehide`: a rescue copy now (the first command polled, to run
    /// synchronously) if anything is unsaved or being written, then a write.
    pub fn handle_pagehide(&mut self, now: u64) {
        self.write_rescue();
        self.write_soon = true;
        self.drive(now);
    }

    /// The timer asked for by [`poll_timeout`](Self::poll_timeout) fired.
    pub fn handle_timeout(&mut self, now: u64) {
        self.drive(now);
    }

    /// The server acknowledged this client's changes up to `seq`.
    pub fn handle_acknowledged(&mut self, seq: OpSeq) {
        self.pending.acknowledged(seq);
    }

    /// The next storage command for the driver.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<StorageCommand> {
        self.commands.pop_front()
    }

    /// The next event for the page.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<StoreEvent> {
        self.events.pop_front()
    }

    /// The next message for the other tabs.
    #[must_use]
    pub fn poll_announcement(&mut self) -> Option<TabMessage> {
        self.announcements.pop_front()
    }

    /// The next migration the page must run.
    #[must_use]
    pub fn poll_migration(&mut self) -> Option<MigrationRequest> {
        self.migrations.pop_front()
    }

    /// The next finished `flush`, `clear` or `close`.
    #[must_use]
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the debounce
    /// deadline, or the end of the backoff after a failed write. `None`
    /// while nothing is unsaved or a write is under way.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.phase != Phase::Ready
            || self.awaiting != Awaiting::Nothing
            || self.migration.is_some()
            || self.blocked.is_some()
        {
            return None;
        }
        let due = self.debouncer.due_at()?;
        Some(due.max(self.backoff_until.unwrap_or(0)))
    }

    /// Backend, versions, sizes, last write and error.
    pub fn diagnostics(&self) -> StoreDiagnostics {
        StoreDiagnostics {
            backend: self.backend,
            degraded: self.degraded.clone(),
            version: self.version,
            stored_version: self.stored_version,
            unsaved: self.debouncer.unsaved(),
            writing: self.in_flight.is_some(),
            raw_bytes: self.json.len(),
            last_write: self.last_write.clone(),
            last_error: self.last_error.clone(),
            blocked: self.blocked.clone(),
            pending_changes: self.pending.len(),
        }
    }

    fn refuse_if_closed(&self) -> Result<(), SessileError> {
        match self.phase {
            Phase::Ready => Ok(()),
            _ => Err(SessileError::StoreClosed),
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.requests += 1;
        RequestId(self.requests)
    }

    fn emit(&mut self, event: StoreEvent) {
        self.events.push_back(event);
    }

    fn conflict(
        &mut self,
        local: Value,
        remote: Value,
        winner: Winner,
        local_version: u64,
        remote_version: u64,
    ) {
        self.emit(StoreEvent::Conflict {
            local,
            remote,
            winner,
            local_version,
            remote_version,
        });
    }

    /// Stops writing: what is stored is not for this page (a newer schema)
    /// or cannot be migrated.
    fn block(&mut self, error: SessileError) {
        self.blocked = Some(error.clone());
        self.emit(StoreEvent::ErrorOccurred {
            error,
            during: During::Sync,
        });
    }

    /// The state after a clear (here or in another tab).
    fn reset_to_initial(&mut self, tombstone: u64) {
        self.state = self.config.initial.clone();
        self.json = self.initial_json.clone();
        self.version = tombstone;
        self.stored_version = tombstone;
        self.last_good = None;
        self.last_write = None;
        self.debouncer.taken();
        self.pending.replace(pending::Includes::default());
    }

    /// This tab's rescue copy key.
    fn rescue_key(&self) -> String {
        [
            self.config.name.as_str(),
            ":rescue:",
            self.config.client.0.as_str(),
        ]
        .concat()
    }
}

/// The JSON text of a value (a `Value` always serializes).
fn to_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
