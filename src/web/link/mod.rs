//! The link in the browser, usable from Rust without JavaScript: the
//! engine of [`crate::core::session::link`] driven over a WebSocket, the
//! HTTP fallback (`fetch`, long-poll) and the page's `online`/`offline`
//! and `visibilitychange` events, with its record kept in IndexedDB where
//! the TypeScript client kept it, so a reload resumes the outbox.
//!
//! ```no_run
//! # async fn run() -> Result<(), sessile::SessileError> {
//! use sessile::web::link::{random_client_id, Link, LinkOptions};
//! use serde_json::json;
//!
//! let client = random_client_id()?; // keep it in sessionStorage: a reload resumes
//! let options = LinkOptions::new("https://shop.example/sessile", "checkout",
//!     "0123456789abcdef0123456789abcdef", "the session's token", &client);
//! let link = Link::connect(options).await?;
//! link.submit(json!({"step": "checkout", "email": "a@b.example"}), Some("checkout"))?;
//! while let Some(event) = link.next_event().await {
//!     // ConnectionEstablished, StateSynchronized, Conflict, ...
//!     # let _ = event;
//! }
//! link.close().await?;
//! # Ok(()) }
//! ```
//!
//! Where the parts live: `options.rs` (options and URLs), `driver.rs` (the
//! engine's inputs and outputs, timer, listeners, the record's writes),
//! `websocket.rs` and `http.rs` (the transports, opened by `transport.rs`,
//! which the session driver shares), `records.rs` (where the
//! record is kept), `browser.rs` (clock, randomness, sessionStorage).

pub(crate) mod browser;
mod driver;
pub(crate) mod http;
pub(crate) mod options;
mod records;
pub(crate) mod transport;
mod websocket;

use std::rc::Rc;

use serde_json::Value;

pub use self::browser::{random_client_id, random_seed};
pub use self::options::{LinkOptions, DEFAULT_REMEMBER_FALLBACK_MS};
pub use self::records::{IndexedDbRecords, LocalFuture, MemoryRecords, RecordStore};
pub use crate::core::session::link::stored::Restored;
pub use crate::core::session::link::{
    ConflictWinner, Diagnostics, LinkEvent, LinkState, LossReason, Transport, TransportReason,
};

use self::driver::{Changed, Driver, Shared, Start};
use self::options::Endpoint;
use crate::core::error::SessileError;
use crate::core::error_text::message;
use crate::core::protocol::OpId;
use crate::core::session::link::http::HttpExchange;
use crate::core::session::link::stored::{self, Resume};
use crate::core::session::link::{Link as Engine, Outbox};

/// One tab's link to the server for one session. Dropping it stops
/// everything at once, leaving the record as last stored (as a page that
/// goes away does); [`close`](Self::close) also stores the record.
pub struct Link {
    driver: Shared,
}

impl Link {
    /// Opens the link: reads the record kept in IndexedDB for this
    /// namespace and client (a record of this session resumes its outbox),
    /// then connects. `INVALID_OPTIONS` / `OUTBOX_CORRUPT` for bad options;
    /// a stored record that does not read, or a storage that cannot be
    /// used, is an [`LinkEvent::ErrorOccurred`] and the link carries on
    /// (afresh, or keeping its record in memory).
    pub async fn connect(options: LinkOptions) -> Result<Link, SessileError> {
        let records = Rc::new(IndexedDbRecords::new(&options.namespace, &options.client));
        Self::connect_with(options, records).await
    }

    /// [`connect`](Self::connect) keeping the record in `records`.
    pub async fn connect_with(
        options: LinkOptions,
        records: Rc<dyn RecordStore>,
    ) -> Result<Link, SessileError> {
        options.check()?;
        let endpoint = Endpoint::of(&options)?;
        let mut events = Vec::new();
        let mut records = records;
        let loaded = match records.load().await {
            Ok(loaded) => loaded,
            Err(e) => {
                events.push(error_event(&e, "the link's record cannot be kept: "));
                records = Rc::new(MemoryRecords::new());
                Restored::default()
            }
        };
        if let (None, Some(e)) = (&loaded.text, loaded.skipped.first()) {
            events.push(error_event(e, "the link's record could not be read: "));
        }
        let mut cfg = options.engine.clone();
        let remember_key = stored::fallback_key(&options.namespace);
        let remembered = browser::local_get(&remember_key);
        cfg.start_on_http = stored::starts_on_http(remembered.as_deref(), browser::now());
        let (session, token) = (cfg.session.clone(), cfg.token.clone());
        let long_poll_ms = options
            .long_poll_ms
            .unwrap_or_else(|| HttpExchange::default_wait_ms(cfg.heartbeat_ms));
        let engine = match stored::resume(loaded.text.as_deref(), &session, &options.client) {
            Resume::Record(record) => Engine::resume(cfg, record),
            other => {
                if let Resume::Corrupt(e) = other {
                    events.push(error_event(&e, ""));
                }
                let outbox = Outbox::new(&options.client)?;
                Engine::new(cfg, outbox, options.version, options.confirmed)
            }
        };
        let driver = Driver::start(Start {
            engine,
            session,
            token,
            client: options.client,
            endpoint,
            long_poll_ms,
            remember_key,
            remember_ms: options.remember_fallback_ms,
            records,
            events,
        });
        Ok(Link { driver })
    }

    /// A local change: `patch` (a JSON merge patch object) becomes the next
    /// op, stored with the record and then sent (at once when connected);
    /// `to` asks for a status change. `PROTOCOL_ERROR` when the patch is
    /// not an object, `SESSION_CLOSED` after [`close`](Self::close).
    pub fn submit(&self, patch: Value, to: Option<&str>) -> Result<OpId, SessileError> {
        let id = {
            let mut d = self.open()?;
            let id = d
                .engine
                .submit(patch, to.map(str::to_owned), browser::now())?;
            d.submitted();
            id
        };
        driver::pump(&self.driver);
        Ok(id)
    }

    /// A local change from `before` to `after` (their merge patch is the
    /// op); the op's sequence, or 0 when nothing changed.
    pub fn submit_change(
        &self,
        before: &Value,
        after: &Value,
        to: Option<&str>,
    ) -> Result<u64, SessileError> {
        let seq = {
            let mut d = self.open()?;
            let now = browser::now();
            let seq = d
                .engine
                .submit_change(before, after, to.map(str::to_owned), now)?;
            if seq > 0 {
                d.submitted();
            }
            seq
        };
        driver::pump(&self.driver);
        Ok(seq)
    }

    fn open(&self) -> Result<std::cell::RefMut<'_, Driver>, SessileError> {
        let d = self.driver.borrow_mut();
        if d.closed {
            return Err(SessileError::SessionClosed {
                status: "link closed".into(),
            });
        }
        Ok(d)
    }

    /// Where the link stands (connecting, connected over which transport,
    /// backing off, offline, stopped).
    pub fn state(&self) -> LinkState {
        self.driver.borrow().engine.state().clone()
    }

    /// What the page sees: the server's state with the unanswered ops on top.
    pub fn view(&self) -> Value {
        self.driver.borrow().engine.view()
    }

    /// The server's state at [`version`](Self::version).
    pub fn confirmed(&self) -> Value {
        self.driver.borrow().engine.confirmed().clone()
    }

    /// The server version the link holds.
    pub fn version(&self) -> u64 {
        self.driver.borrow().engine.version()
    }

    /// The session's status as the server last said ("" until known).
    pub fn status(&self) -> String {
        self.driver.borrow().engine.status().into()
    }

    /// Ops not yet answered by the server.
    pub fn outbox_len(&self) -> usize {
        self.driver.borrow().engine.outbox().len()
    }

    /// The engine's counters (RTT, connections, transport preferred, ...).
    pub fn diagnostics(&self) -> Diagnostics {
        self.driver.borrow().engine.diagnostics()
    }

    /// Why the record's last write failed, while it is owed.
    pub fn store_error(&self) -> Option<SessileError> {
        self.driver.borrow().last_store_error.clone()
    }

    /// The next unread event, if any. Up to 1,024 are kept unread; past it
    /// the oldest go.
    pub fn try_event(&self) -> Option<LinkEvent> {
        self.driver.borrow_mut().events.pop_front()
    }

    /// The next event, waiting for one; `None` once closed and all read.
    pub async fn next_event(&self) -> Option<LinkEvent> {
        loop {
            {
                let mut d = self.driver.borrow_mut();
                if let Some(e) = d.events.pop_front() {
                    return Some(e);
                }
                if d.closed {
                    return None;
                }
            }
            Changed::new(&self.driver).await;
        }
    }

    /// Resolves at the next change: an input handled, an event, a write of
    /// the record ended, close.
    pub async fn changed(&self) {
        Changed::new(&self.driver).await;
    }

    /// Waits until the server has answered every op, through lost
    /// connections: `true`, or `false` when the link was closed or stopped
    /// first (the ops stay in the record).
    pub async fn when_acknowledged(&self) -> bool {
        loop {
            {
                let d = self.driver.borrow();
                if d.engine.outbox().is_empty() {
                    return true;
                }
                if d.closed || matches!(d.engine.state(), LinkState::Stopped { .. }) {
                    return false;
                }
            }
            Changed::new(&self.driver).await;
        }
    }

    /// Waits until the record is stored as it stands; the error of the
    /// last write when it failed (it is tried again at the next input).
    pub async fn when_stored(&self) -> Result<(), SessileError> {
        loop {
            {
                let d = self.driver.borrow();
                if let Some(e) = &d.last_store_error {
                    return Err(e.clone());
                }
                if d.record_settled() || d.closed {
                    return Ok(());
                }
            }
            Changed::new(&self.driver).await;
        }
    }

    /// Stops the link (connection, timer, listeners) and stores its record
    /// (after a write under way): the error of that write, if it failed.
    pub async fn close(&self) -> Result<(), SessileError> {
        {
            let mut d = self.driver.borrow_mut();
            if d.closed {
                return Ok(());
            }
            d.shut();
        }
        while self.driver.borrow().persisting {
            Changed::new(&self.driver).await;
        }
        let (records, text) = {
            let d = self.driver.borrow();
            (d.records.clone(), d.stored_text())
        };
        records.save(text).await
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Ok(mut d) = self.driver.try_borrow_mut() {
            d.shut();
        }
    }
}

fn error_event(e: &SessileError, context: &str) -> LinkEvent {
    LinkEvent::ErrorOccurred {
        code: e.code().into(),
        message: [context, &message(e)].concat(),
        terminal: false,
    }
}
