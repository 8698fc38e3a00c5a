//! What the session's browser tests share: a "tab" (a `Session` and every
//! event it gave, from the first), options tuned so each case takes
//! seconds, waiting for an event with a deadline, and the server's view of
//! a session through its HTTP API and audit log (the link tests' fixture:
//! tests/web_link/support.rs).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use sessile::web::session::{ServerOptions, Session, SessionEvent, SessionOptions, Transport};

use super::link_support::{self, deadline, server_url, sleep, Proxy};

/// A session and its events.
pub struct Tab {
    pub session: Session,
    pub log: Rc<RefCell<Vec<SessionEvent>>>,
}

/// Opens a session with `options`, recording every event from the first.
pub async fn open(options: SessionOptions) -> Result<Tab, sessile::SessileError> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let sink = log.clone();
    let options = options.on_event(move |e| sink.borrow_mut().push(e.clone()));
    let session = Session::open(options).await?;
    Ok(Tab { session, log })
}

impl Tab {
    /// How many events so far (a mark for [`wait_after`](Self::wait_after)).
    pub fn mark(&self) -> usize {
        self.log.borrow().len()
    }

    /// The first event from `from` on that matches `pred`, waiting at most
    /// `ms`; a timeout says what was seen and where the session stands.
    pub async fn wait_after(
        &self,
        from: usize,
        ms: u32,
        what: &str,
        pred: impl Fn(&SessionEvent) -> bool,
    ) -> SessionEvent {
        let found = deadline(ms, async {
            loop {
                let hit = self.log.borrow()[from..].iter().find(|e| pred(e)).cloned();
                if let Some(e) = hit {
                    return e;
                }
                sleep(10).await;
            }
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "{what}: not within {ms} ms; events {:?}; {:?}",
                self.log.borrow(),
                self.session.diagnostics()
            )
        })
    }

    /// [`wait_after`](Self::wait_after) from the first event.
    pub async fn wait(
        &self,
        ms: u32,
        what: &str,
        pred: impl Fn(&SessionEvent) -> bool,
    ) -> SessionEvent {
        self.wait_after(0, ms, what, pred).await
    }

    /// Waits until the link is connected and synced (first or again).
    pub async fn connected_after(&self, from: usize) -> Transport {
        let e = self
            .wait_after(from, 8_000, "connected", |e| {
                matches!(
                    e,
                    SessionEvent::ConnectionEstablished { .. }
                        | SessionEvent::ConnectionRestored { .. }
                )
            })
            .await;
        match e {
            SessionEvent::ConnectionEstablished { transport }
            | SessionEvent::ConnectionRestored { transport } => transport,
            _ => unreachable!(),
        }
    }

    /// The server's side of this tab's session.
    pub async fn server(&self) -> link_support::Session {
        let s = self
            .session
            .server_session()
            .expect("the session exists on the server");
        link_support::Session {
            id: s.id,
            token: s.token,
            server: server_url().await,
            created: Value::Null,
        }
    }

    /// This tab's client id.
    pub fn client(&self) -> String {
        self.session.diagnostics().client.0
    }

    /// The codes of the `error_occurred` events so far.
    pub fn errors(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .filter_map(|e| match e {
                SessionEvent::ErrorOccurred { code, .. } => Some(code.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A namespace no other test uses.
pub fn namespace(test: &str) -> String {
    format!("session-{test}-{}", &link_support::client_id()[..8])
}

/// A local session of `ns` (IndexedDB), written without delay.
pub fn local(ns: &str) -> SessionOptions {
    SessionOptions::new(ns)
        .initial(json!({"cart": {}}))
        .debounce_ms(0)
        .persist(false)
}

/// A synced session of `ns` through `proxy`: heartbeat 500 ms, backoff
/// from 50 ms to 500 ms.
pub fn synced(ns: &str, proxy: &Proxy) -> SessionOptions {
    local(ns)
        .server(ServerOptions::new(&proxy.url))
        .option("heartbeatMs", json!(500))
        .option("backoffBaseMs", json!(50))
        .option("backoffCapMs", json!(500))
        .option("connectTimeoutMs", json!(2_000))
        .option("ackTimeoutMs", json!(5_000))
        .option("wsProbeMs", json!(60_000))
}

/// Opens a synced session and waits until it is connected.
pub async fn connected(ns: &str, proxy: &Proxy) -> Tab {
    let tab = open(synced(ns, proxy)).await.unwrap();
    tab.connected_after(0).await;
    tab
}

/// Adds one of product `sku` to the cart (`{cart: {sku: n}}`), as a shop's
/// button does: the count the page shows, plus one.
pub fn add(tab: &Tab, sku: &str) -> u64 {
    let n = tab.session.get()["cart"][sku].as_u64().unwrap_or(0) + 1;
    tab.session.update(json!({"cart": {sku: n}})).unwrap();
    n
}

/// The server's state of `tab`'s session.
pub async fn server_state(tab: &Tab) -> Value {
    tab.server().await.stored().await["state"].clone()
}

/// Whether an event is a retryable `error_occurred` with `code`.
pub fn error_with(code: &'static str) -> impl Fn(&SessionEvent) -> bool {
    move |e| matches!(e, SessionEvent::ErrorOccurred { code: c, terminal: false, .. } if c == code)
}

/// Lets `proxy` through and waits until `tab`'s server session is created,
/// connected and has every change.
pub async fn created_once_it_answers(tab: &Tab, proxy: &Proxy) {
    proxy.mode("pass").await;
    tab.wait(8_000, "created", |e| {
        matches!(e, SessionEvent::SessionCreated { .. })
    })
    .await;
    tab.connected_after(0).await;
    tab.session.flush().await.unwrap();
}
