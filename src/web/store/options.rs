//! What a Rust page opens a store with: the engine's options (namespace,
//! backend, debounce, schema and its migrations, initial state, envelope
//! limits, client id) and the page's event handler, with a builder.

use std::rc::Rc;

use serde_json::Value;

use crate::core::envelope::EnvelopeConfig;
use crate::core::session::store::{BackendKind, ClientId, OpSeq, StoreConfig, StoreEvent};
use crate::core::vec_map::VecMap;

/// A migration: turns a state of schema `v` into schema `v + 1`, or says
/// why it cannot (`MIGRATION_FAILED` with that reason).
pub type Migration = Rc<dyn Fn(Value) -> Result<Value, String>>;

/// Called with every event of the store, in order.
pub type EventHandler = Rc<dyn Fn(&StoreEvent)>;

/// Options of [`Store::open`](super::Store::open).
#[derive(Clone)]
pub struct StoreOptions {
    /// The storage namespace: 1 to 100 bytes, no control characters.
    pub name: String,
    /// The backend to use; `None` is `auto` (IndexedDB, then localStorage,
    /// then memory, each one passed over reported as `StorageDegraded`).
    pub storage: Option<BackendKind>,
    /// Delay between the last change and its write, ms (default 250, at most 60 000).
    pub debounce_ms: u64,
    /// The page's state schema version (default 1).
    pub schema_version: u32,
    /// `migrate[v]` turns schema `v` into `v + 1`.
    pub migrate: VecMap<u32, Migration>,
    /// The state when nothing valid is stored (default `null`).
    pub initial: Value,
    /// Compression threshold, size limit (`maxBytes`) and deflate level.
    pub envelope: EnvelopeConfig,
    /// This tab's client id; `None`: the one this tab kept in
    /// sessionStorage, unless a live store holds it, else a new one.
    pub client: Option<ClientId>,
    /// The sequence number of this client's next change (default 1).
    pub first_seq: OpSeq,
    /// A synced session: this tab's changes are kept until stored and
    /// acknowledged, and put back on top of another tab's copy.
    pub rebase: bool,
    /// Ask the browser to keep this origin's storage (`persist()`; default true).
    pub persist: bool,
    /// Called with every event, from the first (`StateRestored`) on.
    pub on_event: Option<EventHandler>,
}

impl StoreOptions {
    /// The defaults for namespace `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            storage: None,
            debounce_ms: 250,
            schema_version: 1,
            migrate: VecMap::new(),
            initial: Value::Null,
            envelope: EnvelopeConfig::default(),
            client: None,
            first_seq: 1,
            rebase: false,
            persist: true,
            on_event: None,
        }
    }

    /// Uses only `kind` (`STORAGE_UNAVAILABLE` from `open` if it fails).
    pub fn storage(mut self, kind: BackendKind) -> Self {
        self.storage = Some(kind);
        self
    }

    /// Sets the debounce delay, ms.
    pub fn debounce_ms(mut self, ms: u64) -> Self {
        self.debounce_ms = ms;
        self
    }

    /// Sets the initial state.
    pub fn initial(mut self, state: Value) -> Self {
        self.initial = state;
        self
    }

    /// Sets the schema version.
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Adds `migrate[from]`.
    pub fn migration(
        mut self,
        from: u32,
        migrate: impl Fn(Value) -> Result<Value, String> + 'static,
    ) -> Self {
        self.migrate.insert(from, Rc::new(migrate));
        self
    }

    /// Sets the compression threshold, size limit and deflate level.
    pub fn envelope(mut self, envelope: EnvelopeConfig) -> Self {
        self.envelope = envelope;
        self
    }

    /// Uses client id `client`.
    pub fn client(mut self, client: ClientId) -> Self {
        self.client = Some(client);
        self
    }

    /// Calls `handler` with every event.
    pub fn on_event(mut self, handler: impl Fn(&StoreEvent) + 'static) -> Self {
        self.on_event = Some(Rc::new(handler));
        self
    }

    /// The engine's config, for client `client`.
    pub(crate) fn config(&self, client: ClientId) -> StoreConfig {
        StoreConfig {
            name: self.name.clone(),
            storage: self.storage,
            debounce_ms: self.debounce_ms,
            schema_version: self.schema_version,
            initial: self.initial.clone(),
            envelope: self.envelope,
            client,
            first_seq: self.first_seq,
            rebase: self.rebase,
            discard_local: false,
        }
    }
}
