//! The connection a link driver keeps open: a WebSocket or the HTTP
//! fallback, opened for one [`Transmit::Open`](crate::core::session::link::Transmit)
//! and reporting to a [`Sink`] (the link's driver, or the session's). Shared
//! by both drivers; it decides nothing.

use std::rc::Rc;

use super::http::HttpTransport;
use super::websocket::WsTransport;
use crate::core::session::link::Transport;

/// What a transport reports.
pub(crate) enum Report {
    /// It opened.
    Connected(Transport),
    /// One inbound text frame.
    Frame(String),
    /// It closed or failed to open (reported once).
    Closed,
}

/// Where a transport reports. The driver's closure checks that the
/// connection is still its current one (a later `Open` or a `Close` makes
/// it stale and silent).
#[derive(Clone)]
pub(crate) struct Sink(Rc<dyn Fn(Report)>);

impl Sink {
    /// A sink calling `report`.
    pub(crate) fn new(report: impl Fn(Report) + 'static) -> Self {
        Sink(Rc::new(report))
    }

    /// The transport opened.
    pub(crate) fn connected(&self, transport: Transport) {
        (self.0)(Report::Connected(transport));
    }

    /// One inbound frame.
    pub(crate) fn frame(&self, text: String) {
        (self.0)(Report::Frame(text));
    }

    /// The transport closed or failed to open.
    pub(crate) fn closed(&self) {
        (self.0)(Report::Closed);
    }
}

/// Who a connection speaks for, and where.
pub(crate) struct Target<'a> {
    /// The WebSocket URL.
    pub ws: &'a str,
    /// The HTTP API's base, absolute, without a trailing slash.
    pub http: &'a str,
    /// The server session id and its token.
    pub session: &'a str,
    pub token: &'a str,
    /// This tab's client id.
    pub client: &'a str,
    /// How long one HTTP long-poll waits, ms.
    pub long_poll_ms: u64,
}

/// The open connection.
pub(crate) enum Connection {
    Ws(WsTransport),
    Http(HttpTransport),
}

impl Connection {
    /// Opens `kind` to `target`, reporting to `sink`.
    pub(crate) fn open(kind: Transport, target: &Target<'_>, sink: Sink) -> Self {
        match kind {
            Transport::Http => Connection::Http(HttpTransport::open(
                target.http,
                target.session,
                target.client,
                target.token,
                target.long_poll_ms,
                sink,
            )),
            _ => Connection::Ws(WsTransport::open(target.ws, sink)),
        }
    }

    /// Sends one frame (dropped when the transport cannot take it).
    pub(crate) fn send(&self, frame: &str) {
        match self {
            Connection::Ws(t) => t.send(frame),
            Connection::Http(t) => t.send(frame),
        }
    }

    /// Closes it; it reports nothing after this.
    pub(crate) fn close(self) {
        match self {
            Connection::Ws(t) => t.close(),
            Connection::Http(t) => t.close(),
        }
    }
}
