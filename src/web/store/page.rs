//! Small browser services the store driver needs, each safe without a
//! window: the clock, random bytes, event listeners removed with their
//! owner, whether the document is hidden, the eviction-marker cookie,
//! `navigator.storage` (quota estimate, `persist()`) and the name and
//! message of a thrown value. Nothing here keeps state or decides.

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::session::store::layout::Layout;

#[wasm_bindgen]
extern "C" {
    /// `navigator.storage` (web-sys has it only behind a feature this crate
    /// does not need otherwise).
    type StorageManagerRef;
    #[wasm_bindgen(method, catch)]
    fn estimate(this: &StorageManagerRef) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn persist(this: &StorageManagerRef) -> Result<Promise, JsValue>;
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// 16 random bytes: `crypto.getRandomValues`, or `Math.random` where there
/// is no Web Crypto.
pub(crate) fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    let drawn = crypto.is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !drawn {
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

/// The field `key` of a JS value, if it is an object that has it.
pub(crate) fn field(value: &JsValue, key: &str) -> JsValue {
    if !value.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The `name` of a thrown value (`QuotaExceededError`, ...), or "".
pub(crate) fn js_name(thrown: &JsValue) -> String {
    field(thrown, "name").as_string().unwrap_or_default()
}

/// The `message` of a thrown value, or the value itself as text.
pub(crate) fn js_message(thrown: &JsValue) -> String {
    field(thrown, "message")
        .as_string()
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| "unknown error".into())
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

/// Whether the document is hidden (a background tab, a page being left).
pub(crate) fn document_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden)
}

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

fn cookie_name(ns: &str) -> String {
    Layout::cookie_name(&String::from(js_sys::encode_uri_component(ns)))
}

/// The eviction-marker cookie of namespace `ns`.
pub(crate) fn read_marker_cookie(ns: &str) -> Option<String> {
    let cookies = field(&document()?.into(), "cookie").as_string()?;
    let prefix = [cookie_name(ns), "=".into()].concat();
    // `document.cookie` joins cookies with "; " and no value holds a ';'.
    cookies
        .split(';')
        .map(|c| c.strip_prefix(' ').unwrap_or(c))
        .find_map(|c| c.strip_prefix(prefix.as_str()).map(String::from))
}

/// Sets (or with `None` removes) the eviction-marker cookie of `ns`.
pub(crate) fn write_marker_cookie(ns: &str, value: Option<&str>) {
    let Some(doc) = document() else { return };
    let age = if value.is_some() { "31536000" } else { "0" };
    let text = [
        &cookie_name(ns),
        "=",
        value.unwrap_or(""),
        "; Max-Age=",
        age,
        "; Path=/; SameSite=Lax",
    ]
    .concat();
    let _ = Reflect::set(&doc, &"cookie".into(), &text.into());
}

fn storage_manager() -> Option<StorageManagerRef> {
    let navigator = web_sys::window()?.navigator();
    let storage = field(&navigator.into(), "storage");
    storage.is_object().then(|| storage.unchecked_into())
}

/// The origin's quota in bytes (`navigator.storage.estimate()`), `None`
/// when the browser does not say.
pub(crate) async fn quota() -> Option<f64> {
    let promise = storage_manager()?.estimate().ok()?;
    let estimate = JsFuture::from(promise).await.ok()?;
    field(&estimate, "quota").as_f64()
}

/// Asks the browser to keep this origin's storage (`persist()`); whether it
/// is persistent, `None` where the API is missing or fails.
pub(crate) async fn request_persistence() -> Option<bool> {
    let promise = storage_manager()?.persist().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}
