//! The WebSocket transport: one socket carrying protocol text frames both
//! ways. It reports open, each text frame and its end (close or error,
//! once) to its sink, and goes silent once closed by the driver.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Event, MessageEvent, WebSocket};

use super::transport::Sink;
use crate::core::session::link::Transport;

/// The close code and reason of a socket the link closes on purpose.
const NORMAL_CLOSE: u16 = 1000;

/// One WebSocket connection (or the failure to make one).
pub(crate) struct WsTransport {
    socket: Option<WebSocket>,
    done: Rc<Cell<bool>>,
    _handlers: Vec<Closure<dyn FnMut(Event)>>,
}

impl WsTransport {
    /// Opens a socket to `url`. A URL the browser refuses outright is
    /// reported closed (after this returns), as a refused connection is.
    pub fn open(url: &str, sink: Sink) -> Self {
        let done = Rc::new(Cell::new(false));
        let Ok(socket) = WebSocket::new(url) else {
            let done2 = done.clone();
            spawn_local(async move {
                if !done2.replace(true) {
                    sink.closed();
                }
            });
            return WsTransport {
                socket: None,
                done,
                _handlers: Vec::new(),
            };
        };
        let on_open = {
            let (sink, done) = (sink.clone(), done.clone());
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                if !done.get() {
                    sink.connected(Transport::WebSocket);
                }
            })
        };
        let on_message = {
            let (sink, done) = (sink.clone(), done.clone());
            Closure::<dyn FnMut(Event)>::new(move |e: Event| {
                let text = e
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().as_string());
                // The server sends text frames only; anything else is ignored.
                if let (false, Some(text)) = (done.get(), text) {
                    sink.frame(text);
                }
            })
        };
        let on_end = {
            let done = done.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                if !done.replace(true) {
                    sink.closed();
                }
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_end.as_ref().unchecked_ref()));
        socket.set_onerror(Some(on_end.as_ref().unchecked_ref()));
        WsTransport {
            socket: Some(socket),
            done,
            _handlers: vec![on_open, on_message, on_end],
        }
    }

    /// Sends one frame while the socket is open (dropped otherwise: the link
    /// re-sends what matters after its next `welcome`).
    pub fn send(&self, frame: &str) {
        if let Some(s) = &self.socket {
            if !self.done.get() && s.ready_state() == WebSocket::OPEN {
                let _ = s.send_with_str(frame);
            }
        }
    }

    /// Closes the socket (1000 `bye`) and drops its handlers; reports
    /// nothing after this.
    pub fn close(self) {
        self.done.set(true);
        if let Some(s) = &self.socket {
            s.set_onopen(None);
            s.set_onmessage(None);
            s.set_onclose(None);
            s.set_onerror(None);
            let _ = s.close_with_code_and_reason(NORMAL_CLOSE, "bye");
        }
    }
}
