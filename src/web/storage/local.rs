//! localStorage as a place for snapshot bytes: base64 text under
//! `sessile:<key>`. Holds the slots of the localStorage backend, the rescue
//! copy written synchronously on page hide, and the eviction marker. A
//! missing or disabled store is STORAGE_UNAVAILABLE, a full one
//! QUOTA_EXCEEDED; the previous value stays on failure; never panics.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;
use crate::core::text_codec::{from_base64, to_base64};

use crate::web::convert::{js_message, js_name};

#[wasm_bindgen]
extern "C" {
    // localStorage with methods taking and giving JS strings as they are, so
    // a 100 KB value is not copied into wasm and back as UTF-8.
    type RawStorage;
    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item_js(this: &RawStorage, key: &str, value: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item_js(this: &RawStorage, key: &str) -> Result<JsValue, JsValue>;
    // The browser's own base64 (Chromium 140+, Firefox 133+, Safari 18.2+).
    #[wasm_bindgen(js_namespace = Uint8Array, catch, js_name = fromBase64)]
    fn native_from_base64(text: &JsValue) -> Result<Uint8Array, JsValue>;
}

/// Whether the browser has `Uint8Array.fromBase64` and `toBase64`: about 8x
/// faster than decoding in wasm after copying the text in (docs/BENCHMARKS.md).
fn native_base64() -> bool {
    thread_local! {
        static NATIVE: bool = {
            let ctor: JsValue = js_sys::Uint8Array::new_with_length(0).constructor().into();
            Reflect::has(&ctor, &"fromBase64".into()).unwrap_or(false)
        };
    }
    NATIVE.with(|n| *n)
}

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

/// Maps a thrown storage error: quota errors (under every browser's name) to
/// QUOTA_EXCEEDED with the size of the write, the rest to STORAGE_UNAVAILABLE.
pub(crate) fn storage_error(thrown: &wasm_bindgen::JsValue, bytes: usize) -> SessileError {
    let name = js_name(thrown);
    let message = js_message(thrown);
    // Firefox once said NS_ERROR_DOM_QUOTA_REACHED; Firefox and Safari wrap
    // IndexedDB quota failures in an AbortError that mentions the quota.
    let quota = name == "QuotaExceededError"
        || name == "NS_ERROR_DOM_QUOTA_REACHED"
        || (name == "AbortError" && mentions_quota(&message));
    if quota {
        SessileError::QuotaExceeded {
            bytes: bytes as u64,
        }
    } else {
        SessileError::StorageUnavailable {
            reason: if name.is_empty() {
                message
            } else {
                format!("{name}: {message}")
            },
        }
    }
}

/// Whether `message` contains "quota" in any letter case. A byte window
/// rather than `str::contains`: the substring searcher (and the panicking
/// slicing it brings) costs about 3 KB of wasm.
fn mentions_quota(message: &str) -> bool {
    message
        .as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"quota"))
}

/// Writes `text` under `sessile:<key>`.
pub(crate) fn write_text(key: &str, text: &str) -> Result<(), SessileError> {
    storage()?
        .set_item(&format!("{KEY_PREFIX}{key}"), text)
        // localStorage counts UTF-16 code units: two bytes a character.
        .map_err(|e| storage_error(&e, text.len() * 2))
}

/// Reads the text under `sessile:<key>`, `None` when there is none.
pub(crate) fn read_text(key: &str) -> Result<Option<String>, SessileError> {
    storage()?
        .get_item(&format!("{KEY_PREFIX}{key}"))
        .map_err(|e| SessileError::StorageUnavailable {
            reason: js_message(&e),
        })
}

/// Removes `sessile:<key>`.
pub(crate) fn remove(key: &str) -> Result<(), SessileError> {
    storage()?
        .remove_item(&format!("{KEY_PREFIX}{key}"))
        .map_err(|e| SessileError::StorageUnavailable {
            reason: js_message(&e),
        })
}

/// Writes `bytes` (as base64) under `sessile:<key>`.
pub(crate) fn write(key: &str, bytes: &[u8]) -> Result<(), SessileError> {
    if !native_base64() {
        return write_text(key, &to_base64(bytes));
    }
    let text: JsValue = Uint8Array::from(bytes).to_base64().into();
    let chars = bytes.len().div_ceil(3) * 4;
    storage()?
        .unchecked_into::<RawStorage>()
        .set_item_js(&format!("{KEY_PREFIX}{key}"), &text)
        .map_err(|e| storage_error(&e, chars * 2))
}

/// Reads the bytes under `sessile:<key>`, `None` when there are none; text
/// that is not base64 is CORRUPT_PAYLOAD.
pub(crate) fn read(key: &str) -> Result<Option<Vec<u8>>, SessileError> {
    if !native_base64() {
        return read_text(key)?.map(|t| from_base64(&t)).transpose();
    }
    let text = storage()?
        .unchecked_into::<RawStorage>()
        .get_item_js(&format!("{KEY_PREFIX}{key}"))
        .map_err(|e| SessileError::StorageUnavailable {
            reason: js_message(&e),
        })?;
    if text.is_null() || text.is_undefined() {
        return Ok(None);
    }
    native_from_base64(&text)
        .map(|a| Some(a.to_vec()))
        .map_err(|_| SessileError::CorruptPayload {
            reason: "stored text is not base64",
        })
}

/// Checks that localStorage accepts a write (disabled storage, a zero quota
/// and old Safari private mode all refuse one).
pub(crate) fn probe() -> Result<(), SessileError> {
    write_text("probe", "1")?;
    remove("probe")
}

/// The localStorage backend: slots `sessile:<ns>:a` / `:b` as base64 and the
/// compare-and-set head `sessile:<ns>:head` as a decimal version. The
/// read-compare-write runs in one task, under the namespace's Web Lock where
/// the browser has Web Locks.
pub(crate) struct LocalSlots {
    namespace: String,
}

impl LocalSlots {
    pub(crate) fn open(namespace: &str) -> Result<Self, SessileError> {
        probe()?;
        Ok(Self {
            namespace: namespace.to_owned(),
        })
    }

    fn head_key(&self) -> String {
        format!("{}:head", self.namespace)
    }

    fn head(&self) -> Result<u64, SessileError> {
        Ok(read_text(&self.head_key())?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }
}

impl super::SlotStorage for LocalSlots {
    async fn read_all(&self) -> Result<super::SlotsRead, SessileError> {
        let head = self.head()?;
        Ok(super::SlotsRead {
            a: read(&super::slot_key(&self.namespace, SlotId::A)),
            b: read(&super::slot_key(&self.namespace, SlotId::B)),
            head,
        })
    }

    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError> {
        let stored = self.head()?;
        if stored != base {
            return Err(SessileError::StaleWrite {
                stored,
                attempted: version,
            });
        }
        write(&super::slot_key(&self.namespace, slot), bytes)?;
        write_text(&self.head_key(), &version.to_string())
    }

    async fn clear(&self, tombstone: u64) -> Result<(), SessileError> {
        for slot in [SlotId::A, SlotId::B] {
            remove(&super::slot_key(&self.namespace, slot))?;
        }
        write_text(&self.head_key(), &tombstone.to_string())
    }
}

/// A rescue copy found in localStorage: written by a tab on `pagehide` while
/// its state was unsaved, with the stored head it was based on.
pub(crate) struct RescueCopy {
    /// Its key, without the `sessile:` prefix.
    pub(crate) key: String,
    /// The stored head version the rescued state was based on.
    pub(crate) base: u64,
    /// The snapshot bytes (or why they could not be read).
    pub(crate) bytes: Result<Vec<u8>, SessileError>,
}

/// The key of tab `tab`'s rescue copy of `namespace`.
pub(crate) fn rescue_key(namespace: &str, tab: &str) -> String {
    format!("{namespace}:rescue:{tab}")
}

/// Writes a rescue copy synchronously: `<base>:<base64 snapshot>`.
pub(crate) fn write_rescue(
    namespace: &str,
    tab: &str,
    base: u64,
    bytes: &[u8],
) -> Result<(), SessileError> {
    write_text(
        &rescue_key(namespace, tab),
        &format!("{base}:{}", to_base64(bytes)),
    )
}

/// Every rescue copy of `namespace`, whichever tab wrote it.
pub(crate) fn read_rescues(namespace: &str) -> Vec<RescueCopy> {
    let Ok(store) = storage() else {
        return Vec::new();
    };
    let prefix = format!("{KEY_PREFIX}{namespace}:rescue:");
    let count = store.length().unwrap_or(0);
    let keys: Vec<String> = (0..count)
        .filter_map(|i| store.key(i).ok().flatten())
        .filter(|k| k.starts_with(&prefix))
        .collect();
    keys.into_iter()
        .filter_map(|full| {
            let text = store.get_item(&full).ok().flatten()?;
            let key = full.strip_prefix(KEY_PREFIX)?.to_owned();
            let (base, encoded) = text.split_once(':').unwrap_or(("", &text));
            let bytes = match base.parse::<u64>() {
                Ok(_) => from_base64(encoded),
                Err(_) => Err(SessileError::CorruptPayload {
                    reason: "rescue copy without its base version",
                }),
            };
            Some(RescueCopy {
                key,
                base: base.parse().unwrap_or(0),
                bytes,
            })
        })
        .collect()
}
