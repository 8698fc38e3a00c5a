//! The session engine, sans-IO: one page's session of one namespace, the
//! store (the local copy, shared by the tabs) and, for a synced session,
//! the link to the server, composed, with the session's own decisions: its
//! status and expiry under the flow, the page's changes checked and turned
//! into ops, what the server confirms taken back into the store without
//! ever replacing a change some live client of this browser still has to
//! send, the server session created or joined, and the events of the
//! public API. It is `openSession` in Rust.
//!
//! Inputs are the `handle_*` methods (storage answers, frames, transport
//! and page events, timers, HTTP answers) and the page's calls (`update`,
//! `set`, `step`, `flush`, `extend`, `validate`, `end`, `authenticate`,
//! `close`), each given `now` (ms since the epoch). Outputs are polled and
//! a driver drains them all after every input:
//! [`poll_command`](SessionEngine::poll_command) (storage, the link record,
//! remembered values, the pending register, HTTP calls),
//! [`poll_transmit`](SessionEngine::poll_transmit) (the link's network
//! actions; held while a record holding new ops is being stored),
//! [`poll_event`](SessionEngine::poll_event),
//! [`poll_announcement`](SessionEngine::poll_announcement) and
//! [`poll_migration`](SessionEngine::poll_migration) (the store's, for the
//! other tabs and the page's migrations),
//! [`poll_completion`](SessionEngine::poll_completion) and
//! [`poll_timeout`](SessionEngine::poll_timeout) (the earliest of the
//! store's, the link's, the TTL's and a retry's).
//!
//! Where the parts live: `types.rs` (what goes in and out), `options.rs`
//! (the page's options), `life.rs` (status, expiry), `page.rs` (the page's
//! calls), `sync.rs` (the server session and this tab's link), `inbound.rs`
//! (what the link brings back), `remembered.rs` (what is kept for the next
//! load), `record.rs` (the link record and the pending register written),
//! `tracking.rs` (this tab's unanswered ops), `register.rs` (what other
//! tabs still have to send).

mod inbound;
mod life;
mod options;
mod page;
mod record;
mod register;
mod remembered;
mod sync;
mod tracking;
mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde_json::Value;

pub use self::options::{SessionConfig, SyncConfig};
pub use self::record::record_limit;
pub use self::register::{paths_of, Path, MAX_DEPTH, MAX_ENTRY_CHARS, MAX_PATHS};
pub use self::types::*;

use self::life::Life;
use self::page::Wait;
use self::sync::Sync;
use crate::core::error::SessileError;
use crate::core::protocol::is_id;
use crate::core::session::link::{Link, Rng, Transmit, Transport};
use crate::core::session::store::{
    self as store, ClientId, MigrationRequest, StoreEngine, StoredRead, TabMessage, WriteResult,
};

/// The JSON text of `v` (serde's writer: no `core::fmt` in the module).
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// What the driver found in the browser at open, for the engine to judge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The JSON text at `<name>:server` (localStorage): the server session
    /// remembered for the namespace.
    pub session: Option<String>,
    /// The JSON text at `<name>:lifecycle` (localStorage): the status and
    /// expiry last known.
    pub lifecycle: Option<String>,
    /// The JSON text of the link record `<name>:link:<client>`.
    pub record: Option<String>,
    /// The text at `<name>:fallback` (localStorage): until when the
    /// origin's pages start on HTTP, a refused WebSocket remembered (ms
    /// since the epoch).
    pub fallback: Option<String>,
    /// The browser says it is offline (`navigator.onLine === false`).
    pub offline: bool,
    /// The other clients' entries of the pending register:
    /// `(client, JSON text)` for each `<name>:pending:<client>`.
    pub register: Vec<(String, String)>,
}

/// One page's session of one namespace. See the module doc.
#[derive(Debug)]
pub struct SessionEngine {
    name: String,
    client: ClientId,
    flow_request: Option<Value>,
    ttl_seconds: Option<u64>,
    store: StoreEngine,
    life: Life,
    sync: Option<Sync>,
    phase: EnginePhase,
    closing: bool,
    online: bool,
    rng: Rng,
    commands: VecDeque<SessionCommand>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    completions: VecDeque<Completion>,
    waits: Vec<Wait>,
    requests: u64,
    calls: u64,
}

impl SessionEngine {
    /// Starts opening: the store's first command opens a backend; the
    /// server session is joined or created once the store is open.
    /// `INVALID_OPTIONS` (or `UNKNOWN_FLOW`) for a bad config and
    /// `OUTBOX_CORRUPT` for a synced session whose client id is not 32
    /// lowercase hex digits, before anything is asked of storage.
    pub fn new(config: SessionConfig, found: Found, now: u64) -> Result<Self, SessileError> {
        let ttl_ms = config.ttl_ms()?;
        let synced = config.sync.is_some();
        if synced && !is_id(&config.store.client.0) {
            return Err(SessileError::OutboxCorrupt {
                reason: "client id must be 32 lowercase hex digits".into(),
            });
        }
        let mut store_config = config.store;
        // A synced tab keeps its changes until stored and answered, and
        // puts them back on top of another tab's copy (rule 2).
        store_config.rebase = synced;
        let name = store_config.name.clone();
        let client = store_config.client.clone();
        let store = StoreEngine::new(store_config, now)?;
        let sync = config
            .sync
            .map(|cfg| Sync::new(cfg, &name, &client, &found, now));
        let mut engine = SessionEngine {
            life: Life::new(config.flow, ttl_ms, now),
            name,
            client,
            flow_request: config.flow_request,
            ttl_seconds: config.ttl_seconds,
            store,
            sync,
            phase: EnginePhase::Opening,
            closing: false,
            online: !found.offline,
            rng: Rng::new(config.seed),
            commands: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            completions: VecDeque::new(),
            waits: Vec::new(),
            requests: 0,
            calls: 0,
        };
        engine.after(now);
        Ok(engine)
    }

    /// Where the engine is: `Ready` once the store opened (the page's
    /// `openSession` resolves), `Failed` when it could not.
    pub fn phase(&self) -> &EnginePhase {
        &self.phase
    }

    /// The page's state.
    pub fn state(&self) -> &Value {
        self.store.state()
    }

    /// The page's state as JSON text.
    pub fn json(&self) -> &str {
        self.store.json()
    }

    /// The local state version.
    pub fn version(&self) -> u64 {
        self.store.version()
    }

    /// The server session, once known.
    pub fn server_session(&self) -> Option<&ServerSession> {
        self.sync.as_ref().and_then(|s| s.server.as_ref())
    }

    /// The lifecycle status.
    pub fn status(&self) -> &str {
        self.life.status()
    }

    /// When the session expires, ms since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.life.expires_at()
    }

    /// This tab's client id.
    pub fn client(&self) -> &ClientId {
        &self.client
    }

    /// Store, link and session figures.
    pub fn diagnostics(&self) -> SessionDiagnostics {
        let link = self.sync.as_ref().and_then(|s| s.link.as_ref());
        SessionDiagnostics {
            store: self.store.diagnostics(),
            session_id: self.server_session().map(|s| s.id.clone()),
            status: self.life.status().into(),
            expires_at: self.life.expires_at(),
            link: link.map(|l| l.diagnostics()),
            unanswered: self
                .sync
                .as_ref()
                .zip(link)
                .map_or(0, |(s, l)| s.tracking.unanswered(l.outbox())),
        }
    }

    /// The next command for the driver.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<SessionCommand> {
        self.commands.pop_front()
    }

    /// The next network action: the engine's own (closing a link it
    /// drops), then the link's, unless a record holding new ops is still
    /// being stored (frames wait for it, so a crash cannot lose an op the
    /// server may have applied).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        let sync = self.sync.as_mut()?;
        if sync.records.holds_sends() {
            return None;
        }
        sync.link.as_mut()?.poll_transmit()
    }

    /// The next event for the page.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The next message for the other tabs (BroadcastChannel
    /// `sessile:<name>`).
    #[must_use]
    pub fn poll_announcement(&mut self) -> Option<TabMessage> {
        self.store.poll_announcement()
    }

    /// The next migration the page must run; answer with `handle_migrated`.
    #[must_use]
    pub fn poll_migration(&mut self) -> Option<MigrationRequest> {
        self.store.poll_migration()
    }

    /// The next finished request.
    #[must_use]
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the earliest
    /// of the store's (debounce, backoff), the link's (heartbeat, liveness,
    /// backoff), the TTL's and a retried session creation's.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let link = self.sync.as_ref().and_then(|s| s.link.as_ref());
        let mut at = [
            self.store.poll_timeout(),
            link.and_then(Link::poll_timeout),
            None,
            None,
        ];
        if self.phase == EnginePhase::Ready && !self.closing {
            at[2] = self.life.timeout();
            at[3] = self.sync.as_ref().and_then(Sync::timeout);
        }
        at.into_iter().flatten().min()
    }

    /// How the last [`StorageCommand::Open`](store::StorageCommand::Open) went.
    pub fn handle_backend_opened(&mut self, result: Result<(), SessileError>, now: u64) {
        self.input(now);
        self.store.handle_backend_opened(result, now);
        self.after(now);
    }

    /// What the last [`StorageCommand::Read`](store::StorageCommand::Read) found.
    pub fn handle_read(&mut self, read: Result<StoredRead, SessileError>, now: u64) {
        self.input(now);
        self.tell_listed();
        self.store.handle_read(read, now);
        self.after(now);
    }

    /// How the last [`StorageCommand::WriteSlot`](store::StorageCommand::WriteSlot) went.
    pub fn handle_write_result(&mut self, result: WriteResult, now: u64) {
        self.input(now);
        self.tell_listed();
        self.store.handle_write_result(result, now);
        self.after(now);
    }

    /// How the last [`StorageCommand::Clear`](store::StorageCommand::Clear) went.
    pub fn handle_cleared(&mut self, result: Result<u64, SessileError>, now: u64) {
        self.input(now);
        self.store.handle_cleared(result, now);
        self.after(now);
    }

    /// The page's migration `migrate[from]` gave `result`.
    pub fn handle_migrated(&mut self, from: u32, result: Result<Value, String>, now: u64) {
        self.input(now);
        self.tell_listed();
        self.store.handle_migrated(from, result, now);
        self.after(now);
    }

    /// Another tab's message (BroadcastChannel).
    pub fn handle_tab_message(&mut self, message: TabMessage, now: u64) {
        self.input(now);
        self.tell_listed();
        self.store.handle_tab_message(message, now);
        self.after(now);
    }

    /// The page is hidden (`visibilitychange`): the store writes at once.
    pub fn handle_hidden(&mut self, now: u64) {
        self.input(now);
        self.store.handle_hidden(now);
        self.after(now);
    }

    /// `pagehide`: the store's rescue copy (the first command, to run
    /// synchronously) and a write.
    pub fn handle_pagehide(&mut self, now: u64) {
        self.input(now);
        self.store.handle_pagehide(now);
        self.after(now);
    }

    /// The page became visible (`true`) or hidden: the link may try at
    /// once, and the TTL is looked at (timers of a hidden tab fire late).
    pub fn handle_visible(&mut self, visible: bool, now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_visible(visible, now);
        }
        if visible {
            self.check_expiry(now);
        }
        self.after(now);
    }

    /// The page came back from the back/forward cache (`pageshow` with
    /// `persisted`): the link replaces its connection at once
    /// ([`Link::handle_resumed`](crate::core::session::link::Link::handle_resumed)).
    pub fn handle_resumed(&mut self, now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_resumed(now);
        }
        self.after(now);
    }

    /// The browser went online (`true`) or offline.
    pub fn handle_online(&mut self, online: bool, now: u64) {
        self.input(now);
        self.online = online;
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_online(online, now);
        }
        self.after(now);
    }

    /// The transport asked for by [`Transmit::Open`] opened (or the
    /// standby of [`Transmit::SetAside`], a WebSocket).
    pub fn handle_connected(&mut self, transport: Transport, now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_connected(transport, now);
        }
        self.after(now);
    }

    /// The transport closed or failed to open.
    pub fn handle_closed(&mut self, now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_closed(now);
        }
        self.after(now);
    }

    /// The standby set aside by [`Transmit::SetAside`] closed or failed to
    /// open.
    pub fn handle_standby_closed(&mut self, now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_standby_closed(now);
        }
        self.after(now);
    }

    /// One text frame from the server.
    pub fn handle_frame(&mut self, bytes: &[u8], now: u64) {
        self.input(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_frame(bytes, now);
        }
        self.after(now);
    }

    /// The timer asked for by [`poll_timeout`](Self::poll_timeout) fired
    /// (or any time later; early calls do nothing).
    pub fn handle_timeout(&mut self, now: u64) {
        self.input(now);
        self.store.handle_timeout(now);
        if let Some(link) = self.sync.as_mut().and_then(|s| s.link.as_mut()) {
            link.handle_timeout(now);
        }
        if self.phase == EnginePhase::Ready && !self.closing {
            self.check_expiry(now);
            self.retry_create(now);
        }
        self.after(now);
    }

    /// Something every input does first: a record write that failed is
    /// tried again (at the next input, not at once, which would spin).
    fn input(&mut self, _now: u64) {
        if let Some(sync) = self.sync.as_mut() {
            sync.records.input();
        }
    }

    /// After every input: the store's output taken, the link's events
    /// handled, records written, requests completed.
    fn after(&mut self, now: u64) {
        self.pump_store(now);
        self.pump_link(now);
        self.pump_store(now);
        self.check_waits(now);
        self.pump_store(now);
    }

    /// Takes the store's commands, events and completions, and starts the
    /// session once the store opened.
    fn pump_store(&mut self, now: u64) {
        loop {
            while let Some(c) = self.store.poll_command() {
                self.commands.push_back(SessionCommand::Store(c));
            }
            while let Some(e) = self.store.poll_event() {
                self.events.push_back(SessionEvent::Store(e));
            }
            let Some(done) = self.store.poll_completion() else {
                break;
            };
            self.store_done(done, now);
        }
        if self.phase == EnginePhase::Opening {
            match self.store.phase() {
                store::Phase::Ready => {
                    self.phase = EnginePhase::Ready;
                    self.check_expiry(now);
                    self.start_sync(now);
                }
                store::Phase::Failed(e) => self.phase = EnginePhase::Failed(e.clone()),
                _ => {}
            }
        }
    }

    /// TTL by timestamp: past the expiry, the session expires here.
    fn check_expiry(&mut self, now: u64) {
        self.life.check_expiry(now, &mut self.events);
    }

    fn request_id(&mut self) -> RequestId {
        self.requests += 1;
        RequestId(self.requests)
    }

    fn call(&mut self, call: ServerCall) -> CallId {
        self.calls += 1;
        let id = CallId(self.calls);
        self.commands.push_back(SessionCommand::Call { id, call });
        id
    }

    fn complete(&mut self, id: RequestId, result: Result<Outcome, Failure>) {
        self.completions.push_back(Completion { id, result });
    }

    /// `<name><suffix>`: a key of this namespace (without `sessile:`).
    fn key(&self, suffix: &str) -> String {
        [self.name.as_str(), suffix].concat()
    }
}
