//! The WebSocket endpoint `/v1/ws`: `hello` first (token inside, never in
//! the URL), then ops, extends and pings answered in order, and patches made
//! by other clients pushed as they commit. Bad frames get an `error` with a
//! code and the connection stays open; a connection silent for three
//! heartbeats, or one that falls too far behind on pushes, is closed.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use sessile::core::error::SessileError;
use sessile::core::protocol::{self, Bye, ErrorFrame, Extended, Hello, Message, Pong};
use std::sync::Arc;

use sessile::core::protocol::LoggedPatch;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{sleep_until, Instant};

use crate::engine::Metrics;
use crate::ids::now_ms;
use crate::AppState;

/// Most ops of one connection handed to the engine in one call.
const MAX_OPS_PER_CALL: usize = 256;
/// How long a new connection may take to send `hello`.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Accepts the upgrade. Frames up to twice the limit are read and answered
/// with `FRAME_TOO_LARGE`; larger ones close the connection (1009).
pub async fn upgrade(State(st): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let cap = st.config.max_frame_bytes.saturating_mul(2);
    // Small buffers: most frames are a few hundred bytes, and ten thousand
    // idle connections with the default 128 KiB read buffer cost over a GB.
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            Metrics::inc(&st.engine.metrics.ws_open);
            serve(socket, &st).await;
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
    /// Unreadable (a frame over twice the limit): close with 1009.
    Broken,
}

fn inbound(msg: Option<Result<WsMessage, axum::Error>>, max: usize) -> Inbound {
    match msg {
        Some(Ok(WsMessage::Text(t))) => Inbound::Frame(protocol::decode(t.as_bytes(), max)),
        Some(Ok(WsMessage::Binary(b))) => Inbound::Frame(protocol::decode(&b, max)),
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Inbound::Skip,
        Some(Ok(WsMessage::Close(_))) | None => Inbound::Closed,
        Some(Err(_)) => Inbound::Broken,
    }
}

async fn send(socket: &mut WebSocket, msg: &Message) -> bool {
    socket
        .send(WsMessage::Text(protocol::encode(msg).into()))
        .await
        .is_ok()
}

async fn send_error(socket: &mut WebSocket, st: &AppState, e: &SessileError) -> bool {
    Metrics::inc(&st.engine.metrics.frames_refused);
    send(socket, &Message::Error(ErrorFrame::from(e))).await
}

async fn close(socket: WebSocket, code: u16, reason: &str) {
    close_with(socket, code, reason, false).await;
}

/// Says `bye`, sends a close frame and waits briefly for the peer's close.
/// `unread`: bytes of an oversize frame are left unread in the socket.
async fn close_with(mut socket: WebSocket, code: u16, reason: &str, unread: bool) {
    let bye = Message::Bye(Bye {
        reason: Some(reason.into()),
    });
    let _ = send(&mut socket, &bye).await;
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
    // Closing a socket with unread bytes (the rest of an oversize frame,
    // which the WebSocket layer will not read) makes the kernel reset it;
    // holding it open a moment lets the peer read our close frame first.
    let linger = Instant::now() + Duration::from_secs(1);
    if unread {
        return sleep_until(linger).await;
    }
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(linger, socket.recv()).await {}
}

/// Waits for `hello` and answers it; `None` when the connection ended.
async fn handshake(socket: &mut WebSocket, st: &AppState) -> Option<Hello> {
    let deadline = Instant::now() + HELLO_WITHIN;
    loop {
        let next = tokio::select! {
            m = socket.recv() => m,
            _ = sleep_until(deadline) => return None,
        };
        let hello = match inbound(next, st.config.max_frame_bytes) {
            Inbound::Closed | Inbound::Broken => return None,
            Inbound::Skip => continue,
            Inbound::Frame(Ok(Message::Hello(h))) => h,
            Inbound::Frame(Ok(_)) => {
                let e = SessileError::ProtocolError {
                    reason: "send `hello` first".into(),
                };
                if !send_error(socket, st, &e).await {
                    return None;
                }
                continue;
            }
            Inbound::Frame(Err(e)) => {
                let fatal = matches!(e, SessileError::UnsupportedProtocolVersion { .. });
                if !send_error(socket, st, &e).await || fatal {
                    return None;
                }
                continue;
            }
        };
        let h2 = hello.clone();
        match st.engine.call(move |s| s.hello(&h2, now_ms())).await {
            Ok(welcome) => {
                return send(socket, &Message::Welcome(welcome))
                    .await
                    .then_some(hello);
            }
            Err(e) => {
                let _ = send_error(socket, st, &e).await;
                return None;
            }
        }
    }
}

async fn serve(mut socket: WebSocket, st: &AppState) {
    let Some(hello) = handshake(&mut socket, st).await else {
        return close(socket, 1008, "hello refused").await;
    };
    let mut pushes = st.engine.hub.subscribe(&hello.session);
    let idle = Duration::from_millis(st.config.heartbeat_ms.saturating_mul(3).max(1000));
    let mut deadline = Instant::now() + idle;
    // A frame read while batching ops that was not an op: handled next.
    let mut held: Option<Inbound> = None;
    let max = st.config.max_frame_bytes;
    loop {
        let next = match held.take() {
            Some(h) => h,
            None => tokio::select! {
                m = socket.recv() => inbound(m, max),
                p = pushes.recv() => {
                    let p = p.map_err(|e| match e {
                        RecvError::Lagged(_) => TryRecvError::Lagged(0),
                        RecvError::Closed => TryRecvError::Closed,
                    });
                    match forward(&mut socket, p, &hello.client).await {
                        Ok(_) => continue,
                        Err((code, why)) => return close(socket, code, why).await,
                    }
                }
                _ = sleep_until(deadline) => return close(socket, 1000, "idle").await,
            },
        };
        deadline = Instant::now() + idle;
        let msg = match next {
            Inbound::Closed => return,
            Inbound::Broken => return close_with(socket, 1009, "frame too large", true).await,
            Inbound::Skip => continue,
            Inbound::Frame(Ok(m)) => m,
            Inbound::Frame(Err(e)) => {
                if !send_error(&mut socket, st, &e).await {
                    return;
                }
                continue;
            }
        };
        let replies = match msg {
            Message::Op(op) => {
                // Ops already waiting on the socket go to the engine together
                // (one commit), and are answered in order.
                let mut ops = vec![op];
                while ops.len() < MAX_OPS_PER_CALL {
                    match ready_now(socket.recv()).map(|m| inbound(m, max)) {
                        Some(Inbound::Frame(Ok(Message::Op(op)))) => ops.push(op),
                        Some(other) => {
                            held = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                let session = hello.session.clone();
                let done = st.engine.call(move |s| {
                    let now = now_ms();
                    ops.into_iter().map(|op| s.op(&session, op, now)).collect()
                });
                match done.await {
                    Ok(answers) => answers,
                    Err(e) => vec![Message::Error(ErrorFrame::from(&e))],
                }
            }
            Message::Bye(_) => return close(socket, 1000, "bye").await,
            other => vec![answer(st, &hello, other).await],
        };
        for reply in replies {
            if let Message::Error(_) = reply {
                Metrics::inc(&st.engine.metrics.frames_refused);
            }
            if !send(&mut socket, &reply).await {
                return;
            }
        }
        // Each op of this client comes back on the push channel; drain it
        // now so a fast sender does not make its own connection lag.
        loop {
            match forward(&mut socket, pushes.try_recv(), &hello.client).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err((code, why)) => return close(socket, code, why).await,
            }
        }
    }
}

/// The answer to a client message other than `op` and `bye`.
async fn answer(st: &AppState, hello: &Hello, msg: Message) -> Message {
    match msg {
        Message::Ping(p) => Message::Pong(Pong {
            ts: p.ts,
            server_ts: now_ms(),
        }),
        Message::Extend(x) => {
            let session = hello.session.clone();
            let actor = hello.client.clone();
            let extended = st
                .engine
                .call(move |s| s.extend(&session, x.seconds, &actor, now_ms()))
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

/// Sends a pushed patch unless this client made it. `Ok(false)`: nothing
/// was waiting; `Err`: close with this code and reason.
async fn forward(
    socket: &mut WebSocket,
    pushed: Result<Arc<LoggedPatch>, TryRecvError>,
    client: &str,
) -> Result<bool, (u16, &'static str)> {
    match pushed {
        Ok(p) if p.op.as_ref().is_some_and(|o| o.client == client) => Ok(true),
        Ok(p) => match send(socket, &Message::Patch((*p).clone())).await {
            true => Ok(true),
            false => Err((1011, "send failed")),
        },
        Err(TryRecvError::Empty) => Ok(false),
        // Patches were missed: the client must reconnect and catch up.
        Err(TryRecvError::Lagged(_)) => Err((1013, "lagged; reconnect")),
        Err(TryRecvError::Closed) => Err((1001, "server closing")),
    }
}
