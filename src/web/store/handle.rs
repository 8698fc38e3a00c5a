//! [`Store`]: a persistent store of one namespace, for a Rust page (Leptos,
//! Dioxus, Yew) without JavaScript. Opening restores what is stored;
//! `set` is optimistic and written after the debounce (at once when the
//! page is hidden, with a rescue copy on `pagehide`); `flush`, `clear` and
//! `close` finish when storage has done them; events say what happened.

use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::driver::{install_hooks, pump, Driver, Shared};
use super::identity::client_for;
use super::locks;
use super::options::StoreOptions;
use super::page::{now, request_persistence};
use super::signal;
use crate::core::error::SessileError;
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{
    BackendKind, ClientId, Phase, StoreDiagnostics, StoreEngine, StoreEvent,
};

/// What [`Store::start`] asks the engine for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    Flush,
    Clear,
    Close,
}

/// A store of one namespace in this tab. Cloning gives another handle to
/// the same store. Dropped without [`close`](Self::close), it leaves what
/// is unsaved as a rescue copy, which the next open restores.
///
/// ```no_run
/// # async fn page() -> Result<(), sessile::SessileError> {
/// use sessile::web::store::StoreEvent;
/// use sessile::web::{Store, StoreOptions};
/// use serde_json::json;
///
/// let store = Store::open(
///     StoreOptions::new("checkout")
///         .initial(json!({ "step": "cart", "items": [] }))
///         .on_event(|event| {
///             if let StoreEvent::Conflict { remote, .. } = event {
///                 // Another tab's newer cart replaced this one: show it.
///                 let _ = remote;
///             }
///         }),
/// )
/// .await?;
/// store.set(json!({ "step": "checkout", "items": [] }))?;
/// store.flush().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    shared: Shared,
}

/// What [`Store::diagnostics`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// The engine's figures: backend, versions, sizes, last write and error.
    pub store: StoreDiagnostics,
    /// This tab's client id.
    pub client: ClientId,
    /// Whether this browser has Web Locks (writes of tabs take turns).
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
            shared
                .borrow_mut()
                .handlers
                .retain(|(id, _)| *id != self.id);
        }
    }
}

impl Store {
    /// Opens (restoring what is stored) the store `options.name`. Fails with
    /// `INVALID_OPTIONS`, `STORAGE_UNAVAILABLE` (only when a backend was
    /// named), `SCHEMA_TOO_NEW` or `MIGRATION_FAILED` (the stored copy is
    /// left untouched), or the error of a failed first read.
    pub async fn open(options: StoreOptions) -> Result<Store, SessileError> {
        options.config(ClientId(String::new())).validate()?;
        let layout = Layout::new(&options.name);
        let (client, lock) = match &options.client {
            Some(client) => (client.clone(), None),
            None => client_for(&layout).await,
        };
        let engine = StoreEngine::new(options.config(client.clone()), now())?;
        let (opened, is_open) = signal::channel();
        let migrate = options.migrate.clone();
        let mut driver = Driver::new(engine, layout, client, migrate, lock, opened);
        if let Some(handler) = &options.on_event {
            driver.handlers.push((0, handler.clone()));
            driver.next_handler = 1;
        }
        let shared = Rc::new(RefCell::new(driver));
        pump(&shared);
        is_open.await;
        let phase = shared.borrow().engine.phase().clone();
        match phase {
            Phase::Ready => {}
            Phase::Failed(error) => {
                shared.borrow_mut().release();
                return Err(error);
            }
            _ => {
                shared.borrow_mut().release();
                return Err(SessileError::StoreClosed);
            }
        }
        install_hooks(&shared);
        let durable_wanted =
            options.persist && shared.borrow().engine.backend() != Some(BackendKind::Memory);
        if durable_wanted {
            let weak = Rc::downgrade(&shared);
            // Not awaited: a browser may ask the user and never answer.
            wasm_bindgen_futures::spawn_local(async move {
                let durable = request_persistence().await;
                if let Some(shared) = weak.upgrade() {
                    shared.borrow_mut().durable = durable;
                }
            });
        }
        Ok(Store { shared })
    }

    /// The current state: restored, set, or taken from another tab.
    pub fn get(&self) -> Value {
        self.shared.borrow().engine.state().clone()
    }

    /// `f` of the current state as JSON text (for the JS boundary).
    pub(crate) fn with_json<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        f(self.shared.borrow().engine.json())
    }

    /// The current state as `T` (`INVALID_STATE` when it does not fit).
    pub fn get_as<T: DeserializeOwned>(&self) -> Result<T, SessileError> {
        serde_json::from_value(self.get()).map_err(|_| SessileError::InvalidState {
            reason: "the state does not have the type asked for".into(),
        })
    }

    /// The current state version.
    pub fn version(&self) -> u64 {
        self.shared.borrow().engine.version()
    }

    /// Replaces the state as a new version and schedules its write; returns
    /// the version. `STATE_TOO_LARGE` above `maxBytes` of JSON,
    /// `STORE_CLOSED` once closing, `SCHEMA_TOO_NEW` once another tab
    /// stored a newer schema; the state is unchanged on error.
    pub fn set(&self, state: Value) -> Result<u64, SessileError> {
        let version = self.shared.borrow_mut().engine.set(state, now())?;
        pump(&self.shared);
        Ok(version)
    }

    /// [`set`](Self::set) of a value that serializes to JSON
    /// (`INVALID_STATE` when it does not).
    pub fn set_as<T: Serialize>(&self, state: &T) -> Result<u64, SessileError> {
        let value = serde_json::to_value(state).map_err(|_| SessileError::InvalidState {
            reason: "the state does not serialize to JSON".into(),
        })?;
        self.set(value)
    }

    /// Writes everything unsaved now and waits until it is stored. Fails
    /// with the write's error (the change stays unsaved and is retried), or
    /// `STALE_WRITE` when another tab stored a newer state first and this
    /// tab took it.
    pub async fn flush(&self) -> Result<(), SessileError> {
        self.start(Request::Flush).await
    }

    /// Removes every stored copy (leaving a tombstone so a tab that has not
    /// heard cannot write the old state back), resets to the initial state
    /// and tells the other tabs.
    pub async fn clear(&self) -> Result<(), SessileError> {
        self.start(Request::Clear).await
    }

    /// Refuses further changes, flushes, and lets go of the browser's
    /// resources (a failed flush leaves a rescue copy and is returned).
    pub async fn close(&self) -> Result<(), SessileError> {
        self.start(Request::Close).await
    }

    /// Asks the engine for `request` now, synchronously (a `set` right
    /// after `close` is already refused), and returns the wait for its end.
    pub(crate) fn start(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<(), SessileError>> + 'static {
        let id = {
            let engine = &mut self.shared.borrow_mut().engine;
            match request {
                Request::Flush => engine.flush(now()),
                Request::Clear => engine.clear(now()),
                Request::Close => engine.close(now()),
            }
        };
        let finished = id.map(|id| {
            let (done, finished) = signal::channel();
            self.shared.borrow_mut().wait_for(id, done);
            pump(&self.shared);
            finished
        });
        async move { finished?.await }
    }

    /// Calls `handler` with every later event, until the subscription is dropped.
    pub fn subscribe(&self, handler: impl Fn(&StoreEvent) + 'static) -> Subscription {
        let mut d = self.shared.borrow_mut();
        let id = d.next_handler;
        d.next_handler += 1;
        d.handlers.push((id, Rc::new(handler)));
        Subscription {
            driver: Rc::downgrade(&self.shared),
            id,
        }
    }

    /// Backend, versions, sizes, last write and error, client, Web Locks.
    pub fn diagnostics(&self) -> Diagnostics {
        let d = self.shared.borrow();
        Diagnostics {
            store: d.engine.diagnostics(),
            client: d.client.clone(),
            web_locks: locks::available(),
            durable: d.durable,
        }
    }

    /// Where the store is: open, or closed.
    pub fn phase(&self) -> Phase {
        self.shared.borrow().engine.phase().clone()
    }
}
