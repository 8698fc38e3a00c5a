//! What a session hears from the page and the other tabs: the document's
//! `visibilitychange` (hidden: the store writes at once; visible: the link
//! may try at once and the TTL is looked at), `pagehide` (rescue copy),
//! `pageshow` with `persisted` (back from the back/forward cache: the link
//! replaces a connection that may have died while the page was frozen),
//! `online` / `offline`, the `storage` event for the other tabs' entries
//! of the pending register, and the namespace's BroadcastChannel. A
//! `storage` event never reaches the document that wrote the value, so the
//! sessions of one namespace in this page hear each other's entries from
//! [`relay_register`] instead. Each input goes to the engine; nothing is
//! decided here.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

use super::driver::{input, Shared, WeakDriver};
use crate::core::session::store::layout::KEY_PREFIX;
use crate::web::crypt;
use crate::web::store::local;
use crate::web::store::page::{document_hidden, Listener};
use crate::web::store::tabs::TabChannel;

thread_local! {
    /// The live sessions of this page: namespace and driver.
    static PAGE: RefCell<Vec<(String, WeakDriver)>> = const { RefCell::new(Vec::new()) };
}

/// The start of the keys (without `sessile:`) of namespace `name`'s pending register.
fn register_prefix(name: &str) -> String {
    [name, ":pending:"].concat()
}

/// Listens to the page and to the other tabs for the session `shared`, and
/// lists it among this page's sessions.
pub(crate) fn install_hooks(shared: &Shared) {
    let weak = Rc::downgrade(shared);
    let name = shared.borrow().layout.name().to_string();
    let mut hooks = Vec::new();
    if let Some(window) = web_sys::window() {
        if let Some(document) = window.document() {
            let w = weak.clone();
            hooks.extend(Listener::new(&document, "visibilitychange", move |_| {
                input(&w, |d, now| {
                    let hidden = document_hidden();
                    if hidden {
                        d.engine.handle_hidden(now);
                    }
                    d.engine.handle_visible(!hidden, now);
                });
            }));
        }
        let w = weak.clone();
        hooks.extend(Listener::new(&window, "pageshow", move |event| {
            let persisted = event
                .dyn_ref::<web_sys::PageTransitionEvent>()
                .is_some_and(web_sys::PageTransitionEvent::persisted);
            if persisted {
                input(&w, |d, now| d.engine.handle_resumed(now));
            }
        }));
        let w = weak.clone();
        hooks.extend(Listener::new(&window, "pagehide", move |_| {
            input(&w, |d, now| d.engine.handle_pagehide(now));
        }));
        for (event, online) in [("online", true), ("offline", false)] {
            let w = weak.clone();
            hooks.extend(Listener::new(&window, event, move |_| {
                input(&w, move |d, now| d.engine.handle_online(online, now));
            }));
        }
        let w = weak.clone();
        let entries = register_prefix(&name);
        let prefix = [KEY_PREFIX, &entries].concat();
        hooks.extend(Listener::new(&window, "storage", move |event| {
            let Some(e) = event.dyn_ref::<web_sys::StorageEvent>() else {
                return;
            };
            let Some(client) = e
                .key()
                .and_then(|k| k.strip_prefix(&prefix).map(String::from))
            else {
                return;
            };
            let text = e.new_value();
            let key = w.upgrade().and_then(|d| d.try_borrow().ok()?.key.clone());
            match (key, text) {
                (Some(key), Some(text)) => {
                    let (w, stored) = (w.clone(), [entries.as_str(), &client].concat());
                    spawn_local(async move {
                        let Some(opened) = crypt::open_text(Some(&key), &text).await else {
                            return;
                        };
                        // A later value of the entry comes with its own event.
                        if local::read_text(&stored).ok().flatten().as_deref() != Some(&text) {
                            return;
                        }
                        input(&w, move |d, now| {
                            d.engine.handle_register_entry(&client, Some(&opened), now)
                        });
                    });
                }
                (_, text) => input(&w, move |d, now| {
                    d.engine
                        .handle_register_entry(&client, text.as_deref(), now)
                }),
            }
        }));
    }
    let w = weak.clone();
    let channel = TabChannel::open(&[KEY_PREFIX, &name].concat(), move |message| {
        input(&w, move |d, now| d.engine.handle_tab_message(message, now));
    });
    {
        let mut d = shared.borrow_mut();
        d.hooks = hooks;
        d.channel = channel;
    }
    PAGE.with(|page| {
        let mut page = page.borrow_mut();
        page.retain(|(_, d)| d.strong_count() > 0);
        page.push((name, weak));
    });
}

/// Tells this page's other sessions of the namespace of the register
/// entries `from` wrote (`(key, text)`, the key without `sessile:`), as the
/// `storage` event tells the other tabs: later, in their own task.
pub(crate) fn relay_register(from: &Shared, written: Vec<(String, Option<String>)>) {
    let me = Rc::downgrade(from);
    let name = from.borrow().layout.name().to_string();
    let prefix = register_prefix(&name);
    let others: Vec<WeakDriver> = PAGE.with(|page| {
        page.borrow()
            .iter()
            .filter(|(n, d)| *n == name && !d.ptr_eq(&me))
            .map(|(_, d)| d.clone())
            .collect()
    });
    if others.is_empty() {
        return;
    }
    for (key, text) in written {
        let Some(client) = key.strip_prefix(&prefix).map(String::from) else {
            continue;
        };
        for other in &others {
            let (other, client, text) = (other.clone(), client.clone(), text.clone());
            spawn_local(async move {
                input(&other, move |d, now| {
                    d.engine
                        .handle_register_entry(&client, text.as_deref(), now)
                });
            });
        }
    }
}
