//! The WebSocket endpoint `/v1/ws`: admitted within the per-address caps,
//! `hello` first (token inside, never in the URL, within the hello timeout),
//! then ops, extends and pings answered in order, and what other clients
//! and the server did pushed as it commits (patches, `extended`, `ended`).
//! Bad protocol frames get an `error` with a code and the connection stays
//! open; a WebSocket-level violation is closed with its RFC 6455 code. The
//! connection is paced: past its message rate or its outbound byte budget
//! the server reads nothing more from it until it is within them again
//! (backpressure, nothing refused). A connection silent for three
//! heartbeats, or one that falls too far behind on pushes, is closed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use sessile::core::error::SessileError;
use sessile::core::protocol::{self, Bye, ErrorFrame, Extended, Hello, Message, Pong};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{sleep_until, Instant};

use crate::api::ApiError;
use crate::engine::{Metrics, Push, Subscription};
use crate::limits::{Peer, TokenBucket, WsPermit};
use crate::AppState;

/// Most ops of one connection handed to the engine in one call.
const MAX_OPS_PER_CALL: usize = 256;
/// Close code after `ended`: the session is over (HTTP's 410 in the
/// private range); the `bye` before it names `SESSION_CLOSED` or `SESSION_EXPIRED`.
pub const CLOSE_SESSION_ENDED: u16 = 4410;

/// Accepts the upgrade unless a per-address cap refuses it (429
/// `RATE_LIMITED` with `Retry-After`, before any WebSocket frame). Frames
/// up to twice the limit are read and answered with `FRAME_TOO_LARGE`;
/// larger ones close the connection (1009).
pub async fn upgrade(State(st): State<AppState>, Peer(ip): Peer, ws: WebSocketUpgrade) -> Response {
    let permit = match st.limits.open_ws(ip) {
        Ok(permit) => permit,
        Err(e) => return ApiError(e).into_response(),
    };
    let cap = st.config.max_frame_bytes.saturating_mul(2);
    // Small buffers: most frames are a few hundred bytes, and ten thousand
    // idle connections with the default 128 KiB read buffer cost over a GB.
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            Metrics::inc(&st.engine.metrics.ws_open);
            let conn = Conn::new(socket, &st);
            serve(conn, permit).await;
            st.engine
                .metrics
                .ws_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        })
}

/// What one inbound WebSocket message turned out to be.
enum Inbound {
    Frame(Result<Message, SessileError>),
    Skip,
    Closed,
    /// A WebSocket-level violation or a frame over twice the limit: close
    /// with this code and reason.
    Broken(u16, &'static str),
}

fn inbound(msg: Option<Result<WsMessage, axum::Error>>, max: usize) -> Inbound {
    match msg {
        Some(Ok(WsMessage::Text(t))) => Inbound::Frame(protocol::decode(t.as_bytes(), max)),
        Some(Ok(WsMessage::Binary(b))) => Inbound::Frame(protocol::decode(&b, max)),
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Inbound::Skip,
        Some(Ok(WsMessage::Close(_))) | None => Inbound::Closed,
        Some(Err(e)) => unreadable(e),
    }
}

/// The close code and reason for what the WebSocket layer could not read:
/// 1007 for a text frame that is not UTF-8, 1009 for a frame over the
/// limit, 1002 for the other violations of RFC 6455.
fn unreadable(e: axum::Error) -> Inbound {
    use tungstenite::error::{Error as WsError, ProtocolError as P};
    let inner = e.into_inner();
    let Some(e) = inner.downcast_ref::<WsError>() else {
        return Inbound::Broken(1011, "unreadable connection");
    };
    let reason = match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => {
            return Inbound::Closed
        }
        WsError::Utf8(_) => return Inbound::Broken(1007, "invalid UTF-8 in a text frame"),
        WsError::Capacity(_) => return Inbound::Broken(1009, "frame too large"),
        WsError::Protocol(P::ResetWithoutClosingHandshake) => return Inbound::Closed,
        WsError::Protocol(p) => match p {
            P::UnmaskedFrameFromClient => "unmasked frame from a client",
            P::NonZeroReservedBits => "reserved bits set without an extension",
            P::UnknownDataFrameType(_) | P::UnknownControlFrameType(_) | P::InvalidOpcode(_) => {
                "reserved opcode"
            }
            P::FragmentedControlFrame => "fragmented control frame",
            P::ControlFrameTooBig => "control frame over 125 bytes",
            P::UnexpectedContinueFrame | P::ExpectedFragment(_) => "broken fragmentation",
            P::InvalidCloseSequence => "invalid close frame",
            _ => "WebSocket protocol violation",
        },
        _ => return Inbound::Broken(1011, "unreadable connection"),
    };
    Inbound::Broken(1002, reason)
}

/// How a connection ends.
enum End {
    /// The peer closed or vanished: nothing left to say.
    Quiet,
    /// Say `bye` with this reason, then close with this code.
    Close(u16, String),
    /// The same after a frame the WebSocket layer could not read: its
    /// bytes may be left in the socket.
    Broken(u16, &'static str),
}

/// Why reading paused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pause {
    Rate,
    Sent,
}

/// One connection: its socket and its pace.
struct Conn<'a> {
    socket: WebSocket,
    st: &'a AppState,
    /// Messages read: one token each.
    read_rate: TokenBucket,
    /// Bytes sent: one token each, spent after the fact (a debt pauses reading).
    send_budget: TokenBucket,
    /// Why reading is paused now, if it is.
    paused: Option<Pause>,
    /// The version whose state a `VERSION_CONFLICT` reject already carried
    /// on this connection: later rejects at that version leave it out.
    current_sent: Option<u64>,
}

impl<'a> Conn<'a> {
    fn new(socket: WebSocket, st: &'a AppState) -> Self {
        let c = &st.config;
        let now = std::time::Instant::now();
        let burst = f64::from(c.ws_messages_burst.max(1));
        let sent_burst = c.max_frame_bytes.saturating_mul(2) as f64;
        Conn {
            socket,
            st,
            read_rate: TokenBucket::new(burst, f64::from(c.ws_messages_per_sec), now),
            send_budget: TokenBucket::new(sent_burst, c.ws_send_bytes_per_sec as f64, now),
            paused: None,
            current_sent: None,
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.st.engine.metrics
    }

    async fn send(&mut self, msg: &Message) -> bool {
        let text = protocol::encode(msg);
        self.send_budget
            .spend(text.len() as f64, std::time::Instant::now());
        self.socket.send(WsMessage::Text(text.into())).await.is_ok()
    }

    async fn send_error(&mut self, e: &SessileError) -> bool {
        Metrics::inc(&self.metrics().frames_refused);
        self.send(&Message::Error(ErrorFrame::from(e))).await
    }

    /// Sends an answer; a conflict's state goes once per version.
    async fn reply(&mut self, mut msg: Message) -> bool {
        match &mut msg {
            Message::Reject(r) => {
                if let Some(current) = &r.current {
                    if self.current_sent == Some(current.version) {
                        r.current = None;
                    } else {
                        self.current_sent = Some(current.version);
                    }
                }
            }
            Message::Error(_) => Metrics::inc(&self.metrics().frames_refused),
            _ => {}
        }
        self.send(&msg).await
    }

    /// When reading may go on, if it must wait now (counted once per pause).
    fn read_pause(&mut self) -> Option<Instant> {
        let now = std::time::Instant::now();
        let rate = self.read_rate.wait_for(1.0, now);
        let sent = self.send_budget.wait_for(0.0, now);
        let (why, wait) = if sent >= rate {
            (Pause::Sent, sent)
        } else {
            (Pause::Rate, rate)
        };
        if wait.is_zero() {
            self.paused = None;
            return None;
        }
        if self.paused != Some(why) {
            self.paused = Some(why);
            let m = self.metrics();
            Metrics::inc(match why {
                Pause::Rate => &m.ws_rate_paused,
                Pause::Sent => &m.ws_send_paused,
            });
        }
        Some(Instant::now() + wait)
    }

    /// Counts one message read against the rate.
    fn count_read(&mut self) {
        self.read_rate.spend(1.0, std::time::Instant::now());
    }

    /// Says `bye`, sends a close frame and waits briefly for the peer's close.
    async fn close(mut self, end: End) {
        let (code, reason, unread) = match end {
            End::Quiet => return,
            End::Close(code, reason) => (code, reason, false),
            End::Broken(code, reason) => (code, reason.to_string(), true),
        };
        let bye = Message::Bye(Bye {
            reason: Some(reason.clone()),
        });
        let _ = self.send(&bye).await;
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.socket.send(WsMessage::Close(Some(frame))).await;
        // Closing a socket with unread bytes (the rest of a frame the
        // WebSocket layer gave up on) makes the kernel reset it; holding it
        // open a moment lets the peer read our close frame first.
        let linger = Instant::now() + Duration::from_secs(1);
        if unread {
            return sleep_until(linger).await;
        }
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(linger, self.socket.recv()).await {}
    }
}

/// A welcomed connection: its hello, the pushes of its session (listened
/// to from before the welcome was read, so nothing committed in between is
/// missed), and the version the welcome gave.
struct Welcomed {
    hello: Hello,
    pushes: Subscription,
    version: u64,
}

/// Waits for `hello` and answers it; how the connection ends otherwise.
async fn handshake(conn: &mut Conn<'_>) -> Result<Welcomed, End> {
    let st = conn.st;
    let deadline = Instant::now() + Duration::from_millis(st.config.hello_timeout_ms.max(1));
    let max = st.config.max_frame_bytes;
    loop {
        let pause = conn.read_pause();
        let next = tokio::select! {
            m = conn.socket.recv(), if pause.is_none() => m,
            _ = sleep_until(pause.unwrap_or(deadline)), if pause.is_some() => continue,
            _ = sleep_until(deadline) => {
                Metrics::inc(&conn.metrics().ws_hello_timeouts);
                return Err(End::Close(1008, "hello timeout".into()));
            }
        };
        conn.count_read();
        let hello = match inbound(next, max) {
            Inbound::Closed => return Err(End::Quiet),
            Inbound::Broken(code, reason) => return Err(End::Broken(code, reason)),
            Inbound::Skip => continue,
            Inbound::Frame(Ok(Message::Hello(h))) => h,
            Inbound::Frame(Ok(_)) => {
                let e = SessileError::ProtocolError {
                    reason: "send `hello` first".into(),
                };
                if !conn.send_error(&e).await {
                    return Err(End::Quiet);
                }
                continue;
            }
            Inbound::Frame(Err(e)) => {
                let fatal = matches!(e, SessileError::UnsupportedProtocolVersion { .. });
                if !conn.send_error(&e).await {
                    return Err(End::Quiet);
                }
                if fatal {
                    return Err(End::Close(1008, "hello refused".into()));
                }
                continue;
            }
        };
        let (h2, clock) = (hello.clone(), st.config.clock.clone());
        // Listening before the welcome is read; a refused hello drops the
        // subscription, and with the last one the session's channel goes.
        let pushes = st.engine.hub.subscribe(&hello.session);
        return match st.engine.call(move |s| s.hello(&h2, clock.now_ms())).await {
            Ok(welcome) => {
                let version = welcome.version;
                match conn.send(&Message::Welcome(welcome)).await {
                    true => Ok(Welcomed {
                        hello,
                        pushes,
                        version,
                    }),
                    false => Err(End::Quiet),
                }
            }
            Err(e) => {
                let _ = conn.send_error(&e).await;
                Err(End::Close(1008, "hello refused".into()))
            }
        };
    }
}

async fn serve(mut conn: Conn<'_>, mut permit: WsPermit) {
    let welcomed = match handshake(&mut conn).await {
        Ok(w) => w,
        Err(end) => return conn.close(end).await,
    };
    permit.welcomed();
    let end = session(&mut conn, welcomed).await;
    conn.close(end).await;
}

/// The welcomed connection of `hello.client` to `hello.session`, until it
/// ends. Its patches go out in order of version, each once: `have` is the
/// last one it was given (or skipped, its own).
async fn session(conn: &mut Conn<'_>, welcomed: Welcomed) -> End {
    let st = conn.st;
    let Welcomed {
        hello,
        mut pushes,
        version: mut have,
    } = welcomed;
    let hello = &hello;
    let idle = Duration::from_millis(st.config.heartbeat_ms.saturating_mul(3).max(1000));
    let mut deadline = Instant::now() + idle;
    // A frame read while batching ops that was not an op: handled next.
    let mut held: Option<Inbound> = None;
    let max = st.config.max_frame_bytes;
    loop {
        let next = match held.take() {
            Some(h) => h,
            None => {
                let pause = conn.read_pause();
                tokio::select! {
                    m = conn.socket.recv(), if pause.is_none() => {
                        conn.count_read();
                        inbound(m, max)
                    }
                    p = pushes.recv() => {
                        let p = p.map_err(|e| match e {
                            RecvError::Lagged(_) => TryRecvError::Lagged(0),
                            RecvError::Closed => TryRecvError::Closed,
                        });
                        match forward(conn, p, &hello.client, &mut have).await {
                            Ok(_) => continue,
                            Err(end) => return end,
                        }
                    }
                    // Paused by us: the client's silence is not idleness.
                    _ = sleep_until(pause.unwrap_or(deadline)), if pause.is_some() => {
                        deadline = deadline.max(Instant::now() + idle);
                        continue;
                    }
                    _ = sleep_until(deadline), if pause.is_none() => {
                        return End::Close(1000, "idle".into());
                    }
                }
            }
        };
        deadline = Instant::now() + idle;
        let msg = match next {
            Inbound::Closed => return End::Quiet,
            Inbound::Broken(code, reason) => return End::Broken(code, reason),
            Inbound::Skip => continue,
            Inbound::Frame(Ok(m)) => m,
            Inbound::Frame(Err(e)) => {
                if !conn.send_error(&e).await {
                    return End::Quiet;
                }
                continue;
            }
        };
        let replies = match msg {
            Message::Op(op) => {
                // Ops already waiting on the socket go to the engine together
                // (one commit), and are answered in order; as many as the
                // message rate allows.
                let mut ops = vec![op];
                while ops.len() < MAX_OPS_PER_CALL && conn.read_pause().is_none() {
                    let Some(m) = ready_now(conn.socket.recv()) else {
                        break;
                    };
                    conn.count_read();
                    match inbound(m, max) {
                        Inbound::Frame(Ok(Message::Op(op))) => ops.push(op),
                        other => {
                            held = Some(other);
                            break;
                        }
                    }
                }
                let (session, clock) = (hello.session.clone(), st.config.clock.clone());
                let n = ops.len() as u64;
                let started = std::time::Instant::now();
                let done = st.engine.call(move |s| {
                    let now = clock.now_ms();
                    ops.iter()
                        .map(|op| s.op(&session, op.clone(), now))
                        .collect()
                });
                match done.await {
                    Ok(answers) => {
                        st.engine.metrics.ack_latency.record(started.elapsed(), n);
                        answers
                    }
                    Err(e) => vec![Message::Error(ErrorFrame::from(&e))],
                }
            }
            Message::Bye(_) => return End::Close(1000, "bye".into()),
            other => vec![answer(st, hello, other).await],
        };
        for reply in replies {
            if !conn.reply(reply).await {
                return End::Quiet;
            }
        }
        // Each op of this client comes back on the push channel; drain it
        // now so a fast sender does not make its own connection lag.
        loop {
            match forward(conn, pushes.try_recv(), &hello.client, &mut have).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(end) => return end,
            }
        }
    }
}

/// The answer to a client message other than `op` and `bye`.
async fn answer(st: &AppState, hello: &Hello, msg: Message) -> Message {
    match msg {
        Message::Ping(p) => Message::Pong(Pong {
            ts: p.ts,
            server_ts: st.now(),
        }),
        Message::Extend(x) => {
            let session = hello.session.clone();
            let actor = hello.client.clone();
            let clock = st.config.clock.clone();
            let extended = st
                .engine
                .call(move |s| s.extend(&session, x.seconds, &actor, clock.now_ms()))
                .await;
            match extended {
                Ok(expires_at) => Message::Extended(Extended { expires_at }),
                Err(e) => Message::Error(ErrorFrame::from(&e)),
            }
        }
        _ => Message::Error(ErrorFrame::from(&SessileError::ProtocolError {
            reason: "unexpected message from a client".into(),
        })),
    }
}

/// The output of `fut` if it is ready without waiting (a frame already
/// buffered); dropping it otherwise is safe for the socket's `recv`.
fn ready_now<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Sends a push unless this client caused it: a patch, `extended`, or
/// `ended` (after which the connection closes). A patch at or below `have`
/// (the version the client holds) was sent already, or is older than its
/// welcome: skipped. One past `have + 1` means versions were missed (a
/// change another server made that this one has not read yet): the client
/// reconnects and catches up by version rather than hold a gap.
/// `Ok(false)`: nothing was waiting; `Err`: end the connection so.
async fn forward(
    conn: &mut Conn<'_>,
    pushed: Result<Arc<Push>, TryRecvError>,
    client: &str,
    have: &mut u64,
) -> Result<bool, End> {
    let push = match pushed {
        Ok(push) => push,
        Err(TryRecvError::Empty) => return Ok(false),
        // Pushes were missed: the client must reconnect and catch up.
        Err(TryRecvError::Lagged(_)) => return Err(End::Close(1013, "lagged; reconnect".into())),
        Err(TryRecvError::Closed) => return Err(End::Close(1001, "server closing".into())),
    };
    if let Push::Patch(p) = &*push {
        if p.version <= *have {
            return Ok(true);
        }
        if p.version > *have + 1 {
            return Err(End::Close(1013, "missed versions; reconnect".into()));
        }
        *have = p.version;
    }
    let msg = match &*push {
        Push::Patch(p) if p.op.as_ref().is_some_and(|o| o.client == client) => return Ok(true),
        Push::Patch(p) => Message::Patch(p.clone()),
        Push::Extended { by, .. } if by == client => return Ok(true),
        Push::Extended { expires_at, .. } => Message::Extended(Extended {
            expires_at: *expires_at,
        }),
        Push::Ended(ended) => {
            if !conn.send(&Message::Ended(ended.clone())).await {
                return Err(End::Quiet);
            }
            return Err(End::Close(CLOSE_SESSION_ENDED, ended.code.clone()));
        }
    };
    match conn.send(&msg).await {
        true => Ok(true),
        false => Err(End::Quiet),
    }
}
