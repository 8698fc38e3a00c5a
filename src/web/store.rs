//! The persistent store behind `openStore`: restores the newest valid copy
//! (migrating an older schema, reporting corrupt slots and eviction), keeps
//! the latest state, writes it debounced to alternating slots with a
//! compare-and-set on the version, flushes on page hide with a synchronous
//! rescue copy on unload, and follows other tabs through BroadcastChannel.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::core::debounce::Debouncer;
use crate::core::envelope::{encode, read_header, SnapshotMeta, FLAG_COMPRESSED};
use crate::core::error::SessileError;
use crate::core::slots::{next_write, restore, Restore, SlotId, SlotRead};

use super::convert::{error_summary, json_to_state, object, state_to_json};
use super::locks;
use super::migrate::migrate;
use super::page::{self, Listener};
use super::storage::{self, local, Backend, Degradation, SlotStorage};
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

/// Mutable state of a store (never borrowed across an `await`).
pub(crate) struct Inner {
    pub(crate) state: JsValue,
    pub(crate) json: String,
    pub(crate) version: u64,
    pub(crate) modified_at: u64,
    /// Version of the newest copy known to be stored (here or by another tab).
    pub(crate) stored_version: u64,
    /// Where the newest stored copy is, and its generation.
    pub(crate) last_good: Option<(SlotId, u16)>,
    pub(crate) last_write: Option<WriteInfo>,
    pub(crate) last_error: Option<SessileError>,
    pub(crate) debouncer: Debouncer,
    pub(crate) writing: bool,
    pub(crate) timer_armed: bool,
    pub(crate) closed: bool,
    pub(crate) degraded: Vec<Degradation>,
    pub(crate) durable: Option<bool>,
}

/// A store: options, backend, state, and the page hooks that live with it.
pub(crate) struct Store {
    pub(crate) options: StoreOptions,
    pub(crate) backend: RefCell<Rc<Backend>>,
    pub(crate) inner: RefCell<Inner>,
    hooks: RefCell<Vec<Listener>>,
    pub(crate) tabs: RefCell<Option<TabChannel>>,
}

fn rescue_key(namespace: &str) -> String {
    storage::slot_key(namespace, SlotId::Rescue)
}

fn marker_key(namespace: &str) -> String {
    format!("{namespace}:marker")
}

impl Store {
    /// Opens storage, restores, and installs the page hooks.
    pub(crate) async fn open(options: StoreOptions) -> Result<Rc<Store>, SessileError> {
        let (backend, degraded) = storage::open(&options.name, options.storage).await?;
        let read = backend.read_all().await?;
        let rescue = local::read(&rescue_key(&options.name));
        let slots = [
            (SlotId::A, slot_read(&read.a)),
            (SlotId::B, slot_read(&read.b)),
            (SlotId::Rescue, slot_read(&rescue)),
        ];
        let restored = restore(&slots, &options.envelope);
        let initial_json = state_to_json(&options.initial)?;
        let store = Rc::new(Store {
            inner: RefCell::new(Inner {
                state: options.initial.clone(),
                json: initial_json,
                version: 0,
                modified_at: page::now_ms(),
                stored_version: 0,
                last_good: None,
                last_write: None,
                last_error: None,
                debouncer: Debouncer::new(options.debounce_ms),
                writing: false,
                timer_armed: false,
                closed: false,
                degraded,
                durable: None,
            }),
            backend: RefCell::new(Rc::new(backend)),
            options,
            hooks: RefCell::new(Vec::new()),
            tabs: RefCell::new(None),
        });
        // Collected first: no borrow is held while the page's handler runs.
        let using = store.backend.borrow().kind().name();
        let degraded: Vec<_> = store
            .inner
            .borrow()
            .degraded
            .iter()
            .map(|d| (d.kind.name(), error_summary(&d.error)))
            .collect();
        for (backend, error) in degraded {
            store.emit(
                "storage_degraded",
                &[
                    ("backend", backend.into()),
                    ("using", using.into()),
                    ("error", error),
                ],
            );
        }
        store.apply_restore(restored, read.head_version)?;
        Store::install_hooks(&store);
        Store::watch_durability(&store);
        Ok(store)
    }

    /// Takes over what restore found and tells the page how it went.
    fn apply_restore(&self, restored: Restore, head: Option<u64>) -> Result<(), SessileError> {
        let ns = &self.options.name;
        let head = head.unwrap_or(0);
        match restored {
            Restore::Restored {
                snapshot,
                slot,
                skipped,
            } => {
                let stored_schema = snapshot.meta.schema_version;
                let (json, migrated) = migrate(
                    &snapshot.json,
                    stored_schema,
                    self.options.schema_version,
                    &self.options.migrate,
                )?;
                let mut s = self.inner.borrow_mut();
                s.state = json_to_state(&json)?;
                s.json = json;
                // Never below the head: a newer copy may have been written
                // and then corrupted, and the next write must still win.
                s.version = snapshot.meta.state_version.max(head);
                s.stored_version = s.version;
                s.modified_at = snapshot.meta.modified_at_ms;
                s.last_good = Some((slot, snapshot.meta.generation));
                // A migrated state, or one that only the rescue copy holds,
                // is written back to the slots as a new version.
                if migrated || slot == SlotId::Rescue {
                    s.version += 1;
                    let _ = s.debouncer.changed(page::now_ms());
                }
                let version = s.version;
                drop(s);
                let skipped = skipped_list(
                    &skipped
                        .iter()
                        .map(|p| (p.slot, &p.error))
                        .collect::<Vec<_>>(),
                );
                self.emit(
                    "state_restored",
                    &[
                        ("outcome", "restored".into()),
                        ("from", slot.name().into()),
                        ("version", (version as f64).into()),
                        ("schemaVersion", stored_schema.into()),
                        ("migrated", migrated.into()),
                        ("skipped", skipped),
                    ],
                );
            }
            Restore::Empty => {
                let marker = local::read_text(&marker_key(ns))
                    .ok()
                    .flatten()
                    .or_else(|| page::read_marker_cookie(ns));
                let durable_backend =
                    !matches!(self.backend.borrow().kind(), storage::BackendKind::Memory);
                let evicted = marker.filter(|_| durable_backend);
                let mut s = self.inner.borrow_mut();
                s.version = head;
                s.stored_version = head;
                drop(s);
                match evicted {
                    Some(last_version) => self.emit(
                        "state_restored",
                        &[
                            ("outcome", "evicted".into()),
                            ("lastVersion", last_version.into()),
                            (
                                "reason",
                                "storage that held this session is empty: the browser evicted it or site data was cleared"
                                    .into(),
                            ),
                        ],
                    ),
                    None => self.emit("state_restored", &[("outcome", "fresh".into())]),
                }
            }
            Restore::Unreadable { problems } => {
                let mut s = self.inner.borrow_mut();
                s.version = head;
                s.stored_version = head;
                drop(s);
                let list: Vec<_> = problems.iter().map(|p| (p.slot, &p.error)).collect();
                self.emit(
                    "state_restored",
                    &[
                        ("outcome", "unreadable".into()),
                        ("skipped", skipped_list(&list)),
                    ],
                );
                if let Some(first) = problems.first() {
                    self.emit(
                        "error_occurred",
                        &[
                            ("error", error_summary(&first.error)),
                            ("during", "restore".into()),
                        ],
                    );
                }
            }
        }
        Ok(())
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
            return Err(closed_error());
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

    /// Runs the debounce timer until nothing is unsaved.
    fn arm_timer(this: &Rc<Self>) {
        {
            let mut s = this.inner.borrow_mut();
            if s.timer_armed {
                return;
            }
            s.timer_armed = true;
        }
        let store = this.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let due = store.inner.borrow().debouncer.due_at();
                let Some(at) = due else { break };
                let now = page::now_ms();
                if now < at {
                    page::sleep_ms(at - now).await;
                    continue;
                }
                if let Err(e) = Store::write_now(&store).await {
                    store.report_write_error(&e);
                    break;
                }
            }
            store.inner.borrow_mut().timer_armed = false;
        });
    }

    fn report_write_error(&self, e: &SessileError) {
        self.emit(
            "error_occurred",
            &[("error", error_summary(e)), ("during", "write".into())],
        );
    }

    /// Writes the latest state now if it is unsaved; waits for a write in
    /// flight first. Resolves when the bytes are stored.
    pub(crate) async fn write_now(this: &Rc<Self>) -> Result<(), SessileError> {
        loop {
            if !this.inner.borrow().writing {
                break;
            }
            page::sleep_ms(2).await;
        }
        let (bytes, plan, version) = {
            let mut s = this.inner.borrow_mut();
            if !s.debouncer.has_unsaved() {
                return Ok(());
            }
            let plan = next_write(s.last_good);
            let meta = SnapshotMeta {
                generation: plan.generation,
                schema_version: this.options.schema_version,
                state_version: s.version,
                modified_at_ms: s.modified_at,
            };
            let bytes = encode(&s.json, &meta, &this.options.envelope)?;
            s.debouncer.taken();
            s.writing = true;
            (bytes, plan, s.version)
        };
        let result = match this.live_backend().await {
            Ok(backend) => {
                let lock = format!("sessile:{}", this.options.name);
                locks::exclusive(&lock, async move {
                    backend.write_if_newer(plan.slot, &bytes, version).await?;
                    Ok(bytes)
                })
                .await
            }
            Err(e) => Err(e),
        };
        this.inner.borrow_mut().writing = false;
        match result {
            Ok(bytes) => {
                this.after_write(&bytes, plan.slot, plan.generation, version);
                Ok(())
            }
            Err(SessileError::StaleWrite { stored, attempted }) => {
                Store::adopt_newer_from_storage(this, stored, attempted).await;
                Err(SessileError::StaleWrite { stored, attempted })
            }
            Err(e) => {
                let mut s = this.inner.borrow_mut();
                // Still unsaved: the next change or flush tries again.
                let _ = s.debouncer.changed(page::now_ms());
                s.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn after_write(&self, bytes: &[u8], slot: SlotId, generation: u16, version: u64) {
        let ns = &self.options.name;
        let header = read_header(bytes).ok();
        {
            let mut s = self.inner.borrow_mut();
            s.last_good = Some((slot, generation));
            s.stored_version = s.stored_version.max(version);
            s.last_error = None;
            s.last_write = header.map(|h| WriteInfo {
                slot,
                generation,
                checksum: h.checksum,
                stored_bytes: bytes.len(),
                compressed: h.flags & FLAG_COMPRESSED != 0,
                at_ms: page::now_ms(),
            });
        }
        // The rescue copy is older than what was just stored.
        let _ = local::remove(&rescue_key(ns));
        if !matches!(self.backend.borrow().kind(), storage::BackendKind::Memory) {
            let version = version.to_string();
            let _ = local::write_text(&marker_key(ns), &version);
            page::write_marker_cookie(ns, Some(&version));
        }
        if let Some(tabs) = self.tabs.borrow().as_ref() {
            let s = self.inner.borrow();
            tabs.announce(version, slot, generation, &s.json);
        }
    }

    /// Another tab stored a newer version: take it, and report what this tab
    /// had as a conflict (the newest stored state wins).
    async fn adopt_newer_from_storage(this: &Rc<Self>, stored: u64, attempted: u64) {
        let Ok(backend) = this.live_backend().await else {
            return;
        };
        let Ok(read) = backend.read_all().await else {
            return;
        };
        let slots = [
            (SlotId::A, slot_read(&read.a)),
            (SlotId::B, slot_read(&read.b)),
        ];
        if let Restore::Restored { snapshot, slot, .. } = restore(&slots, &this.options.envelope) {
            let local_state = this.inner.borrow().state.clone();
            let Ok(remote) = json_to_state(&snapshot.json) else {
                return;
            };
            this.adopt(
                remote.clone(),
                snapshot.json,
                snapshot.meta.state_version,
                slot,
                snapshot.meta.generation,
            );
            this.report_conflict(local_state, remote, attempted, stored);
        }
    }

    /// Reports that this copy's state lost to a newer stored one.
    pub(crate) fn report_conflict(
        &self,
        local: JsValue,
        remote: JsValue,
        local_version: u64,
        remote_version: u64,
    ) {
        self.emit(
            "conflict",
            &[
                ("local", local),
                ("remote", remote),
                ("winner", "remote".into()),
                ("localVersion", (local_version as f64).into()),
                ("remoteVersion", (remote_version as f64).into()),
            ],
        );
    }

    /// Takes a newer state written elsewhere (storage or another tab).
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
    async fn live_backend(&self) -> Result<Rc<Backend>, SessileError> {
        let current = self.backend.borrow().clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let (reopened, _) = storage::open(&self.options.name, Some(current.kind())).await?;
        let reopened = Rc::new(reopened);
        *self.backend.borrow_mut() = reopened.clone();
        Ok(reopened)
    }

    /// Writes everything unsaved and waits until it is stored.
    pub(crate) async fn flush(this: &Rc<Self>) -> Result<(), SessileError> {
        loop {
            Store::write_now(this).await?;
            let s = this.inner.borrow();
            if !s.debouncer.has_unsaved() && !s.writing {
                return Ok(());
            }
        }
    }

    /// On unload with a write pending or under way, stores a rescue copy in
    /// localStorage synchronously (an asynchronous write may not finish).
    fn write_rescue(&self) {
        let s = self.inner.borrow();
        if !s.debouncer.has_unsaved() && !s.writing {
            return;
        }
        if matches!(self.backend.borrow().kind(), storage::BackendKind::Memory) {
            return;
        }
        let plan = next_write(s.last_good);
        let meta = SnapshotMeta {
            generation: plan.generation,
            schema_version: self.options.schema_version,
            state_version: s.version,
            modified_at_ms: s.modified_at,
        };
        if let Ok(bytes) = encode(&s.json, &meta, &self.options.envelope) {
            let _ = local::write(&rescue_key(&self.options.name), &bytes);
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
        let ask = this.options.persist
            && !matches!(this.backend.borrow().kind(), storage::BackendKind::Memory);
        wasm_bindgen_futures::spawn_local(async move {
            // Not awaited by open: Firefox may ask the user and never answer.
            let durable = page::request_persistence(ask).await;
            if let Some(store) = store.upgrade() {
                store.inner.borrow_mut().durable = durable;
            }
        });
    }

    /// Flushes, then releases every listener, timer and channel.
    pub(crate) async fn close(this: &Rc<Self>) -> Result<(), SessileError> {
        let flushed = Store::flush(this).await;
        this.inner.borrow_mut().closed = true;
        this.hooks.borrow_mut().clear();
        if let Some(tabs) = this.tabs.borrow_mut().take() {
            tabs.close();
        }
        flushed
    }

    /// Removes every stored copy of this namespace (and its markers).
    pub(crate) async fn clear(this: &Rc<Self>) -> Result<(), SessileError> {
        let ns = &this.options.name;
        this.live_backend().await?.clear().await?;
        let _ = local::remove(&rescue_key(ns));
        let _ = local::remove(&marker_key(ns));
        page::write_marker_cookie(ns, None);
        let mut s = this.inner.borrow_mut();
        s.last_good = None;
        s.last_write = None;
        s.debouncer.taken();
        Ok(())
    }
}

fn closed_error() -> SessileError {
    SessileError::StoreClosed
}

fn slot_read(read: &Result<Option<Vec<u8>>, SessileError>) -> SlotRead<'_> {
    match read {
        Ok(Some(bytes)) => SlotRead::Bytes(bytes),
        Ok(None) => SlotRead::Missing,
        Err(e) => SlotRead::Failed(e.clone()),
    }
}

fn skipped_list(problems: &[(SlotId, &SessileError)]) -> JsValue {
    let list = js_sys::Array::new();
    for (slot, error) in problems {
        list.push(
            &object(&[
                ("slot", slot.name().into()),
                ("error", error_summary(error)),
            ])
            .into(),
        );
    }
    list.into()
}
