//! The HTTP fallback transport: the requests of
//! [`HttpExchange`](crate::core::session::link::http::HttpExchange) made
//! with `fetch` (bearer token, no HTTP cache, one `AbortController` for the
//! whole connection): the `hello` request, then the long-poll until closed,
//! ops POSTed one at a time in order. Any request that fails at the network
//! level closes the transport, so the link backs off and tries again.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, Headers, RequestCache, RequestInit, Response};

use super::browser::now;
use super::transport::Sink;
use crate::core::protocol::DEFAULT_MAX_FRAME_BYTES;
use crate::core::session::link::http::{HttpExchange, HttpRequest, PollAnswer};
use crate::core::session::link::Transport;

struct State {
    done: bool,
    abort: Option<AbortController>,
    exchange: HttpExchange,
    base: String,
    token: String,
    posts: VecDeque<String>,
    posting: bool,
    sink: Sink,
}

type Shared = Rc<RefCell<State>>;

/// One HTTP "connection": the requests of one handshake and what follows.
pub(crate) struct HttpTransport {
    state: Shared,
}

impl HttpTransport {
    /// Opens the fallback to the API at `base` (absolute, no trailing slash)
    /// for `session` and `client`, long-polls waiting `long_poll_ms`. It
    /// reports itself connected right after this returns.
    pub fn open(
        base: &str,
        session: &str,
        client: &str,
        token: &str,
        long_poll_ms: u64,
        sink: Sink,
    ) -> Self {
        let state = Rc::new(RefCell::new(State {
            done: false,
            abort: AbortController::new().ok(),
            exchange: HttpExchange::new(session, client, long_poll_ms, DEFAULT_MAX_FRAME_BYTES),
            base: base.into(),
            token: token.into(),
            posts: VecDeque::new(),
            posting: false,
            sink,
        }));
        let s = state.clone();
        spawn_local(async move {
            if let Some(sink) = live_sink(&s) {
                sink.connected(Transport::Http);
            }
        });
        HttpTransport { state }
    }

    /// Hands one frame the link sent to the exchange, which says what to
    /// request.
    pub fn send(&self, frame: &str) {
        let what = {
            let mut s = self.state.borrow_mut();
            if s.done {
                return;
            }
            s.exchange.send(frame)
        };
        match what {
            HttpRequest::Hello { path } => spawn_local(hello(self.state.clone(), path)),
            HttpRequest::Op { body } => {
                let start = {
                    let mut s = self.state.borrow_mut();
                    s.posts.push_back(body);
                    !std::mem::replace(&mut s.posting, true)
                };
                if start {
                    spawn_local(post_all(self.state.clone()));
                }
            }
            _ => {}
        }
    }

    /// Aborts every request; reports nothing after this.
    pub fn close(self) {
        let mut s = self.state.borrow_mut();
        s.done = true;
        if let Some(a) = &s.abort {
            a.abort();
        }
    }
}

/// The sink while the transport is open.
fn live_sink(state: &Shared) -> Option<Sink> {
    let s = state.borrow();
    (!s.done).then(|| s.sink.clone())
}

/// Ends the transport after a network failure and says so (once).
fn fail(state: &Shared) {
    let sink = {
        let mut s = state.borrow_mut();
        if s.done {
            return;
        }
        s.done = true;
        if let Some(a) = &s.abort {
            a.abort();
        }
        s.sink.clone()
    };
    sink.closed();
}

/// One request to `path` (a POST with `body`); the answer's text when it is
/// one for the link, `None` when the transport ended (it is then closed).
async fn request(state: &Shared, path: &str, body: Option<&str>) -> Option<String> {
    let (url, init) = {
        let s = state.borrow();
        if s.done {
            return None;
        }
        let init = RequestInit::new();
        init.set_cache(RequestCache::NoStore);
        if let Some(a) = &s.abort {
            init.set_signal(Some(&a.signal()));
        }
        if let Ok(h) = Headers::new() {
            let _ = h.set("authorization", &["Bearer ", &s.token].concat());
            let _ = h.set("content-type", "application/json");
            init.set_headers(&h);
        }
        if let Some(body) = body {
            init.set_method("POST");
            init.set_body(&wasm_bindgen::JsValue::from_str(body));
        }
        ([s.base.as_str(), path].concat(), init)
    };
    let answer = fetch_text(&url, &init)
        .await
        .filter(|(status, text)| HttpExchange::is_frame_answer(*status, text));
    let Some((_, text)) = answer else {
        fail(state);
        return None;
    };
    let pong = {
        let mut s = state.borrow_mut();
        if s.done {
            return None;
        }
        s.exchange.take_pong(now())
    };
    if let (Some(pong), Some(sink)) = (pong, live_sink(state)) {
        sink.frame(pong);
    }
    live_sink(state).map(|_| text)
}

/// `fetch` and the body as text; `None` when either failed.
pub(crate) async fn fetch_text(url: &str, init: &RequestInit) -> Option<(u16, String)> {
    let window = web_sys::window()?;
    let response = JsFuture::from(window.fetch_with_str_and_init(url, init))
        .await
        .ok()?
        .dyn_into::<Response>()
        .ok()?;
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    Some((response.status(), text))
}

/// `hello`: its answer is the link's `welcome` (or an error); then the
/// long-poll runs until the transport ends.
async fn hello(state: Shared, path: String) {
    let Some(text) = request(&state, &path, None).await else {
        return;
    };
    state.borrow_mut().exchange.handle_hello_answer(&text);
    let Some(sink) = live_sink(&state) else {
        return;
    };
    sink.frame(text);
    poll(state).await;
}

async fn poll(state: Shared) {
    loop {
        let Some(path) = live_sink(&state).map(|_| state.borrow().exchange.poll_path()) else {
            return;
        };
        let Some(text) = request(&state, &path, None).await else {
            return;
        };
        let answer = state.borrow_mut().exchange.handle_poll_answer(&text);
        match answer {
            PollAnswer::Frames(frames) => {
                for f in frames {
                    match live_sink(&state) {
                        Some(sink) => sink.frame(f),
                        None => return,
                    }
                }
            }
            PollAnswer::Reconnect => return fail(&state),
        }
    }
}

/// POSTs the queued ops one at a time, each answer a frame.
async fn post_all(state: Shared) {
    loop {
        let next = {
            let mut s = state.borrow_mut();
            let next = if s.done { None } else { s.posts.pop_front() };
            if next.is_none() {
                s.posting = false;
            }
            next
        };
        let Some(body) = next else {
            return;
        };
        let path = state.borrow().exchange.ops_path();
        let Some(text) = request(&state, &path, Some(&body)).await else {
            state.borrow_mut().posting = false;
            return;
        };
        if let Some(sink) = live_sink(&state) {
            sink.frame(text);
        }
    }
}
