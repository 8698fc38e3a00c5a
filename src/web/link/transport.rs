//! The connections a link driver keeps open: a WebSocket or the HTTP
//! fallback, opened for one [`Transmit::Open`], reporting to a [`Sink`]
//! (the link's driver, or the session's), and the standby of the race
//! beside it ([`Connections`]). Shared by both drivers; it decides nothing.

use std::rc::Rc;

use super::http::HttpTransport;
use super::websocket::WsTransport;
use crate::core::session::link::{Transmit, Transport};

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

/// Which of a driver's connections reported.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The open (or opening) transport, which carries the frames.
    Current,
    /// The WebSocket of the race, set aside beside HTTP.
    Standby,
}

/// A driver's connections: the current one and the standby of the race,
/// each with its generation (a later `Open` or a `Close` makes older
/// generations stale, so their reports go unheard). It carries out the
/// engine's network actions and decides nothing.
#[derive(Default)]
pub(crate) struct Connections {
    current: Option<(u64, Connection)>,
    standby: Option<(u64, Connection)>,
    generations: u64,
}

impl Connections {
    /// No connection yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The generation of the connection about to be opened with
    /// [`opened`](Self::opened) (reports of older ones go unheard).
    pub(crate) fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// `c`, of generation `generation`, is the current connection now; the
    /// one before it is closed.
    pub(crate) fn opened(&mut self, generation: u64, c: Connection) {
        if let Some((_, old)) = self.current.replace((generation, c)) {
            old.close();
        }
    }

    /// Carries out a network action other than `Open`: `Send` on the
    /// current connection, `Close` (both), `SetAside`, `Promote`,
    /// `DropStandby`.
    pub(crate) fn act(&mut self, t: Transmit) {
        match t {
            Transmit::Send(frame) => {
                if let Some((_, c)) = &self.current {
                    c.send(&frame);
                }
            }
            Transmit::Close => {
                self.next_generation();
                self.close_all();
            }
            Transmit::SetAside => {
                if let Some(c) = self.current.take() {
                    if let Some((_, old)) = self.standby.replace(c) {
                        old.close();
                    }
                }
            }
            Transmit::Promote => {
                if let Some(c) = self.standby.take() {
                    if let Some((_, old)) = self.current.replace(c) {
                        old.close();
                    }
                }
            }
            Transmit::DropStandby => {
                if let Some((_, c)) = self.standby.take() {
                    c.close();
                }
            }
            _ => {}
        }
    }

    /// Which connection `generation` is, while it is current or the standby.
    pub(crate) fn role(&self, generation: u64) -> Option<Role> {
        let is = |c: &Option<(u64, Connection)>| c.as_ref().is_some_and(|(g, _)| *g == generation);
        if is(&self.current) {
            Some(Role::Current)
        } else if is(&self.standby) {
            Some(Role::Standby)
        } else {
            None
        }
    }

    /// The connection in `role` ended on its own: it is closed and forgotten.
    pub(crate) fn ended(&mut self, role: Role) {
        let gone = match role {
            Role::Current => self.current.take(),
            Role::Standby => self.standby.take(),
        };
        if let Some((_, c)) = gone {
            c.close();
        }
    }

    /// Closes every connection; none reports again.
    pub(crate) fn close_all(&mut self) {
        for (_, c) in [self.current.take(), self.standby.take()]
            .into_iter()
            .flatten()
        {
            c.close();
        }
    }
}
