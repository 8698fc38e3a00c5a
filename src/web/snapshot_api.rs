//! The snapshot functions exported to JS: encode a value into snapshot bytes,
//! decode and verify them, and save / load a snapshot in localStorage.

use js_sys::{Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::core::envelope::{self, EnvelopeConfig, SnapshotMeta};
use crate::core::error::SessileError;

use super::convert::{
    decoded_snapshot, envelope_config, snapshot_info, snapshot_meta, state_to_json, to_js_error,
};
use super::storage::local as local_storage;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of encodeSnapshot / saveSnapshot (all optional). */
export interface SnapshotOptions {
  /** Version of the page's state schema (for migrations). Default 0. */
  schemaVersion?: number;
  /** Version of the state; grows with every change. Default 0. */
  stateVersion?: number;
  /** Last change, ms since the Unix epoch. Default Date.now(). */
  modifiedAt?: number;
  /** Deflate the JSON when it has more bytes than this. Default 10240. */
  compressAbove?: number;
  /** Refuse states whose JSON is larger (STATE_TOO_LARGE). Default 5 MiB. */
  maxBytes?: number;
  /** Deflate level 0-9. Default 1. */
  compressionLevel?: number;
}
/** Options of decodeSnapshot / loadSnapshot. */
export interface DecodeOptions {
  /** Refuse snapshots that declare a larger state. Default 5 MiB. */
  maxBytes?: number;
}
/** Figures about a snapshot. */
export interface SnapshotInfo {
  schemaVersion: number;
  stateVersion: number;
  modifiedAt: number;
  /** Bytes of the state's JSON. */
  rawBytes: number;
  /** Bytes of the whole snapshot as stored (header included). */
  storedBytes: number;
  compressed: boolean;
  /** CRC-32 over header and payload, 8 hex digits. */
  checksum: string;
}
/** A verified snapshot and its state. */
export interface DecodedSnapshot extends SnapshotInfo {
  state: unknown;
}
"#;

/// A state encoded from JS, with what the info object needs.
struct Encoded {
    bytes: Vec<u8>,
    json_len: usize,
    meta: SnapshotMeta,
}

/// Options, then `JSON.stringify`, then the core encoder.
fn encode_value(state: &JsValue, options: &JsValue) -> Result<Encoded, SessileError> {
    let cfg = envelope_config(options)?;
    let meta = snapshot_meta(options)?;
    let json = state_to_json(state)?;
    let bytes = envelope::encode(&json, &meta, &cfg)?;
    Ok(Encoded {
        bytes,
        json_len: json.len(),
        meta,
    })
}

/// Verifies `bytes` and turns them into a plain JS object with `state`.
fn decode_value(bytes: &[u8], cfg: &EnvelopeConfig) -> Result<JsValue, SessileError> {
    decoded_snapshot(&envelope::decode(bytes, cfg)?)
}

/// Encodes a JSON-serializable value into snapshot bytes (format v1).
///
/// Throws a `SessileError` with code `STATE_TOO_LARGE`, `INVALID_STATE` or
/// `INVALID_OPTIONS`.
///
/// ```ts
/// const bytes = encodeSnapshot({ step: "cart", items: [] }, { stateVersion: 1 });
/// ```
#[wasm_bindgen(js_name = encodeSnapshot)]
pub fn encode_snapshot(
    state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "SnapshotOptions | undefined")] options: JsValue,
) -> Result<Uint8Array, JsValue> {
    let encoded = encode_value(&state, &options).map_err(to_js_error)?;
    Ok(Uint8Array::from(encoded.bytes.as_slice()))
}

/// Decodes and verifies snapshot bytes; returns the state and its figures.
///
/// Throws a `SessileError` whose code says what is wrong with the bytes:
/// `BAD_MAGIC`, `UNSUPPORTED_FORMAT_VERSION`, `TRUNCATED`, `LENGTH_MISMATCH`,
/// `CHECKSUM_MISMATCH`, `INFLATE_OVERFLOW`, `CORRUPT_PAYLOAD`, ...
#[wasm_bindgen(js_name = decodeSnapshot, unchecked_return_type = "DecodedSnapshot")]
pub fn decode_snapshot(
    bytes: &[u8],
    #[wasm_bindgen(unchecked_param_type = "DecodeOptions | undefined")] options: JsValue,
) -> Result<JsValue, JsValue> {
    envelope_config(&options)
        .and_then(|cfg| decode_value(bytes, &cfg))
        .map_err(to_js_error)
}

/// Encodes `state` and writes it to localStorage under `sessile:<key>`.
/// On failure (`QUOTA_EXCEEDED`, `STORAGE_UNAVAILABLE`, ...) the previously
/// stored value is left as it was.
#[wasm_bindgen(js_name = saveSnapshot, unchecked_return_type = "SnapshotInfo")]
pub fn save_snapshot(
    key: &str,
    state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "SnapshotOptions | undefined")] options: JsValue,
) -> Result<Object, JsValue> {
    let save = || -> Result<Object, SessileError> {
        let encoded = encode_value(&state, &options)?;
        local_storage::write(key, &encoded.bytes)?;
        let header = envelope::read_header(&encoded.bytes)?;
        Ok(snapshot_info(
            &encoded.meta,
            encoded.json_len,
            encoded.bytes.len(),
            header.flags & envelope::FLAG_COMPRESSED != 0,
            header.checksum,
        ))
    };
    save().map_err(to_js_error)
}

/// Reads and verifies the snapshot under `sessile:<key>` in localStorage;
/// `undefined` when there is none. A corrupted value throws (for example
/// `CHECKSUM_MISMATCH`) and is left in place for inspection.
#[wasm_bindgen(js_name = loadSnapshot, unchecked_return_type = "DecodedSnapshot | undefined")]
pub fn load_snapshot(
    key: &str,
    #[wasm_bindgen(unchecked_param_type = "DecodeOptions | undefined")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let load = || -> Result<JsValue, SessileError> {
        let cfg = envelope_config(&options)?;
        match local_storage::read(key)? {
            Some(bytes) => decode_value(&bytes, &cfg),
            None => Ok(JsValue::UNDEFINED),
        }
    };
    load().map_err(to_js_error)
}
