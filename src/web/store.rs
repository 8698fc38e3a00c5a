//! The persistent store behind `openStore`: its state and versions, `set`,
//! `flush`, `clear`, `close`, events, and the page hooks (flush when hidden,
//! rescue copy on `pagehide`). Restoring is in `store_restore.rs`, writing in
//! `store_write.rs`, other tabs in `tabs.rs`.
//!
//! Versions: `version` is this tab's state; `stored_version` is the head it
//! last saw stored (by itself or another tab). A write is based on
//! `stored_version` and is refused if another tab moved the head meanwhile.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::core::debounce::Debouncer;
use crate::core::error::SessileError;
use crate::core::slots::SlotId;

use super::convert::{error_summary, object, state_to_json};
use super::locks;
use super::page::{self, Listener};
use super::storage::{self, local, Backend, BackendKind, Degradation, SlotStorage};
use super::store_options::StoreOptions;
use super::tabs::TabChannel;

/// Figures of the last successful write.
#[derive(Clone, Copy)]
pub(crate) struct WriteInfo {
    pub(crate) slot: SlotId,
    pub(crate) generation: u16,
    pub(crate) checksum: u32,
    pub(crate) stored_bytes: usize,
    pub(crate) compressed: bool,
    pub(crate) at_ms: u64,
}

/// Mutable state of a store (never borrowed across an `await`, nor while
/// the page's event handler runs).
pub(crate) struct Inner {
    pub(crate) state: JsValue,
    pub(crate) json: String,
    pub(crate) version: u64,
    pub(crate) modified_at: u64,
    /// The stored head this tab knows of: the base of its next write.
    pub(crate) stored_version: u64,
    /// Where the newest stored slot copy is, and its generation.
    pub(crate) last_good: Option<(SlotId, u16)>,
    pub(crate) last_write: Option<WriteInfo>,
    pub(crate) last_error: Option<SessileError>,
    pub(crate) debouncer: Debouncer,
    /// Resolves when the write under way ends.
    pub(crate) in_flight: Option<Promise>,
    pub(crate) timer_armed: bool,
    pub(crate) closed: bool,
    /// Set when writing would destroy data this page cannot read (a newer
    /// schema stored by a newer page): every write is refused with it.
    pub(crate) blocked: Option<SessileError>,
    /// A rescue copy restored at open, removed once written back.
    pub(crate) restored_rescue: Option<String>,
    pub(crate) degraded: Vec<Degradation>,
    pub(crate) durable: Option<bool>,
}

/// A store: options, backend, state, and the page hooks that live with it.
pub(crate) struct Store {
    pub(crate) options: StoreOptions,
    /// This tab's id (rescue copy key, tab messages).
    pub(crate) tab_id: String,
    pub(crate) backend: RefCell<Rc<Backend>>,
    pub(crate) inner: RefCell<Inner>,
    hooks: RefCell<Vec<Listener>>,
    pub(crate) tabs: RefCell<Option<TabChannel>>,
}

impl Store {
    /// Opens storage, restores, and installs the page hooks.
    pub(crate) async fn open(options: StoreOptions) -> Result<Rc<Store>, SessileError> {
        let (backend, degraded) = storage::open(&options.name, options.storage).await?;
        let read = backend.read_all().await?;
        let rescues = if backend.kind() == BackendKind::Memory {
            Vec::new()
        } else {
            local::read_rescues(&options.name)
        };
        let store = Rc::new(Store {
            inner: RefCell::new(Inner {
                state: options.initial.clone(),
                json: state_to_json(&options.initial)?,
                version: 0,
                modified_at: page::now_ms(),
                stored_version: 0,
                last_good: None,
                last_write: None,
                last_error: None,
                debouncer: Debouncer::new(options.debounce_ms),
                in_flight: None,
                timer_armed: false,
                closed: false,
                blocked: None,
                restored_rescue: None,
                degraded,
                durable: None,
            }),
            tab_id: format!(
                "{:x}",
                (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
            ),
            backend: RefCell::new(Rc::new(backend)),
            options,
            hooks: RefCell::new(Vec::new()),
            tabs: RefCell::new(None),
        });
        store.report_degradations();
        store.apply_restore(read, rescues)?;
        Store::install_hooks(&store);
        Store::watch_durability(&store);
        Ok(store)
    }

    fn report_degradations(&self) {
        // Collected first: no borrow is held while the page's handler runs.
        let using = self.backend.borrow().kind().name();
        let degraded: Vec<_> = self
            .inner
            .borrow()
            .degraded
            .iter()
            .map(|d| (d.kind.name(), error_summary(&d.error)))
            .collect();
        for (backend, error) in degraded {
            self.emit(
                "storage_degraded",
                &[
                    ("backend", backend.into()),
                    ("using", using.into()),
                    ("error", error),
                ],
            );
        }
    }

    /// Calls the page's `onEvent` with `{ type, ...fields }`. A throwing
    /// handler is the page's bug: it is logged, never breaks the store.
    pub(crate) fn emit(&self, kind: &str, fields: &[(&str, JsValue)]) {
        let Some(handler) = &self.options.on_event else {
            return;
        };
        let event = object(fields);
        super::convert::set(&event, "type", &kind.into());
        if let Err(e) = handler.call1(&JsValue::NULL, &event) {
            web_sys::console::error_2(&"sessile: onEvent handler threw".into(), &e);
        }
    }

    /// Reports that a state lost to another one (`winner` says which).
    pub(crate) fn report_conflict(
        &self,
        local: JsValue,
        remote: JsValue,
        winner: &str,
        local_version: u64,
        remote_version: u64,
    ) {
        self.emit(
            "conflict",
            &[
                ("local", local),
                ("remote", remote),
                ("winner", winner.into()),
                ("localVersion", (local_version as f64).into()),
                ("remoteVersion", (remote_version as f64).into()),
            ],
        );
    }

    /// Replaces the state (already JSON-checked) as a new version and
    /// schedules its write.
    pub(crate) fn set(self: &Rc<Self>, state: JsValue, json: String) -> Result<u64, SessileError> {
        let limit = self.options.envelope.max_raw_bytes;
        if json.len() > limit {
            return Err(SessileError::StateTooLarge {
                size: json.len() as u64,
                limit: limit as u64,
            });
        }
        let mut s = self.inner.borrow_mut();
        if s.closed {
            return Err(SessileError::StoreClosed);
        }
        if let Some(blocked) = &s.blocked {
            return Err(blocked.clone());
        }
        s.version = s.version.max(s.stored_version) + 1;
        s.state = state;
        s.json = json;
        let now = page::now_ms();
        s.modified_at = now;
        let _ = s.debouncer.changed(now);
        let version = s.version;
        drop(s);
        Store::arm_timer(self);
        Ok(version)
    }

    /// Takes a state stored elsewhere (another tab, or found on a refused
    /// write) as this tab's current and stored state.
    pub(crate) fn adopt(
        &self,
        state: JsValue,
        json: String,
        version: u64,
        slot: SlotId,
        generation: u16,
    ) {
        let mut s = self.inner.borrow_mut();
        s.state = state;
        s.json = json;
        s.version = version;
        s.stored_version = s.stored_version.max(version);
        s.last_good = Some((slot, generation));
        s.debouncer.taken();
    }

    /// The backend, reopened first if the browser closed the connection.
    pub(crate) async fn live_backend(&self) -> Result<Rc<Backend>, SessileError> {
        let current = self.backend.borrow().clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let (reopened, _) = storage::open(&self.options.name, Some(current.kind())).await?;
        let reopened = Rc::new(reopened);
        *self.backend.borrow_mut() = reopened.clone();
        Ok(reopened)
    }

    fn refuse_if_closed(&self) -> Result<(), SessileError> {
        if self.inner.borrow().closed {
            Err(SessileError::StoreClosed)
        } else {
            Ok(())
        }
    }

    /// Writes everything unsaved and waits until it is stored.
    ///
    /// Rejects with `STALE_WRITE` when another tab stored a newer state first
    /// (this tab took it). When the stored state was gone or unreadable this
    /// tab's state is written over it, within a few attempts.
    pub(crate) async fn flush(this: &Rc<Self>) -> Result<(), SessileError> {
        this.refuse_if_closed()?;
        let mut stale_retries = 0;
        loop {
            match Store::write_now(this).await {
                Ok(()) => {}
                Err(SessileError::StaleWrite { .. })
                    if stale_retries < 4 && this.inner.borrow().debouncer.has_unsaved() =>
                {
                    stale_retries += 1;
                }
                Err(e) => return Err(e),
            }
            let s = this.inner.borrow();
            if !s.debouncer.has_unsaved() && s.in_flight.is_none() {
                return Ok(());
            }
        }
    }

    fn install_hooks(this: &Rc<Self>) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let mut hooks = Vec::new();
        if let Some(doc) = window.document() {
            let store = Rc::downgrade(this);
            hooks.extend(Listener::new(&doc, "visibilitychange", move |_| {
                if let Some(store) = store.upgrade().filter(|_| page::document_hidden()) {
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Err(e) = Store::write_now(&store).await {
                            store.report_write_error(&e);
                        }
                    });
                }
            }));
        }
        let store = Rc::downgrade(this);
        hooks.extend(Listener::new(&window, "pagehide", move |_| {
            if let Some(store) = store.upgrade() {
                store.write_rescue();
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = Store::write_now(&store).await;
                });
            }
        }));
        *this.hooks.borrow_mut() = hooks;
        *this.tabs.borrow_mut() = TabChannel::open(this);
        if this.inner.borrow().debouncer.has_unsaved() {
            Store::arm_timer(this);
        }
    }

    fn watch_durability(this: &Rc<Self>) {
        let store = Rc::downgrade(this);
        let ask = this.options.persist && this.backend.borrow().kind() != BackendKind::Memory;
        wasm_bindgen_futures::spawn_local(async move {
            // Not awaited by open: Firefox may ask the user and never answer.
            let durable = page::request_persistence(ask).await;
            if let Some(store) = store.upgrade() {
                store.inner.borrow_mut().durable = durable;
            }
        });
    }

    /// Flushes, then releases every listener and the tab channel. If the
    /// flush fails the state is kept in a rescue copy, so it is not lost.
    pub(crate) async fn close(this: &Rc<Self>) -> Result<(), SessileError> {
        this.refuse_if_closed()?;
        let flushed = Store::flush(this).await;
        if flushed.is_err() {
            this.write_rescue();
        }
        this.inner.borrow_mut().closed = true;
        this.hooks.borrow_mut().clear();
        if let Some(tabs) = this.tabs.borrow_mut().take() {
            tabs.close();
        }
        flushed
    }

    /// Ends the session's storage: removes both slots, leaving a tombstone
    /// head so a tab that has not heard of it cannot write the old state
    /// back, removes the markers, resets the state to `initial`, and tells
    /// the other tabs.
    pub(crate) async fn clear(this: &Rc<Self>) -> Result<(), SessileError> {
        this.refuse_if_closed()?;
        Store::wait_in_flight(this).await;
        let tombstone = {
            let s = this.inner.borrow();
            s.version.max(s.stored_version) + 1
        };
        let backend = this.live_backend().await?;
        let lock = format!("sessile:{}", this.options.name);
        locks::exclusive(&lock, async move { backend.clear(tombstone).await }).await?;
        let ns = &this.options.name;
        let _ = local::remove(&local::rescue_key(ns, &this.tab_id));
        let _ = local::remove(&marker_key(ns));
        page::write_marker_cookie(ns, None);
        this.reset_to_initial(tombstone);
        if let Some(tabs) = this.tabs.borrow().as_ref() {
            tabs.announce_cleared(tombstone);
        }
        Ok(())
    }

    /// The state after a clear (here or in another tab).
    pub(crate) fn reset_to_initial(&self, tombstone: u64) {
        let initial_json = state_to_json(&self.options.initial).unwrap_or_else(|_| "null".into());
        let mut s = self.inner.borrow_mut();
        s.state = self.options.initial.clone();
        s.json = initial_json;
        s.version = tombstone;
        s.stored_version = tombstone;
        s.last_good = None;
        s.last_write = None;
        s.debouncer.taken();
    }
}

/// The key of the eviction marker of `namespace` in localStorage.
pub(crate) fn marker_key(namespace: &str) -> String {
    format!("{namespace}:marker")
}
