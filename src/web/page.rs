//! Small browser services the store needs: the clock, a sleep, futures as
//! promises, event listeners that are removed when their owner is dropped,
//! cookies, and `navigator.storage.persist()`. Nothing here keeps state of
//! its own.

use std::future::Future;
use std::pin::Pin;

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// A future as `future_to_promise` takes it, boxed.
type BoxedWork = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// Runs `work` and returns a promise of its result. Every caller shares one
/// `future_to_promise` instantiation over a boxed future: one copy of its
/// polling code in the wasm module instead of one per async method.
pub(crate) fn promise(work: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let work: BoxedWork = Box::pin(work);
    future_to_promise(work)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Resolves after `ms` milliseconds (immediately without a window).
pub(crate) async fn sleep_ms(ms: u64) {
    let promise = Promise::new(&mut |resolve, _| {
        let scheduled = web_sys::window().and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                ms.min(i32::MAX as u64) as i32,
            )
            .ok()
        });
        if scheduled.is_none() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// An event listener that removes itself when dropped.
pub(crate) struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut(web_sys::Event)>,
}

impl Listener {
    /// Listens for `event` on `target` until the returned value is dropped.
    pub(crate) fn new(
        target: &web_sys::EventTarget,
        event: &'static str,
        handler: impl FnMut(web_sys::Event) + 'static,
    ) -> Option<Self> {
        let callback = Closure::<dyn FnMut(web_sys::Event)>::new(handler);
        target
            .add_event_listener_with_callback(event, callback.as_ref().unchecked_ref())
            .ok()?;
        Some(Self {
            target: target.clone(),
            event,
            callback,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(
            self.event,
            self.callback.as_ref().unchecked_ref(),
        );
    }
}

/// Whether the document is hidden (tab in the background, page being left).
pub(crate) fn document_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden)
}

fn document() -> Option<JsValue> {
    web_sys::window()
        .and_then(|w| w.document())
        .map(JsValue::from)
}

fn cookie_name(namespace: &str) -> String {
    format!(
        "sessile_{}",
        String::from(js_sys::encode_uri_component(namespace))
    )
}

/// Reads the value of the eviction-marker cookie of `namespace`.
pub(crate) fn read_marker_cookie(namespace: &str) -> Option<String> {
    let all = Reflect::get(&document()?, &"cookie".into())
        .ok()?
        .as_string()?;
    let prefix = format!("{}=", cookie_name(namespace));
    // `document.cookie` joins cookies with "; " and no value holds a ';'.
    // Splitting on the char avoids the substring searcher (wasm size).
    all.split(';')
        .map(|c| c.strip_prefix(' ').unwrap_or(c))
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
}

/// Sets (or with `None` removes) the eviction-marker cookie of `namespace`.
pub(crate) fn write_marker_cookie(namespace: &str, value: Option<&str>) {
    let Some(doc) = document() else { return };
    let cookie = match value {
        Some(v) => format!(
            "{}={v}; Max-Age=31536000; Path=/; SameSite=Lax",
            cookie_name(namespace)
        ),
        None => format!(
            "{}=; Max-Age=0; Path=/; SameSite=Lax",
            cookie_name(namespace)
        ),
    };
    let _ = Reflect::set(&doc, &"cookie".into(), &cookie.into());
}

/// Asks the browser to keep this origin's storage (`navigator.storage.persist()`)
/// and resolves to whether it is persistent; `None` where the API is missing.
pub(crate) async fn request_persistence(ask: bool) -> Option<bool> {
    let navigator: JsValue = web_sys::window()?.navigator().into();
    let storage = Reflect::get(&navigator, &"storage".into()).ok()?;
    if storage.is_undefined() {
        return None;
    }
    let method = if ask { "persist" } else { "persisted" };
    let f: js_sys::Function = Reflect::get(&storage, &method.into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = f.call0(&storage).ok()?.dyn_into().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

/// Starts `navigator.storage.estimate()`; `None` where the browser has none.
pub(crate) fn start_quota_estimate() -> Option<Promise> {
    let navigator: JsValue = web_sys::window()?.navigator().into();
    let storage = Reflect::get(&navigator, &"storage".into()).ok()?;
    let f: js_sys::Function = Reflect::get(&storage, &"estimate".into())
        .ok()?
        .dyn_into()
        .ok()?;
    f.call0(&storage).ok()?.dyn_into().ok()
}

/// The quota in bytes from an estimate started by [`start_quota_estimate`].
pub(crate) async fn quota_of(estimate: Option<Promise>) -> Option<f64> {
    let estimate = JsFuture::from(estimate?).await.ok()?;
    Reflect::get(&estimate, &"quota".into()).ok()?.as_f64()
}
