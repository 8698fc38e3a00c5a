//! What a Rust page opens a session with: `openSession`'s options under
//! their JavaScript names (read and checked by the engine's own
//! `SessionConfig::from_options`, so a Rust page and a JavaScript page get
//! the same rules and codes), the page's migrations and event handler,
//! with a builder.

use std::rc::Rc;

use serde_json::{Map, Value};

use crate::core::session::engine::{ServerSession, SessionEvent};
use crate::core::session::store::BackendKind;
use crate::core::vec_map::VecMap;
use crate::web::crypt::EncryptionKey;
use crate::web::store::Migration;

/// Called with every event of a session, in order.
pub type SessionHandler = Rc<dyn Fn(&SessionEvent)>;

/// Where the server is, and optionally which session to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Base URL of the server's HTTP API (`https://shop.example/sessile`;
    /// relative to the page when it has no scheme).
    pub http: String,
    /// The WebSocket URL; `None`: `http` with a `ws:`/`wss:` scheme plus
    /// `/v1/ws`.
    pub ws: Option<String>,
    /// A session created by the shop's backend; `None`: the one this
    /// browser remembers for the namespace, else a new one.
    pub session: Option<ServerSession>,
}

impl ServerOptions {
    /// The server at `http`.
    pub fn new(http: &str) -> Self {
        ServerOptions {
            http: http.into(),
            ws: None,
            session: None,
        }
    }

    /// Uses the WebSocket URL `ws`.
    pub fn ws(mut self, ws: &str) -> Self {
        self.ws = Some(ws.into());
        self
    }

    /// Joins `session` (created by the shop's backend).
    pub fn session(mut self, session: ServerSession) -> Self {
        self.session = Some(session);
        self
    }

    fn json(&self) -> Value {
        let mut o = Map::new();
        o.insert("http".into(), self.http.clone().into());
        if let Some(ws) = &self.ws {
            o.insert("ws".into(), ws.clone().into());
        }
        if let Some(s) = &self.session {
            let mut session = Map::new();
            session.insert("id".into(), s.id.clone().into());
            session.insert("token".into(), s.token.clone().into());
            o.insert("session".into(), session.into());
        }
        Value::Object(o)
    }
}

/// Options of [`Session::open`](super::Session::open): those of
/// `openSession` (js/README.md), set by name.
///
/// ```no_run
/// use sessile::web::session::{ServerOptions, SessionOptions};
/// use serde_json::json;
///
/// let options = SessionOptions::new("checkout")
///     .initial(json!({ "step": "cart", "items": [] }))
///     .server(ServerOptions::new("https://shop.example/sessile"))
///     .ttl_seconds(30 * 60)
///     .option("heartbeatMs", json!(10_000));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct SessionOptions {
    options: Map<String, Value>,
    pub(super) server: Option<ServerOptions>,
    pub(super) migrate: VecMap<u32, Migration>,
    pub(super) persist: bool,
    pub(super) on_event: Option<SessionHandler>,
    pub(super) encryption: Option<EncryptionKey>,
}

impl SessionOptions {
    /// The defaults of `openSession` for namespace `name`: storage `auto`,
    /// a `null` initial state, the `checkout` flow, a 30 min TTL, local
    /// only.
    pub fn new(name: &str) -> Self {
        let mut options = Map::new();
        options.insert("name".into(), name.into());
        SessionOptions {
            options,
            server: None,
            migrate: VecMap::new(),
            persist: true,
            on_event: None,
            encryption: None,
        }
    }

    /// Sets the option `key` (its JavaScript name: `debounceMs`,
    /// `compressAbove`, `maxBytes`, `compressionLevel`, `schemaVersion`,
    /// `heartbeatMs`, `backoffBaseMs`, `backoffCapMs`, `wsProbeMs`,
    /// `connectTimeoutMs`, `ackTimeoutMs`, `longPollMs`,
    /// `rememberFallbackMs`, ...) to `value`; `open` checks it.
    pub fn option(mut self, key: &str, value: Value) -> Self {
        self.options.insert(key.into(), value);
        self
    }

    /// The state when nothing valid is stored (a synced session's must be
    /// a JSON object).
    pub fn initial(self, state: Value) -> Self {
        self.option("initial", state)
    }

    /// Uses only `kind` (`STORAGE_UNAVAILABLE` from `open` if it fails);
    /// by default IndexedDB, then localStorage, then memory.
    pub fn storage(self, kind: BackendKind) -> Self {
        let name = match kind {
            BackendKind::IndexedDb => "indexeddb",
            BackendKind::LocalStorage => "localstorage",
            _ => "memory",
        };
        self.option("storage", name.into())
    }

    /// Delay between the last change and its write, ms (default 250).
    pub fn debounce_ms(self, ms: u64) -> Self {
        self.option("debounceMs", ms.into())
    }

    /// The lifecycle flow: a built-in one's name (`"checkout"`, `"table"`)
    /// or a declared table (`{initial, statuses, transitions}`).
    pub fn flow(self, flow: Value) -> Self {
        self.option("flow", flow)
    }

    /// Time to live, seconds (60 to 86 400; default 1 800).
    pub fn ttl_seconds(self, seconds: u64) -> Self {
        self.option("ttlSeconds", seconds.into())
    }

    /// The page's state schema version (default 1).
    pub fn schema_version(self, version: u32) -> Self {
        self.option("schemaVersion", version.into())
    }

    /// Adds `migrate[from]`: turns a state of schema `from` into `from + 1`.
    pub fn migration(
        mut self,
        from: u32,
        migrate: impl Fn(Value) -> Result<Value, String> + 'static,
    ) -> Self {
        self.migrate.insert(from, Rc::new(migrate));
        self
    }

    /// Syncs with this server (without it the session is local only).
    pub fn server(mut self, server: ServerOptions) -> Self {
        self.server = Some(server);
        self
    }

    /// Whether to ask the browser to keep this origin's storage
    /// (`persist()`; default true).
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }

    /// Encrypts the stored copies (slots, outbox, rescue copy) with `key`
    /// (AES-256-GCM, docs/STORAGE.md "Encryption"); the key is kept in
    /// memory only. A copy sealed with another key, or sealed when no key
    /// is given, makes `open` fail with `DECRYPT_FAILED` / `KEY_REQUIRED`.
    pub fn encryption(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// Drops a stored copy this page cannot decrypt (`KEY_REQUIRED`,
    /// `DECRYPT_FAILED`) and starts from the server or `initial`, instead
    /// of failing the open.
    pub fn discard_local(self, discard: bool) -> Self {
        self.option("discardLocal", discard.into())
    }

    /// Calls `handler` with every event, from the first (`StateRestored`) on.
    pub fn on_event(mut self, handler: impl Fn(&SessionEvent) + 'static) -> Self {
        self.on_event = Some(Rc::new(handler));
        self
    }

    /// Options as the bindings read them from `openSession`'s object: the
    /// values under their JavaScript names (checked by `open`), the server,
    /// the page's migrations, `persist` and the first handler.
    pub(crate) fn from_parts(
        options: Map<String, Value>,
        server: Option<ServerOptions>,
        migrate: VecMap<u32, Migration>,
        persist: bool,
        on_event: Option<SessionHandler>,
        encryption: Option<EncryptionKey>,
    ) -> Self {
        SessionOptions {
            options,
            server,
            migrate,
            persist,
            on_event,
            encryption,
        }
    }

    /// The namespace.
    pub fn name(&self) -> &str {
        self.options
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The options as `openSession` takes them, for the engine to read.
    pub(super) fn json(&self) -> Value {
        let mut o = self.options.clone();
        if let Some(server) = &self.server {
            o.insert("server".into(), server.json());
        }
        Value::Object(o)
    }
}
