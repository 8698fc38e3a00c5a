//! How a store writes: the debounce timer (with backoff after a failure), one
//! write at a time under the namespace's lock, compare-and-set on the head it
//! is based on, what happens when another tab got there first, and the
//! synchronous rescue copy on `pagehide`.

use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::envelope::{encode, read_header, SnapshotMeta, FLAG_COMPRESSED};
use crate::core::error::SessileError;
use crate::core::slots::{next_write, restore, Restore, SlotId, WritePlan};

use super::convert::{error_summary, json_to_state};
use super::locks;
use super::migrate::migrate;
use super::page;
use super::storage::{local, BackendKind, SlotStorage};
use super::store::{marker_key, Inner, Store, WriteInfo};
use super::store_restore::slot_read;

/// Longest wait between two attempts after failed writes, in ms.
const MAX_BACKOFF_MS: u64 = 30_000;

/// A promise and the function that resolves it.
fn new_promise() -> (Promise, Function) {
    let mut resolve = None;
    let promise = Promise::new(&mut |res, _| resolve = Some(res));
    (
        promise,
        resolve.unwrap_or_else(|| Function::new_no_args("")),
    )
}

impl Store {
    /// Runs the debounce timer while anything is unsaved. After a failed
    /// write it waits longer each time (up to 30 s) and reports the first
    /// failure of a run; it never drops a change.
    pub(crate) fn arm_timer(this: &Rc<Self>) {
        {
            let mut s = this.inner.borrow_mut();
            if s.timer_armed || s.closed {
                return;
            }
            s.timer_armed = true;
        }
        let store = this.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut failures: u32 = 0;
            loop {
                let (due, closed) = {
                    let s = store.inner.borrow();
                    (s.debouncer.due_at(), s.closed)
                };
                let Some(at) = due.filter(|_| !closed) else {
                    break;
                };
                let now = page::now_ms();
                if now < at {
                    page::sleep_ms(at - now).await;
                    continue;
                }
                match Store::write_now(&store).await {
                    Ok(()) | Err(SessileError::StaleWrite { .. }) => failures = 0,
                    Err(e) => {
                        if failures == 0 {
                            store.report_write_error(&e);
                        }
                        failures = failures.saturating_add(1);
                        let delay = store.options.debounce_ms.max(100);
                        let backoff = delay.saturating_mul(1 << failures.min(8));
                        page::sleep_ms(backoff.min(MAX_BACKOFF_MS)).await;
                    }
                }
            }
            store.inner.borrow_mut().timer_armed = false;
            // A change that came in as the loop ended gets a timer of its own.
            if store.inner.borrow().debouncer.has_unsaved() {
                Store::arm_timer(&store);
            }
        });
    }

    /// The current state as the snapshot of the next write, and where it goes.
    fn encode_current(&self, s: &Inner) -> Result<(WritePlan, Vec<u8>), SessileError> {
        let plan = next_write(s.last_good);
        let meta = SnapshotMeta {
            generation: plan.generation,
            schema_version: self.options.schema_version,
            state_version: s.version,
            modified_at_ms: s.modified_at,
        };
        Ok((plan, encode(&s.json, &meta, &self.options.envelope)?))
    }

    pub(crate) fn report_write_error(&self, e: &SessileError) {
        self.emit(
            "error_occurred",
            &[("error", error_summary(e)), ("during", "write".into())],
        );
    }

    /// Waits until no write is under way.
    pub(crate) async fn wait_in_flight(this: &Rc<Self>) {
        loop {
            let pending = this.inner.borrow().in_flight.clone();
            match pending {
                Some(p) => {
                    let _ = JsFuture::from(p).await;
                }
                None => return,
            }
        }
    }

    /// Writes the latest state now if it is unsaved (after any write under
    /// way). Resolves when the bytes are stored.
    pub(crate) async fn write_now(this: &Rc<Self>) -> Result<(), SessileError> {
        Store::wait_in_flight(this).await;
        let (bytes, slot, generation, base, version, done) = {
            let mut s = this.inner.borrow_mut();
            if !s.debouncer.has_unsaved() {
                return Ok(());
            }
            if let Some(blocked) = &s.blocked {
                return Err(blocked.clone());
            }
            let (plan, bytes) = this.encode_current(&s)?;
            s.debouncer.taken();
            let (promise, done) = new_promise();
            s.in_flight = Some(promise);
            (
                bytes,
                plan.slot,
                plan.generation,
                s.stored_version,
                s.version,
                done,
            )
        };
        let (bytes, mut result) = Store::attempt(this, slot, bytes, base, version).await;
        if matches!(result, Err(SessileError::StorageUnavailable { .. }))
            && this.backend.borrow().is_closed()
        {
            // The browser closed the connection: reopen and try once more.
            let (_, retried) = Store::attempt(this, slot, bytes.clone(), base, version).await;
            result = retried;
        }
        this.inner.borrow_mut().in_flight = None;
        let _ = done.call0(&JsValue::NULL);
        match result {
            Ok(()) => {
                this.after_write(&bytes, slot, generation, version);
                Ok(())
            }
            Err(SessileError::StaleWrite { stored, attempted }) => {
                Store::on_stale(this, stored, attempted).await;
                Err(SessileError::StaleWrite { stored, attempted })
            }
            Err(e) => {
                let mut s = this.inner.borrow_mut();
                // Still unsaved: tried again after a backoff, on the next
                // change, flush or page hide.
                let _ = s.debouncer.changed(page::now_ms());
                s.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// One write under the lock; gives the bytes back with the outcome.
    async fn attempt(
        this: &Rc<Self>,
        slot: SlotId,
        bytes: Vec<u8>,
        base: u64,
        version: u64,
    ) -> (Vec<u8>, Result<(), SessileError>) {
        let backend = match this.live_backend().await {
            Ok(b) => b,
            Err(e) => return (bytes, Err(e)),
        };
        let lock = format!("sessile:{}", this.options.name);
        // The lock's task must own what it writes; a snapshot is tens of KB.
        let payload = bytes.clone();
        let result = locks::exclusive(&lock, async move {
            backend.write_if_head(slot, &payload, base, version).await
        })
        .await;
        (bytes, result)
    }

    fn after_write(&self, bytes: &[u8], slot: SlotId, generation: u16, version: u64) {
        let ns = &self.options.name;
        let header = read_header(bytes).ok();
        let restored_rescue = {
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
            s.restored_rescue.take()
        };
        // This tab's rescue copy, and one restored at open, are now older
        // than what is stored. Other tabs' rescue copies are theirs.
        let _ = local::remove(&local::rescue_key(ns, &self.tab_id));
        if let Some(key) = restored_rescue {
            let _ = local::remove(&key);
        }
        if self.backend.borrow().kind() != BackendKind::Memory {
            let version = version.to_string();
            let _ = local::write_text(&marker_key(ns), &version);
            page::write_marker_cookie(ns, Some(&version));
        }
        if let Some(tabs) = self.tabs.borrow().as_ref() {
            let s = self.inner.borrow();
            tabs.announce(version, slot, generation, &s.json);
        }
    }

    /// Another tab moved the head to `stored` while this tab's state was
    /// unsaved: take the stored state (the newest stored state wins) and
    /// report this tab's as a conflict. If the stored state cannot be read,
    /// this tab's state is kept and written over it.
    async fn on_stale(this: &Rc<Self>, stored: u64, attempted: u64) {
        let local_state = {
            let mut s = this.inner.borrow_mut();
            s.stored_version = stored;
            s.state.clone()
        };
        let read = match this.live_backend().await {
            Ok(backend) => backend.read_all().await.ok(),
            Err(_) => None,
        };
        let found = read.as_ref().and_then(|read| {
            let slots = [
                (SlotId::A, slot_read(&read.a)),
                (SlotId::B, slot_read(&read.b)),
            ];
            match restore(&slots, &this.options.envelope) {
                Restore::Restored { snapshot, slot, .. }
                    if snapshot.meta.state_version >= stored =>
                {
                    Some((snapshot, slot))
                }
                _ => None,
            }
        });
        let Some((snapshot, slot)) = found else {
            let _ = this.inner.borrow_mut().debouncer.changed(page::now_ms());
            this.report_conflict(local_state, JsValue::NULL, "local", attempted, stored);
            return;
        };
        let migrated = migrate(
            &snapshot.json,
            snapshot.meta.schema_version,
            this.options.schema_version,
            &this.options.migrate,
        )
        .and_then(|(json, _)| Ok((json_to_state(&json)?, json)));
        match migrated {
            Ok((remote, json)) => {
                this.adopt(
                    remote.clone(),
                    json,
                    snapshot.meta.state_version,
                    slot,
                    snapshot.meta.generation,
                );
                this.report_conflict(
                    local_state,
                    remote,
                    "remote",
                    attempted,
                    snapshot.meta.state_version,
                );
            }
            Err(e) => this.block(e),
        }
    }

    /// Stops writing: what is stored is not for this page (a newer schema) or
    /// cannot be migrated; overwriting it would lose data.
    pub(crate) fn block(&self, e: SessileError) {
        self.inner.borrow_mut().blocked = Some(e.clone());
        self.emit(
            "error_occurred",
            &[("error", error_summary(&e)), ("during", "sync".into())],
        );
    }

    /// On unload with a write pending or under way, stores this tab's rescue
    /// copy in localStorage synchronously (an asynchronous write may not
    /// finish), with the head it is based on.
    pub(crate) fn write_rescue(&self) {
        let s = self.inner.borrow();
        if !s.debouncer.has_unsaved() && s.in_flight.is_none() {
            return;
        }
        if self.backend.borrow().kind() == BackendKind::Memory || s.blocked.is_some() {
            return;
        }
        if let Ok((_, bytes)) = self.encode_current(&s) {
            let _ = local::write_rescue(&self.options.name, &self.tab_id, s.stored_version, &bytes);
        }
    }
}
