//! What the link driver takes from the browser besides sockets and storage:
//! the clock, randomness (the backoff's seed, client ids), whether the
//! browser is online and the page visible, and localStorage through
//! gloo-storage (the refused WebSocket the origin remembers). Each degrades
//! quietly where the API is missing.

use web_sys::Storage;

use crate::core::error::SessileError;

/// The caller's ms clock: `Date.now()`.
pub(crate) fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A seed for the backoff's jitter: 53 random bits from `Math.random()`.
pub fn random_seed() -> u64 {
    (js_sys::Math::random() * (1u64 << 53) as f64) as u64
}

/// A new client id: 128 bits from `crypto.getRandomValues` as 32 lowercase
/// hex digits. `INVALID_STATE` when there is no `window.crypto` (a worker
/// or a host that is not a browser).
pub fn random_client_id() -> Result<String, SessileError> {
    let unavailable = || SessileError::InvalidState {
        reason: "crypto.getRandomValues is not available".into(),
    };
    let crypto = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .ok_or_else(unavailable)?;
    let mut bytes = [0u8; 16];
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(|_| unavailable())?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    Ok(bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect())
}

/// `navigator.onLine` (true where it is unknown).
pub(crate) fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Whether the page is visible (true without a document).
pub(crate) fn is_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

/// localStorage (gloo-storage's handle), when this document may use it.
fn local_storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()?;
    Some(<gloo_storage::LocalStorage as gloo_storage::Storage>::raw())
}

/// The text under `key` in localStorage (none when it is blocked).
pub(crate) fn local_get(key: &str) -> Option<String> {
    local_storage()?.get_item(key).ok().flatten()
}

/// Stores (`Some`) or removes (`None`) `key` in localStorage; a blocked or
/// full storage is ignored (what it holds is only a hint).
pub(crate) fn local_put(key: &str, value: Option<&str>) {
    if let Some(s) = local_storage() {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

fn session_storage() -> Option<Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// Stores (`Some`) or removes (`None`) `key` in sessionStorage; a blocked or
/// full storage is ignored (what it holds is only a hint).
pub(crate) fn session_put(key: &str, value: Option<&str>) {
    if let Some(s) = session_storage() {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}
