//! localStorage as a place for snapshot bytes (base64 text under a key).
//! Reports a missing or disabled store as STORAGE_UNAVAILABLE and a full one
//! as QUOTA_EXCEEDED; never panics. The fallback chain comes later.

use crate::core::error::SessileError;
use crate::core::text_codec::{from_base64, to_base64};

use super::convert::{js_message, js_name};

/// The prefix of every key sessile writes, so its entries are easy to find.
pub(crate) const KEY_PREFIX: &str = "sessile:";

fn storage() -> Result<web_sys::Storage, SessileError> {
    let window = web_sys::window().ok_or_else(|| SessileError::StorageUnavailable {
        reason: "no window (server-side rendering or a worker)".into(),
    })?;
    match window.local_storage() {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(SessileError::StorageUnavailable {
            reason: "localStorage is not available in this browser".into(),
        }),
        Err(e) => Err(SessileError::StorageUnavailable {
            reason: format!("localStorage is blocked: {}", js_message(&e)),
        }),
    }
}

/// Writes `bytes` under `sessile:<key>`; the previous value stays on failure.
pub(crate) fn write(key: &str, bytes: &[u8]) -> Result<(), SessileError> {
    let text = to_base64(bytes);
    storage()?
        .set_item(&format!("{KEY_PREFIX}{key}"), &text)
        .map_err(|e| {
            let name = js_name(&e);
            // Firefox once named it NS_ERROR_DOM_QUOTA_REACHED.
            if name == "QuotaExceededError" || name == "NS_ERROR_DOM_QUOTA_REACHED" {
                SessileError::QuotaExceeded {
                    bytes: text.len() as u64 * 2,
                }
            } else {
                SessileError::StorageUnavailable {
                    reason: js_message(&e),
                }
            }
        })
}

/// Reads the bytes under `sessile:<key>`, `None` when there are none.
pub(crate) fn read(key: &str) -> Result<Option<Vec<u8>>, SessileError> {
    let text = storage()?
        .get_item(&format!("{KEY_PREFIX}{key}"))
        .map_err(|e| SessileError::StorageUnavailable {
            reason: js_message(&e),
        })?;
    text.map(|t| from_base64(&t)).transpose()
}
