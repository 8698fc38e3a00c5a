//! [`Session`]: `openSession` for a Rust page (Leptos, Dioxus, Yew) without
//! JavaScript. Opening restores the stored copy and, with a server, joins
//! or creates the server session; changes are optimistic, checked against
//! the flow, persisted and sent as ops from a crash-safe outbox; requests
//! (`flush`, `extend`, `validate`, `end`, `authenticate`, `rotate_key`,
//! `discard_local`, `close`) finish when the engine says so; events say
//! what happened.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::driver::{pump, Changed, Driver, Shared};
use super::open::start;
use super::options::SessionOptions;
use crate::core::error::SessileError;
use crate::core::sealed::SEALED_OVERHEAD;
use crate::core::session::engine::{
    EnginePhase, Failure, Outcome, RequestId, ServerSession, SessionDiagnostics, SessionEngine,
    SessionEvent, Validity,
};
use crate::core::session::store::{BackendKind, ClientId};
use crate::web::crypt::{self, EncryptionKey};
use crate::web::store::page::now;
use crate::web::store::{commands, locks, signal};

/// One page's session of one namespace. Cloning gives another handle to
/// the same session. Dropped without [`close`](Self::close), it goes as a
/// closed page does: what is unsaved is left as a rescue copy, unsent
/// changes stay in the stored outbox, and the next open takes both up.
///
/// Changes (`update`, `set`, `step`) answer at once with a
/// [`SessileError`]; requests (`flush`, `extend`, `validate`, `end`,
/// `authenticate`, `close`) resolve with a [`Failure`], whose `code` may
/// also be the server's or `SERVER_UNREACHABLE`.
///
/// ```no_run
/// # async fn page() -> Result<(), sessile::SessileError> {
/// use sessile::web::session::{ServerOptions, Session, SessionEvent, SessionOptions};
/// use serde_json::json;
///
/// let session = Session::open(
///     SessionOptions::new("checkout")
///         .initial(json!({ "step": "cart", "items": [] }))
///         .server(ServerOptions::new("https://shop.example/sessile")),
/// )
/// .await?;
/// let _events = session.subscribe(|event| {
///     if let SessionEvent::StateSynchronized { version, .. } = event {
///         let _ = version; // on the server
///     }
/// });
/// session.update(json!({ "email": "shopper@example.com" }))?;
/// session.step("checkout", None)?;
/// let _ = session.flush().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Shared,
}

/// What [`Session::diagnostics`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// The engine's figures: store, server session, status and expiry,
    /// link, unanswered changes.
    pub session: SessionDiagnostics,
    /// This tab's client id.
    pub client: ClientId,
    /// Where the link record is kept (a synced session only).
    pub records: Option<BackendKind>,
    /// Whether this browser has Web Locks.
    pub web_locks: bool,
    /// Whether the browser keeps this origin's storage (`persist()`'s
    /// answer); `None` until it answers, or where it cannot.
    pub durable: Option<bool>,
}

/// Keeps an event handler registered until it is dropped.
#[must_use = "the handler is removed when this is dropped"]
pub struct Subscription {
    driver: Weak<RefCell<Driver>>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.driver.upgrade() {
            if let Ok(mut d) = shared.try_borrow_mut() {
                d.handlers.retain(|(id, _)| *id != self.id);
            }
        }
    }
}

impl Session {
    /// Opens the session `options.name`: restores the stored copy (running
    /// the page's migrations) and, with a server, starts joining the
    /// session given or remembered, or creating one (that goes on after
    /// this returns; events tell). Fails with `INVALID_OPTIONS` /
    /// `UNKNOWN_FLOW` before anything is touched, `STORAGE_UNAVAILABLE`
    /// (only when a backend was named), `SCHEMA_TOO_NEW`,
    /// `MIGRATION_FAILED`, or the error of a failed first read.
    pub async fn open(options: SessionOptions) -> Result<Session, SessileError> {
        let shared = start(options).await?;
        Ok(Session { shared })
    }

    /// The current state: restored, changed here, taken from another tab
    /// or from the server.
    pub fn get(&self) -> Value {
        self.shared.borrow().engine.state().clone()
    }

    /// The current state as `T` (`INVALID_STATE` when it does not fit).
    pub fn get_as<T: DeserializeOwned>(&self) -> Result<T, SessileError> {
        serde_json::from_value(self.get()).map_err(|_| SessileError::InvalidState {
            reason: "the state does not have the type asked for".into(),
        })
    }

    /// The local state version.
    pub fn version(&self) -> u64 {
        self.shared.borrow().engine.version()
    }

    /// The server session (id and token), once created or joined; keep the
    /// token as secret as a cookie.
    pub fn server_session(&self) -> Option<ServerSession> {
        self.shared.borrow().engine.server_session().cloned()
    }

    /// The lifecycle status (the flow's initial one until the server says
    /// otherwise).
    pub fn status(&self) -> String {
        self.shared.borrow().engine.status().into()
    }

    /// When the session expires, ms since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.shared.borrow().engine.expires_at()
    }

    /// Where the session is: opening, ready, failed or closed.
    pub fn phase(&self) -> EnginePhase {
        self.shared.borrow().engine.phase().clone()
    }

    /// Applies a JSON merge patch to the state; persists and syncs it.
    /// Returns the new version. `SESSION_EXPIRED` / `SESSION_CLOSED` once
    /// the session is over, `INVALID_STATE` for a synced state that is not
    /// an object, `STATE_TOO_LARGE`, `STORE_CLOSED`; nothing changes on
    /// error.
    pub fn update(&self, patch: Value) -> Result<u64, SessileError> {
        self.change(|e, now| e.update(&patch, None, now))
    }

    /// Replaces the state; persists and syncs the difference. Errors as
    /// [`update`](Self::update).
    pub fn set(&self, state: Value) -> Result<u64, SessileError> {
        self.change(|e, now| e.set(state, None, now))
    }

    /// [`set`](Self::set) of a value that serializes to JSON
    /// (`INVALID_STATE` when it does not).
    pub fn set_as<T: Serialize>(&self, state: &T) -> Result<u64, SessileError> {
        let value = serde_json::to_value(state).map_err(|_| SessileError::InvalidState {
            reason: "the state does not serialize to JSON".into(),
        })?;
        self.set(value)
    }

    /// Moves the status to `to` with an optional merge patch, in one change.
    /// `INVALID_TRANSITION` when the flow does not allow it; otherwise
    /// errors as [`update`](Self::update).
    pub fn step(&self, to: &str, patch: Option<Value>) -> Result<u64, SessileError> {
        self.change(|e, now| e.step(to, patch.as_ref(), now))
    }

    /// Runs one change of the page on the engine, then its outputs.
    pub(crate) fn change(
        &self,
        f: impl FnOnce(&mut SessionEngine, u64) -> Result<u64, SessileError>,
    ) -> Result<u64, SessileError> {
        let version = f(&mut self.shared.borrow_mut().engine, now())?;
        pump(&self.shared);
        Ok(version)
    }

    /// Resolves once everything is stored locally and, while the link is
    /// connected or connecting, every change is acknowledged by the server
    /// (offline it does not wait for the server).
    pub async fn flush(&self) -> Result<(), Failure> {
        self.request(|e, now| e.flush(now)).await.map(|_| ())
    }

    /// Adds `seconds` to the TTL (on the server when synced); resolves with
    /// the new expiry, ms since the epoch.
    pub async fn extend(&self, seconds: u64) -> Result<u64, Failure> {
        match self.request(|e, now| e.extend(seconds, now)).await? {
            Outcome::ExpiresAt(at) => Ok(at),
            _ => Ok(self.expires_at()),
        }
    }

    /// Whether the session can still be used: the server's answer when
    /// synced, else the lifecycle's here.
    pub async fn validate(&self) -> Result<Validity, Failure> {
        match self.request(|e, now| Ok(e.validate(now))).await? {
            Outcome::Validity(v) => Ok(v),
            _ => Err(Failure::new(
                "PROTOCOL_ERROR",
                "validate ended without a verdict",
                false,
            )),
        }
    }

    /// Ends the session: moves it to `reason` when that is a closed status
    /// of the flow (e.g. "completed"; resolves once the server acknowledged
    /// it, waiting through a lost connection), else terminates it (DELETE
    /// on the server; `SERVER_UNREACHABLE` when it cannot be reached, with
    /// nothing cleared). Then clears the local copy unless `keep`, and
    /// closes.
    pub async fn end(&self, reason: Option<&str>, keep: bool) -> Result<(), Failure> {
        self.request(|e, now| e.end(reason, keep, now)).await?;
        self.settled().await;
        Ok(())
    }

    /// Joins another server session, or (`None`) creates a new one holding
    /// the current state.
    pub async fn authenticate(&self, session: Option<ServerSession>) -> Result<(), Failure> {
        self.request(|e, now| e.authenticate(session, now))
            .await
            .map(|_| ())
    }

    /// Seals everything stored from now on with `key` and re-encrypts what
    /// is stored: the link record (outbox) and both slots are written again
    /// under the new key before this resolves. A reload must then give the
    /// new key; the old one fails with `DECRYPT_FAILED`. `INVALID_OPTIONS`
    /// for a key that is not AES-256-GCM (nothing changes then).
    pub async fn rotate_key(&self, key: EncryptionKey) -> Result<(), Failure> {
        let key = crypt::import(&key).await.map_err(Failure::from)?;
        self.settled().await;
        let records = self.shared.borrow().records.clone();
        let text = match &records {
            Some(r) => r.load().await.map_err(Failure::from)?.text,
            None => None,
        };
        {
            // The copies stored so far are under the old key: they may go.
            let mut d = self.shared.borrow_mut();
            let stored = d.engine.diagnostics().store;
            d.replaces_up_to = stored.version.max(stored.stored_version);
            d.key = Some(key.clone());
        }
        if let Some(records) = &records {
            records.set_key(key);
        }
        if let (Some(records), Some(text)) = (records, text) {
            for _ in 0..2 {
                records.save(&text).await.map_err(Failure::from)?;
            }
        }
        self.rewrite_both().await
    }

    /// The page's decision that the stored copies this session's key cannot
    /// open (another tab's key, a lost one) may be written over, as
    /// `discardLocal` is at open: the version stored now is read under the
    /// namespace's lock, the one slot writes take, and copies up to it may
    /// go (one another tab stores later is still kept). Then the current
    /// state is written to both slots before this resolves, so a write
    /// refused with `DECRYPT_FAILED` goes through. A session without a key
    /// never refuses a write: it resolves at once.
    pub async fn discard_local(&self) -> Result<(), Failure> {
        let (layout, backend) = {
            let d = self.shared.borrow();
            if d.key.is_none() {
                return Ok(());
            }
            (d.layout.clone(), d.backend.clone())
        };
        if let Some(backend) = backend {
            let stored = commands::stored_version(&layout, backend)
                .await
                .map_err(Failure::from)?;
            let mut d = self.shared.borrow_mut();
            d.replaces_up_to = d.replaces_up_to.max(stored);
        }
        self.rewrite_both().await
    }

    /// Writes the current state again into both slots (at its version),
    /// under the session's key as it is now.
    async fn rewrite_both(&self) -> Result<(), Failure> {
        for _ in 0..2 {
            self.request(|e, now| {
                e.rewrite(now)?;
                e.flush(now)
            })
            .await?;
        }
        Ok(())
    }

    /// Flushes and releases everything (listeners, timer, connection, the
    /// client id's lock); unsent changes stay in the stored outbox for the
    /// next load.
    pub async fn close(&self) -> Result<(), Failure> {
        self.request(|e, now| e.close(now)).await?;
        self.settled().await;
        Ok(())
    }

    async fn request(
        &self,
        start: impl FnOnce(&mut SessionEngine, u64) -> Result<RequestId, SessileError>,
    ) -> Result<Outcome, Failure> {
        let (done, finished) = signal::channel();
        {
            let mut d = self.shared.borrow_mut();
            let id = start(&mut d.engine, now()).map_err(Failure::from)?;
            d.wait_for(id, done);
        }
        pump(&self.shared);
        finished.await
    }

    /// Waits until the link record's writes are done.
    async fn settled(&self) {
        while self.shared.borrow().records_busy() {
            Changed::new(&self.shared).await;
        }
    }

    /// Calls `handler` with every later event, until the subscription is dropped.
    pub fn subscribe(&self, handler: impl Fn(&SessionEvent) + 'static) -> Subscription {
        let mut d = self.shared.borrow_mut();
        let id = d.next_handler;
        d.next_handler += 1;
        d.handlers.push((id, Rc::new(handler)));
        Subscription {
            driver: Rc::downgrade(&self.shared),
            id,
        }
    }

    /// Store, link and session figures, the client id, Web Locks.
    pub fn diagnostics(&self) -> Diagnostics {
        let d = self.shared.borrow();
        let mut session = d.engine.diagnostics();
        if let (Some(_), Some(last)) = (&d.key, session.store.last_write.as_mut()) {
            // The engine counts the plain snapshot; sealing adds nonce and tag.
            last.stored_bytes += SEALED_OVERHEAD;
        }
        Diagnostics {
            session,
            client: d.client.clone(),
            records: d.records.as_ref().map(|r| r.kind()),
            web_locks: locks::available(),
            durable: d.durable,
        }
    }
}
