//! What the link tells its driver: the transport kinds, the network actions
//! ([`Transmit`]), the states (each saying what the driver must do), the
//! events for the page, the configuration with its defaults and the
//! diagnostics. Plain data only; the machine itself is `mod.rs`.

use serde_json::Value;

use crate::core::protocol::{OpId, DEFAULT_MAX_FRAME_BYTES};

/// How frames travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// One WebSocket carrying text frames both ways (`GET /v1/ws`).
    WebSocket,
    /// The HTTP fallback: the driver maps `hello` to the long-poll
    /// `GET /v1/sessions/{id}/changes` (its `welcome` answer is a frame),
    /// `op` to `POST .../ops` (its `ack`/`reject` answer is a frame), and
    /// answers `ping` with a `pong` when the next request completes.
    Http,
}

/// A network action for the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Open a transport of this kind; report `handle_connected` or
    /// `handle_closed`.
    Open(Transport),
    /// Send this text frame on the open transport (made by
    /// [`protocol::encode`](crate::core::protocol::encode)).
    Send(String),
    /// Close the open (or opening) transport, and the standby if there is
    /// one, and drop their listeners; report nothing more for them.
    Close,
    /// The race (happy eyeballs): keep the WebSocket now opening aside, as
    /// the standby, without closing it; the next [`Transmit::Open`] opens
    /// the HTTP fallback beside it. Report the standby's opening with
    /// `handle_connected(Transport::WebSocket)` and its end with
    /// `handle_standby_closed`; it carries no frames until promoted.
    SetAside,
    /// Close the open transport and carry on with the standby in its place:
    /// frames now go to it, its frames and its end are reported as the open
    /// transport's (`handle_frame`, `handle_closed`).
    Promote,
    /// Close the standby and drop its listeners; report nothing for it.
    DropStandby,
}

/// Where the link stands; each variant says what the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Not started: call `handle_open` when the page wants the session.
    Idle,
    /// `Transmit::Open` was queued: report `handle_connected` or
    /// `handle_closed`, and call `handle_timeout` at `poll_timeout`.
    Connecting {
        /// The transport being opened.
        transport: Transport,
    },
    /// `hello` is sent: feed frames and call `handle_timeout` at
    /// `poll_timeout` until `welcome` arrives.
    Handshaking {
        /// The open transport.
        transport: Transport,
    },
    /// Live and synced: feed frames, send what `poll_transmit` gives, call
    /// `handle_timeout` at `poll_timeout`.
    Connected {
        /// The open transport.
        transport: Transport,
    },
    /// Waiting before the next attempt: call `handle_timeout` at `until`
    /// (also `poll_timeout`); `handle_visible(true)` or `handle_online(true)`
    /// tries at once.
    Backoff {
        /// When the next attempt starts, in the caller's ms clock.
        until: u64,
    },
    /// The browser is offline: nothing to do until `handle_online(true)`.
    Offline,
    /// Retries stopped for good (auth failed or a terminal server error,
    /// `code`): drop the link; local changes stay in the outbox.
    Stopped {
        /// The stable code that stopped it.
        code: String,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// The transport closed or failed to open.
    Closed,
    /// Nothing arrived for two heartbeat intervals.
    Dead,
    /// Opening or the handshake took longer than the connect timeout.
    Timeout,
    /// The link saw a gap it can only fill by reconnecting (a missing answer
    /// or version, a duplicate ack, `VERSION_AHEAD` at `hello`); it
    /// reconnects after its jittered backoff.
    Resync,
    /// The browser went offline.
    Offline,
    /// The server sent a retryable error or `bye`.
    Server,
    /// Switching from HTTP to a WebSocket (a probe, or the standby of the
    /// race once it opened).
    Upgrade,
    /// The page came back from the back/forward cache: the connection it
    /// had may have died while the page was frozen without the page
    /// hearing of it, so a new one is opened at once.
    Frozen,
}

/// Why the link uses (or prefers) the transport it does, for
/// [`Diagnostics::reason`] and [`LinkEvent::TransportPreferred`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportReason {
    /// The WebSocket: the first choice, or back after HTTP.
    WebSocket,
    /// HTTP carries the link because the WebSocket had not opened within
    /// [`LinkConfig::ws_race_ms`]; the WebSocket keeps opening beside it
    /// (the standby) and takes over once it opens.
    WebSocketSlow,
    /// HTTP is preferred because a WebSocket failed to open (refused, or not
    /// open within the connect timeout) while HTTP worked; the WebSocket is
    /// probed again after [`LinkConfig::ws_probe_ms`].
    WebSocketRefused,
    /// HTTP is preferred because WebSocket connections failed or dropped
    /// soon after opening [`LinkConfig::ws_failures_before_fallback`] times
    /// in a row; probed again later.
    WebSocketFlapping,
    /// HTTP is preferred because a refused WebSocket was remembered from an
    /// earlier page load ([`LinkConfig::start_on_http`]); probed again later.
    Remembered,
}

/// Something the page may want to know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The first `welcome`: connected and synced.
    ConnectionEstablished {
        /// The transport in use.
        transport: Transport,
    },
    /// A connection that had been established ended; the link retries.
    ConnectionLost {
        /// Why.
        reason: LossReason,
    },
    /// Connected and synced again after a loss.
    ConnectionRestored {
        /// The transport in use.
        transport: Transport,
    },
    /// The transport new connections use changed: to HTTP after a refused
    /// or flapping WebSocket, back to the WebSocket once one carried the
    /// link. A driver remembers a refused WebSocket for the next page load
    /// ([`stored::remember_after`](super::stored::remember_after)).
    TransportPreferred {
        /// The transport now preferred.
        transport: Transport,
        /// Why.
        reason: TransportReason,
    },
    /// The confirmed state reached `version`; `confirmed` ops left the
    /// outbox with it.
    StateSynchronized {
        /// The server version the client now holds.
        version: u64,
        /// How many of this client's ops the server confirmed with it.
        confirmed: usize,
    },
    /// The session's status changed (first known at the first `welcome`).
    StatusChanged {
        /// The new status.
        status: String,
    },
    /// The server refused the session's token or id; retries stopped.
    AuthFailed {
        /// `INVALID_TOKEN` or `SESSION_NOT_FOUND`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// An op conflicted with a newer change (`VERSION_CONFLICT`, or
    /// `VERSION_AHEAD`: made on a version the server lost); `winner` took it.
    Conflict {
        /// The op refused (its sequence is `op.seq`).
        op: OpId,
        /// Its patch (the local value).
        local: Value,
        /// The server's state that won (a copy: the link keeps its own).
        server: Value,
        /// Whose value the session now holds.
        winner: ConflictWinner,
    },
    /// An error a developer should see; `terminal` ones stopped retries.
    ErrorOccurred {
        /// Stable code.
        code: String,
        /// What happened.
        message: String,
        /// Retries stopped.
        terminal: bool,
    },
}

/// Who won a conflict. The server's value wins today; the variants to come
/// are other policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictWinner {
    /// The server's state stands; the local op is dropped.
    Server,
}

/// Settings of a link; [`LinkConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Session id (32 hex digits).
    pub session: String,
    /// The session's token, sent in `hello`.
    pub token: String,
    /// Ping interval; the link is dead after two intervals of silence (5 s).
    pub heartbeat_ms: u64,
    /// First backoff ceiling (250 ms).
    pub backoff_base_ms: u64,
    /// Largest backoff (30 s).
    pub backoff_cap_ms: u64,
    /// A connection up this long resets the backoff and the WebSocket failure
    /// count; one that drops sooner counts as a flap (10 s).
    pub stable_after_ms: u64,
    /// WebSocket open failures or flaps in a row before falling back to HTTP (3).
    pub ws_failures_before_fallback: u32,
    /// First wait before probing WebSocket again from HTTP, doubled after
    /// each failed probe, to at most 16 times as long (60 s).
    pub ws_probe_ms: u64,
    /// Start on HTTP (a refused WebSocket remembered from an earlier page
    /// load, kept by the web layer from [`LinkEvent::TransportPreferred`]);
    /// WebSocket is probed `ws_probe_ms` after the first attempt (false).
    pub start_on_http: bool,
    /// The race (happy eyeballs, as RFC 8305 does for addresses): a
    /// WebSocket not open this long after its attempt started gets the HTTP
    /// fallback opened beside it, and whichever is synced first carries the
    /// ops; the WebSocket takes over when it opens later, once no op is in
    /// flight. A WebSocket that fails to open starts HTTP at once. Set it to
    /// `connect_timeout_ms` or more to wait for the WebSocket alone (250 ms).
    pub ws_race_ms: u64,
    /// Longest wait for a transport to open and answer `hello` (10 s).
    pub connect_timeout_ms: u64,
    /// Longest wait for progress on sent ops or a missing version before
    /// reconnecting to resync (20 s).
    pub ack_timeout_ms: u64,
    /// Ops held before unsent ones are coalesced (64).
    pub outbox_limit: usize,
    /// Largest inbound frame accepted.
    pub max_frame_bytes: usize,
    /// Seed of the backoff jitter (random, from the caller).
    pub seed: u64,
}

impl LinkConfig {
    /// The defaults for `session` with `token`, jitter seeded by `seed`.
    pub fn new(session: &str, token: &str, seed: u64) -> Self {
        LinkConfig {
            session: session.into(),
            token: token.into(),
            heartbeat_ms: 5_000,
            backoff_base_ms: 250,
            backoff_cap_ms: 30_000,
            stable_after_ms: 10_000,
            ws_failures_before_fallback: 3,
            ws_probe_ms: 60_000,
            start_on_http: false,
            ws_race_ms: 250,
            connect_timeout_ms: 10_000,
            ack_timeout_ms: 20_000,
            outbox_limit: 64,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            seed,
        }
    }
}

/// Counters and sizes for `diagnostics()` and for tests that check nothing
/// grows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Diagnostics {
    /// Where the link stands (`stopped` with its code once retries ended).
    pub state: LinkState,
    /// The server version the client holds.
    pub version: u64,
    /// Smoothed round-trip time of pings, ms, once measured.
    pub srtt_ms: Option<f64>,
    /// Connections established so far.
    pub connections: u64,
    /// The transport new connections use (HTTP after a fallback).
    pub preferred: Transport,
    /// The transport carrying the link now (open and synced), if any.
    pub transport: Option<Transport>,
    /// Why [`transport`](Self::transport) (or, between connections,
    /// [`preferred`](Self::preferred)) is the one it is.
    pub reason: TransportReason,
    /// A WebSocket is opening (or open, waiting to take over) beside HTTP.
    pub standby: bool,
    /// A WebSocket probe from HTTP is under way (every `wsProbeMs`,
    /// doubling while it fails): the link left HTTP to try the WebSocket,
    /// or HTTP carries it while the WebSocket opens beside it; it is back
    /// on HTTP if the WebSocket does not open. Not a lost connection.
    pub probing: bool,
    /// Ops in the outbox.
    pub outbox_len: usize,
    /// Actions not yet polled.
    pub queued_transmits: usize,
    /// Events not yet polled.
    pub queued_events: usize,
    /// Out-of-order versions held until the gap before them fills.
    pub buffered_versions: usize,
}
