//! The HTTP fallback, sans-IO: how the frames a link sends map onto the
//! server's HTTP API and how its answers come back as frames
//! (docs/PROTOCOL.md, "The link in the browser"). `hello` becomes
//! `GET /v1/sessions/{id}/changes?since=V&waitMs=0&client=C`, whose
//! `welcome` is the link's; a long-poll of the same endpoint then brings
//! other clients' changes, fed as `patch` frames (a `snapshot` catch-up ends
//! the transport: the next handshake fetches it); an `op` is POSTed to
//! `.../ops` and its answer is a frame; a `ping` is answered with a `pong`
//! when the next request completes. The driver does the requests.

use crate::core::error_text::decimal;
use crate::core::protocol::{self, CatchUp, Message, Pong};

/// Longest long-poll wait the server grants, ms.
pub const MAX_LONG_POLL_MS: u64 = 30_000;

/// What the driver does with a frame the link sends over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpRequest {
    /// `GET` this path (below the server's base URL); the answer is the
    /// link's `welcome` (or an `error`): hand it to
    /// [`HttpExchange::handle_hello_answer`], feed it to the link as it is,
    /// then run the long-poll.
    Hello {
        /// Path and query.
        path: String,
    },
    /// `POST` this body to [`HttpExchange::ops_path`], one at a time and in
    /// order (requests that overtook each other would reach the server out of
    /// sequence); the answer (`ack`, `reject` or `error`) is a frame.
    Op {
        /// The `op` frame, as the link made it.
        body: String,
    },
    /// Nothing to request: a `ping` is answered when the next request
    /// completes ([`HttpExchange::take_pong`]); other frames (`pong`, `bye`)
    /// have no HTTP counterpart.
    Nothing,
}

/// What one long-poll answer asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollAnswer {
    /// Feed these frames to the link in order, then poll again.
    Frames(Vec<String>),
    /// The server's log no longer reaches back to the version held: close
    /// the transport and report it closed (the next handshake fetches the
    /// snapshot).
    Reconnect,
}

/// One HTTP transport's view of the exchange: the version its long-poll asks
/// from, and a `ping` waiting for its `pong`.
#[derive(Debug, Clone)]
pub struct HttpExchange {
    session: String,
    client: String,
    wait_ms: u64,
    max_frame_bytes: usize,
    since: u64,
    pending_ping: Option<u64>,
}

impl HttpExchange {
    /// The exchange of `client` with session `session` (both 32 hex digits,
    /// safe in a URL), long-polls waiting `wait_ms` (at most
    /// [`MAX_LONG_POLL_MS`]), answers over `max_frame_bytes` refused.
    pub fn new(session: &str, client: &str, wait_ms: u64, max_frame_bytes: usize) -> Self {
        HttpExchange {
            session: session.into(),
            client: client.into(),
            wait_ms: wait_ms.min(MAX_LONG_POLL_MS),
            max_frame_bytes,
            since: 0,
            pending_ping: None,
        }
    }

    /// A long-poll's wait for a link pinging every `heartbeat_ms`: 80 % of
    /// it, so the `pong` of a ping arrives within the link's liveness window,
    /// at most [`MAX_LONG_POLL_MS`].
    pub fn default_wait_ms(heartbeat_ms: u64) -> u64 {
        (heartbeat_ms.saturating_mul(4) / 5).min(MAX_LONG_POLL_MS)
    }

    /// `/v1/sessions/{id}`: the session's own path.
    pub fn session_path(&self) -> String {
        ["/v1/sessions/", &self.session].concat()
    }

    /// Where ops are POSTed.
    pub fn ops_path(&self) -> String {
        [&self.session_path(), "/ops"].concat()
    }

    /// The next long-poll's path and query.
    pub fn poll_path(&self) -> String {
        self.changes_path(self.wait_ms)
    }

    fn changes_path(&self, wait_ms: u64) -> String {
        [
            &self.session_path(),
            "/changes?since=",
            &decimal(self.since),
            "&waitMs=",
            &decimal(wait_ms),
            "&client=",
            &self.client,
        ]
        .concat()
    }

    /// What to request for `frame`, a frame the link sent
    /// ([`Transmit::Send`](super::Transmit::Send)).
    pub fn send(&mut self, frame: &str) -> HttpRequest {
        match protocol::decode(frame.as_bytes(), usize::MAX) {
            Ok(Message::Hello(h)) => {
                self.since = h.have_version;
                HttpRequest::Hello {
                    path: self.changes_path(0),
                }
            }
            Ok(Message::Op(_)) => HttpRequest::Op { body: frame.into() },
            Ok(Message::Ping(p)) => {
                self.pending_ping = Some(p.ts);
                HttpRequest::Nothing
            }
            _ => HttpRequest::Nothing,
        }
    }

    /// Whether an answer with HTTP `status` and `body` is one for the link.
    /// A 5xx whose body is not a JSON frame (a proxy's "bad gateway") is
    /// not: the driver takes it as a network failure and closes the
    /// transport. A request that failed at the network level is one too.
    pub fn is_frame_answer(status: u16, body: &str) -> bool {
        status < 500 || body.trim_start().starts_with('{')
    }

    /// The `pong` of a `ping` sent since the last request completed, if any:
    /// the driver feeds it to the link when any request completes (`now` is
    /// the server's clock stand-in, the caller's ms clock).
    pub fn take_pong(&mut self, now: u64) -> Option<String> {
        self.pending_ping
            .take()
            .map(|ts| protocol::encode(&Message::Pong(Pong { ts, server_ts: now })))
    }

    /// The answer to `hello`: a `welcome` moves the long-poll on to its
    /// version. The driver feeds `body` to the link as it is either way.
    pub fn handle_hello_answer(&mut self, body: &str) {
        if let Ok(Message::Welcome(w)) = protocol::decode(body.as_bytes(), self.max_frame_bytes) {
            self.since = w.version;
        }
    }

    /// One long-poll answer. A `welcome` brings the changes since the
    /// version asked as `patch` frames (none when up to date); anything else
    /// (an `error`, a frame that does not decode) goes to the link as it is,
    /// which decides (auth, terminal, retry, `PROTOCOL_ERROR`).
    pub fn handle_poll_answer(&mut self, body: &str) -> PollAnswer {
        let Ok(Message::Welcome(w)) = protocol::decode(body.as_bytes(), self.max_frame_bytes)
        else {
            return PollAnswer::Frames(vec![body.into()]);
        };
        let frames = match w.catch_up {
            CatchUp::UpToDate => Vec::new(),
            CatchUp::Patches { patches } => patches
                .into_iter()
                .map(|p| protocol::encode(&Message::Patch(p)))
                .collect(),
            CatchUp::Snapshot { .. } => return PollAnswer::Reconnect,
        };
        self.since = self.since.max(w.version);
        PollAnswer::Frames(frames)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::core::protocol::{Hello, LoggedPatch, Op, OpId, Ping, Welcome, PROTOCOL_VERSION};

    const SESSION: &str = "fedcba9876543210fedcba9876543210";
    const CLIENT: &str = "0123456789abcdef0123456789abcdef";

    fn exchange() -> HttpExchange {
        HttpExchange::new(SESSION, CLIENT, 4_000, 1 << 20)
    }

    fn hello(have_version: u64) -> String {
        protocol::encode(&Message::Hello(Hello {
            protocol: PROTOCOL_VERSION.into(),
            session: SESSION.into(),
            token: "t".into(),
            client: CLIENT.into(),
            have_version,
        }))
    }

    fn welcome(version: u64, catch_up: CatchUp) -> String {
        protocol::encode(&Message::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            version,
            status: "cart".into(),
            expires_at: 9,
            heartbeat_ms: 1_000,
            applied_seq: 0,
            server_time: 0,
            catch_up,
        }))
    }

    fn patch(version: u64, patch: Value) -> LoggedPatch {
        LoggedPatch {
            version,
            patch,
            status: None,
            op: None,
        }
    }

    fn parsed(frame: &str) -> Value {
        serde_json::from_str(frame).unwrap()
    }

    #[test]
    fn hello_asks_for_the_changes_since_the_version_held_without_waiting() {
        let mut x = exchange();
        let want = "/v1/sessions/fedcba9876543210fedcba9876543210/changes?since=7&waitMs=0\
                    &client=0123456789abcdef0123456789abcdef";
        assert_eq!(x.send(&hello(7)), HttpRequest::Hello { path: want.into() });
        // Its welcome moves the long-poll on, which then waits.
        x.handle_hello_answer(&welcome(9, CatchUp::UpToDate));
        assert!(x.poll_path().contains("since=9&waitMs=4000&"));
        assert_eq!(
            x.ops_path(),
            "/v1/sessions/fedcba9876543210fedcba9876543210/ops"
        );
    }

    #[test]
    fn an_op_is_posted_as_it_is_and_a_ping_waits_for_the_next_answer() {
        let mut x = exchange();
        let op = protocol::encode(&Message::Op(Op {
            id: OpId {
                client: CLIENT.into(),
                seq: 1,
            },
            base: 1,
            patch: json!({"a": 1}),
            to: None,
        }));
        assert_eq!(x.send(&op), HttpRequest::Op { body: op.clone() });
        assert_eq!(x.take_pong(5), None, "no ping, no pong");
        let ping = protocol::encode(&Message::Ping(Ping { ts: 42 }));
        assert_eq!(x.send(&ping), HttpRequest::Nothing);
        let pong = parsed(&x.take_pong(50).unwrap());
        assert_eq!(pong, json!({"type": "pong", "ts": 42, "serverTs": 50}));
        assert_eq!(x.take_pong(60), None, "answered once");
        assert_eq!(x.send(r#"{"type":"bye"}"#), HttpRequest::Nothing);
        assert_eq!(x.send("not json"), HttpRequest::Nothing);
    }

    #[test]
    fn a_poll_answer_brings_patches_and_moves_on() {
        let mut x = exchange();
        let _ = x.send(&hello(3));
        let answer = welcome(
            5,
            CatchUp::Patches {
                patches: vec![patch(4, json!({"a": 1})), patch(5, json!({"b": 2}))],
            },
        );
        let PollAnswer::Frames(frames) = x.handle_poll_answer(&answer) else {
            panic!("frames expected");
        };
        let frames: Vec<Value> = frames.iter().map(|f| parsed(f)).collect();
        assert_eq!(
            frames,
            [
                json!({"type": "patch", "version": 4, "patch": {"a": 1}}),
                json!({"type": "patch", "version": 5, "patch": {"b": 2}}),
            ]
        );
        assert!(x.poll_path().contains("since=5&"));
        // Up to date: nothing to feed, same version.
        assert_eq!(
            x.handle_poll_answer(&welcome(5, CatchUp::UpToDate)),
            PollAnswer::Frames(vec![])
        );
        assert!(x.poll_path().contains("since=5&"));
    }

    #[test]
    fn a_snapshot_catch_up_ends_the_transport_and_other_answers_go_to_the_link() {
        let mut x = exchange();
        let snap = welcome(80, CatchUp::Snapshot { state: json!({}) });
        assert_eq!(x.handle_poll_answer(&snap), PollAnswer::Reconnect);
        assert!(x.poll_path().contains("since=0&"), "not moved on");
        let error = r#"{"type":"error","code":"INVALID_TOKEN","message":"m","retryable":false}"#;
        assert_eq!(
            x.handle_poll_answer(error),
            PollAnswer::Frames(vec![error.into()])
        );
        assert_eq!(
            x.handle_poll_answer("{garbage"),
            PollAnswer::Frames(vec!["{garbage".into()])
        );
    }

    #[test]
    fn only_a_5xx_without_a_frame_counts_as_a_network_failure() {
        assert!(HttpExchange::is_frame_answer(200, "{}"));
        assert!(HttpExchange::is_frame_answer(409, r#"{"type":"reject"}"#));
        assert!(HttpExchange::is_frame_answer(
            503,
            r#" {"type":"error","code":"SERVER_BUSY"}"#
        ));
        assert!(!HttpExchange::is_frame_answer(502, "bad gateway"));
        assert!(!HttpExchange::is_frame_answer(500, ""));
    }

    #[test]
    fn the_long_poll_waits_most_of_a_heartbeat_at_most_thirty_seconds() {
        assert_eq!(HttpExchange::default_wait_ms(5_000), 4_000);
        assert_eq!(HttpExchange::default_wait_ms(1), 0);
        assert_eq!(HttpExchange::default_wait_ms(u64::MAX), MAX_LONG_POLL_MS);
        let x = HttpExchange::new(SESSION, CLIENT, 90_000, 1 << 20);
        assert!(x.poll_path().contains("waitMs=30000&"));
    }
}
