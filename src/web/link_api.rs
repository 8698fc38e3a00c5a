//! The `LinkCore` class: the core's sans-IO client link
//! (`crate::core::link::Link`) behind a small JS surface. The TypeScript
//! driver (`js/src/link/`) owns the sockets, fetches and timers; it feeds
//! inputs here and carries out what the polls return. Frames, events, the
//! view and the persisted record cross as JSON text, parsed by the engine.

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use crate::core::error::SessileError;
use crate::core::link::{
    Link, LinkConfig, LinkEvent, LinkState, LossReason, Outbox, Transmit, Transport,
};
use crate::core::merge_patch;
use crate::web::convert::{get, integer, to_js_error, MAX_SAFE_INTEGER};

/// Format version of the record written by `LinkCore.record()`.
const RECORD_FORMAT: u64 = 1;

/// One tab's link to the server for one session (see `docs/PROTOCOL.md`,
/// "The client link").
#[wasm_bindgen]
pub struct LinkCore {
    link: Link,
}

#[wasm_bindgen]
impl LinkCore {
    /// A link for `options.session` / `options.token` under client id
    /// `options.client`, resuming `options.record` (what `record()` wrote)
    /// or starting at `options.version` with `options.confirmed` (JSON text).
    /// Tuning: `heartbeatMs`, `backoffBaseMs`, `backoffCapMs`, `wsProbeMs`,
    /// `connectTimeoutMs`, `ackTimeoutMs`, `startOnHttp`, `seed`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &JsValue) -> Result<LinkCore, JsValue> {
        Self::build(options).map_err(to_js_error)
    }

    /// Starts connecting (the page wants the session).
    #[wasm_bindgen(js_name = handleOpen)]
    pub fn handle_open(&mut self, now: f64) {
        self.link.handle_open(ms(now));
    }

    /// The transport asked for (`"websocket"` or `"http"`) is open.
    #[wasm_bindgen(js_name = handleConnected)]
    pub fn handle_connected(&mut self, transport: &str, now: f64) {
        self.link.handle_connected(transport_of(transport), ms(now));
    }

    /// The transport closed or failed to open.
    #[wasm_bindgen(js_name = handleClosed)]
    pub fn handle_closed(&mut self, now: f64) {
        self.link.handle_closed(ms(now));
    }

    /// The browser went online (`true`) or offline.
    #[wasm_bindgen(js_name = handleOnline)]
    pub fn handle_online(&mut self, online: bool, now: f64) {
        self.link.handle_online(online, ms(now));
    }

    /// The page became visible (`true`) or hidden.
    #[wasm_bindgen(js_name = handleVisible)]
    pub fn handle_visible(&mut self, visible: bool, now: f64) {
        self.link.handle_visible(visible, ms(now));
    }

    /// The timer from `pollTimeout()` fired.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.link.handle_timeout(ms(now));
    }

    /// One inbound text frame.
    #[wasm_bindgen(js_name = handleFrame)]
    pub fn handle_frame(&mut self, frame: &str, now: f64) {
        self.link.handle_frame(frame.as_bytes(), ms(now));
    }

    /// A local change from `before` to `after` (JSON text of both): their
    /// merge patch becomes the next op. Returns the op's sequence, or 0 when
    /// nothing changed. `to` asks for a status change. Persist `record()`
    /// before sending what `pollTransmit()` gives.
    pub fn submit(
        &mut self,
        before: &str,
        after: &str,
        to: Option<String>,
        now: f64,
    ) -> Result<f64, JsValue> {
        let parse = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|_| SessileError::InvalidState {
                reason: "the state is not JSON".into(),
            })
        };
        let (before, after) = (
            parse(before).map_err(to_js_error)?,
            parse(after).map_err(to_js_error)?,
        );
        if !after.is_object() {
            return Err(to_js_error(SessileError::InvalidState {
                reason: "a synced state must be a JSON object".into(),
            }));
        }
        let patch = merge_patch::diff(&before, &after);
        if patch.as_object().is_some_and(|m| m.is_empty()) && to.is_none() {
            return Ok(0.0);
        }
        let id = self.link.submit(patch, to, ms(now)).map_err(to_js_error)?;
        Ok(id.seq as f64)
    }

    /// The next network action as JSON text (`{"kind":"open","transport"}`,
    /// `{"kind":"send","frame"}`, `{"kind":"close"}`), or undefined.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<String> {
        let t = self.link.poll_transmit()?;
        Some(
            match t {
                Transmit::Open(transport) => {
                    json!({"kind": "open", "transport": transport_name(transport)})
                }
                Transmit::Send(frame) => json!({"kind": "send", "frame": frame}),
                _ => json!({"kind": "close"}),
            }
            .to_string(),
        )
    }

    /// The next event as JSON text (`{"type": ...}`), or undefined.
    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<String> {
        let e = self.link.poll_event()?;
        Some(event_json(e).to_string())
    }

    /// When to call `handleTimeout` next (ms, the caller's clock).
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.link.poll_timeout().map(|t| t as f64)
    }

    /// What the page sees (server state plus unanswered ops), JSON text.
    pub fn view(&self) -> String {
        self.link.view().to_string()
    }

    /// The server version this client holds.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.link.version() as f64
    }

    /// The session's status as the server last said ("" until known).
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> String {
        self.link.status().into()
    }

    /// The session's expiry as the server last said (ms, 0 until known).
    #[wasm_bindgen(getter, js_name = expiresAt)]
    pub fn expires_at(&self) -> f64 {
        self.link.expires_at() as f64
    }

    /// Ops not yet answered.
    #[wasm_bindgen(getter, js_name = outboxLength)]
    pub fn outbox_length(&self) -> usize {
        self.link.outbox().len()
    }

    /// What to persist (crash-safe) after every change: version, confirmed
    /// state and outbox, as JSON text for `new LinkCore({record})`.
    pub fn record(&self) -> String {
        format!(
            r#"{{"format":{RECORD_FORMAT},"version":{},"confirmed":{},"outbox":{}}}"#,
            self.link.version(),
            self.link.confirmed(),
            self.link.outbox().encode()
        )
    }

    /// State, transport, preferred transport, RTT, outbox and counters as
    /// JSON text.
    pub fn diagnostics(&self) -> String {
        let d = self.link.diagnostics();
        let (state, transport) = match self.link.state() {
            LinkState::Idle => ("idle", None),
            LinkState::Connecting { transport } => ("connecting", Some(*transport)),
            LinkState::Handshaking { transport } => ("handshaking", Some(*transport)),
            LinkState::Connected { transport } => ("connected", Some(*transport)),
            LinkState::Backoff { .. } => ("backoff", None),
            LinkState::Offline => ("offline", None),
            _ => ("stopped", None),
        };
        let stopped = match self.link.state() {
            LinkState::Stopped { code } => Value::from(code.as_str()),
            _ => Value::Null,
        };
        json!({
            "state": state,
            "stoppedBy": stopped,
            "transport": transport.map(transport_name),
            "preferred": transport_name(d.preferred),
            "rttMs": d.srtt_ms.map(|r| r.round() as u64),
            "outbox": d.outbox_len,
            "connections": d.connections,
            "serverVersion": self.link.version(),
            "clientId": self.link.outbox().client(),
        })
        .to_string()
    }
}

impl LinkCore {
    fn build(options: &JsValue) -> Result<LinkCore, SessileError> {
        let text = |key: &'static str| {
            get(options, key)
                .and_then(|v| v.as_string())
                .ok_or(SessileError::InvalidOptions {
                    option: key,
                    reason: "is required (a string)".into(),
                })
        };
        let session = text("session")?;
        let token = text("token")?;
        let client = text("client")?;
        let seed = integer(options, "seed", MAX_SAFE_INTEGER)?.unwrap_or(0.0) as u64;
        let mut cfg = LinkConfig::new(&session, &token, seed);
        let tune: [(&'static str, &mut u64); 6] = [
            ("heartbeatMs", &mut cfg.heartbeat_ms),
            ("backoffBaseMs", &mut cfg.backoff_base_ms),
            ("backoffCapMs", &mut cfg.backoff_cap_ms),
            ("wsProbeMs", &mut cfg.ws_probe_ms),
            ("connectTimeoutMs", &mut cfg.connect_timeout_ms),
            ("ackTimeoutMs", &mut cfg.ack_timeout_ms),
        ];
        for (key, slot) in tune {
            if let Some(n) = integer(options, key, 86_400_000)? {
                *slot = (n as u64).max(1);
            }
        }
        cfg.start_on_http = get(options, "startOnHttp").is_some_and(|v| v.is_truthy());
        let (outbox, version, confirmed) = match get(options, "record").and_then(|v| v.as_string())
        {
            Some(record) => read_record(&record, &client)?,
            None => {
                let version = integer(options, "version", MAX_SAFE_INTEGER)?.unwrap_or(0.0) as u64;
                let confirmed = match get(options, "confirmed").and_then(|v| v.as_string()) {
                    Some(t) => {
                        serde_json::from_str(&t).map_err(|_| SessileError::InvalidOptions {
                            option: "confirmed",
                            reason: "is not JSON text".into(),
                        })?
                    }
                    None => crate::core::link::empty_state(),
                };
                (Outbox::new(&client)?, version, confirmed)
            }
        };
        Ok(LinkCore {
            link: Link::new(cfg, outbox, version, confirmed),
        })
    }
}

/// Reads a record `record()` wrote; `OUTBOX_CORRUPT` when it is not one, or
/// when it belongs to another client.
fn read_record(text: &str, client: &str) -> Result<(Outbox, u64, Value), SessileError> {
    let corrupt = |reason: &str| SessileError::CorruptOutbox {
        reason: reason.into(),
    };
    let mut v: Value = serde_json::from_str(text).map_err(|_| corrupt("record is not JSON"))?;
    if v["format"].as_u64() != Some(RECORD_FORMAT) {
        return Err(corrupt("unknown record format"));
    }
    let version = v["version"]
        .as_u64()
        .ok_or_else(|| corrupt("record has no version"))?;
    let confirmed = v["confirmed"].take();
    if !confirmed.is_object() {
        return Err(corrupt("record has no confirmed state"));
    }
    let outbox = Outbox::decode(v["outbox"].to_string().as_bytes())?;
    if outbox.client() != client {
        return Err(corrupt("record belongs to another client"));
    }
    Ok((outbox, version, confirmed))
}

fn ms(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

fn transport_of(name: &str) -> Transport {
    if name == "http" {
        Transport::Http
    } else {
        Transport::WebSocket
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Http => "http",
        _ => "websocket",
    }
}

fn loss_name(r: LossReason) -> &'static str {
    match r {
        LossReason::Closed => "closed",
        LossReason::Dead => "dead",
        LossReason::Timeout => "timeout",
        LossReason::Resync => "resync",
        LossReason::Offline => "offline",
        LossReason::Server => "server",
        _ => "upgrade",
    }
}

fn event_json(e: LinkEvent) -> Value {
    match e {
        LinkEvent::ConnectionEstablished { transport } => {
            json!({"type": "connection_established", "transport": transport_name(transport)})
        }
        LinkEvent::ConnectionLost { reason } => {
            json!({"type": "connection_lost", "reason": loss_name(reason)})
        }
        LinkEvent::ConnectionRestored { transport } => {
            json!({"type": "connection_restored", "transport": transport_name(transport)})
        }
        LinkEvent::StateSynchronized { version, confirmed } => {
            json!({"type": "state_synchronized", "version": version, "confirmed": confirmed})
        }
        LinkEvent::StatusChanged { status } => {
            json!({"type": "status_changed", "status": status})
        }
        LinkEvent::AuthFailed { code, message } => {
            json!({"type": "auth_failed", "code": code, "message": message})
        }
        LinkEvent::Conflict { op, local, server } => json!({
            "type": "conflict",
            "op": op.seq,
            "local": local,
            "server": server,
            "winner": "server",
        }),
        LinkEvent::ErrorOccurred {
            code,
            message,
            terminal,
        } => {
            json!({"type": "error_occurred", "code": code, "message": message, "terminal": terminal})
        }
    }
}
