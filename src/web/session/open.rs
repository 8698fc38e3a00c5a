//! Opening a session: the options checked before anything is touched,
//! the server's URLs, this tab's client id, the link record read, what the
//! browser holds for the namespace (`Found`), then the engine started and
//! awaited until its store is open.

use std::rc::Rc;

use super::driver::{pump, Changed, Driver, Shared, Start};
use super::identity::session_client;
use super::options::SessionOptions;
use super::page::install_hooks;
use super::records::Records;
use crate::core::error::SessileError;
use crate::core::session::engine::{
    record_limit, EnginePhase, Failure, Found, SessionConfig, SessionEngine, SessionEvent,
};
use crate::core::session::link::stored::fallback_key;
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{BackendKind, ClientId};
use web_sys::CryptoKey;

use crate::web::crypt;
use crate::web::link::browser::{is_online, local_get, random_seed};
use crate::web::link::options::Endpoint;
use crate::web::store::identity::client_for;
use crate::web::store::page::{now, request_persistence};
use crate::web::store::{local, signal};

/// A client id `from_options` accepts, to check the options before any is chosen.
const PROBE_CLIENT: &str = "00000000000000000000000000000000";

/// Opens the session of `options` and waits until its store is open.
pub(super) async fn start(options: SessionOptions) -> Result<Shared, SessileError> {
    let json = options.json();
    let probe = SessionConfig::from_options(&json, ClientId(PROBE_CLIENT.into()), 0)?;
    let endpoint = match &options.server {
        Some(s) => Some(Endpoint::resolve(&s.http, s.ws.as_deref())?),
        None => None,
    };
    let name = probe.store.name.clone();
    let key = match &options.encryption {
        Some(key) => Some(crypt::import(key).await?),
        None => None,
    };
    open_with_key(options, probe, endpoint, name, key).await
}

async fn open_with_key(
    options: SessionOptions,
    probe: SessionConfig,
    endpoint: Option<Endpoint>,
    name: String,
    key: Option<CryptoKey>,
) -> Result<Shared, SessileError> {
    let json = options.json();
    let probe_discard = probe.store.discard_local;
    let layout = Layout::new(&name);
    let synced = probe.sync.is_some();
    let mut early = Vec::new();
    let (client, lock) = if synced {
        let (client, lock, problem) = session_client(&layout).await;
        if let Some(e) = problem {
            early.push(error(&e, ""));
        }
        (client, lock)
    } else {
        client_for(&layout).await
    };
    let (records, record) = if synced {
        let limit = record_limit(probe.store.envelope.max_raw_bytes);
        let discard = probe.store.discard_local;
        open_records(
            &name,
            &client,
            probe.store.storage,
            limit,
            discard,
            key.clone(),
            &mut early,
        )
        .await?
    } else {
        (None, None)
    };
    let found = Found {
        session: local::read_text(&[name.as_str(), ":server"].concat())
            .ok()
            .flatten(),
        lifecycle: local::read_text(&[name.as_str(), ":lifecycle"].concat())
            .ok()
            .flatten(),
        record,
        fallback: local_get(&fallback_key(&name)),
        offline: !is_online(),
        register: register_entries(&name, key.as_ref()).await,
    };
    let config = SessionConfig::from_options(&json, client.clone(), random_seed())?;
    let long_poll_ms = config.sync.as_ref().map_or(0, |s| s.long_poll_ms);
    let engine = SessionEngine::new(config, found, now())?;
    let (opened, is_open) = signal::channel();
    let shared = Driver::new(Start {
        engine,
        layout,
        client,
        endpoint,
        long_poll_ms,
        records,
        migrate: options.migrate.clone(),
        client_lock: lock,
        opened,
        early,
        key,
    });
    if let Some(handler) = &options.on_event {
        let mut d = shared.borrow_mut();
        d.handlers.push((0, handler.clone()));
        d.next_handler = 1;
    }
    install_hooks(&shared);
    pump(&shared);
    is_open.await;
    let phase = shared.borrow().engine.phase().clone();
    match phase {
        EnginePhase::Ready if probe_discard => {
            // Whatever was stored when the page chose to drop it may go.
            let mut d = shared.borrow_mut();
            d.replaces_up_to = d.engine.diagnostics().store.stored_version;
        }
        EnginePhase::Ready => {}
        EnginePhase::Failed(error) => {
            shared.borrow_mut().release();
            return Err(error);
        }
        _ => {
            shared.borrow_mut().release();
            return Err(SessileError::StoreClosed);
        }
    }
    // As openSession always did: a created session's id is known when it
    // resolves (or the first attempt failed, and retries go on).
    while shared.borrow().engine.creating() && !shared.borrow().released {
        Changed::new(&shared).await;
    }
    let store = shared.borrow().engine.diagnostics().store.backend;
    if options.persist && store != Some(BackendKind::Memory) {
        let weak = Rc::downgrade(&shared);
        // Not awaited: a browser may ask the user and never answer.
        wasm_bindgen_futures::spawn_local(async move {
            let durable = request_persistence().await;
            if let Some(shared) = weak.upgrade() {
                shared.borrow_mut().durable = durable;
            }
        });
    }
    Ok(shared)
}

/// Opens this client's record store on `kind` (IndexedDB for `auto`) and
/// reads it: the store, and the newest valid record's text. A store that
/// cannot be opened or read is reported and replaced by one in memory (the
/// outbox then lasts as long as the page), as the link driver does. A
/// record the page's key cannot open stops the open (`KEY_REQUIRED`,
/// `DECRYPT_FAILED`), unless `discard`.
async fn open_records(
    name: &str,
    client: &ClientId,
    kind: Option<BackendKind>,
    limit: usize,
    discard: bool,
    key: Option<CryptoKey>,
    early: &mut Vec<SessionEvent>,
) -> Result<(Option<Rc<Records>>, Option<String>), SessileError> {
    let kind = kind.unwrap_or(BackendKind::IndexedDb);
    let opened = match Records::open(name, &client.0, kind, limit, key.clone()).await {
        Ok(records) => records.load().await.map(|r| (records, r)),
        Err(e) => Err(e),
    };
    Ok(match opened {
        Ok((records, restored)) => {
            if let Some(e) = restored.key_error().filter(|_| !discard) {
                return Err(e);
            }
            if let (None, Some(e)) = (&restored.text, restored.skipped.first()) {
                early.push(error(e, "the link's record could not be read: "));
            }
            (Some(records), restored.text)
        }
        Err(e) => {
            early.push(error(&e, "the link's record cannot be kept: "));
            let memory = Records::open(name, &client.0, BackendKind::Memory, limit, key).await;
            (memory.ok(), None)
        }
    })
}

/// The pending register's entries of namespace `name` (client, JSON text),
/// opened with `key` when the page has one (sealed entries; one that does
/// not open is left out, as one that does not read is).
async fn register_entries(name: &str, key: Option<&CryptoKey>) -> Vec<(String, String)> {
    let entries = local::read_under(&[name, ":pending:"].concat());
    if key.is_none() {
        return entries;
    }
    let mut opened = Vec::new();
    for (client, text) in entries {
        if let Some(text) = crypt::open_text(key, &text).await {
            opened.push((client, text));
        }
    }
    opened
}

fn error(e: &SessileError, context: &str) -> SessionEvent {
    let failure = Failure::from(e);
    SessionEvent::ErrorOccurred {
        code: failure.code,
        message: [context, &failure.message].concat(),
        terminal: false,
    }
}
