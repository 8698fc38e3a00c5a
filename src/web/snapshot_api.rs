//! The snapshot functions exported to JS: encode a state's JSON text into
//! snapshot bytes, decode and verify them, and save or load one snapshot in
//! localStorage. The page's wrapper does `JSON.stringify` / `JSON.parse`;
//! the module does the bytes (header, CRC-32, deflate), base64 and the
//! storage.

use js_sys::{Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::core::envelope::{self, EnvelopeConfig, Snapshot, SnapshotMeta};
use crate::core::error::SessileError;

use super::convert::{envelope_config, integer, set, snapshot_info, to_js_error, MAX_SAFE_INTEGER};
use super::store::local::{read_text, write_text};
use crate::core::session::store::base64::{from_base64, to_base64};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Header fields of a snapshot to encode (all optional). */
export interface SnapshotMetaInput {
  /** Version of the page's state schema (for migrations). Default 0. */
  schemaVersion?: number;
  /** Version of the state; grows with every change. Default 0. */
  stateVersion?: number;
  /** Last change, ms since the Unix epoch. Default Date.now(). */
  modifiedAt?: number;
  /** Slot generation (0-65535): which of two copies is newer at equal versions. Default 0. */
  generation?: number;
}
/** Codec options of encodeSnapshot (all optional). */
export interface CodecOptions {
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
/** A verified snapshot: its state's JSON text and its figures. */
export interface DecodedSnapshot {
  /** The state's JSON text. */
  json: string;
  schemaVersion: number;
  stateVersion: number;
  modifiedAt: number;
  generation: number;
  /** Bytes of the state's JSON. */
  rawBytes: number;
  /** Bytes of the whole snapshot as stored (header included). */
  storedBytes: number;
  compressed: boolean;
  /** CRC-32 over header and payload, 8 hex digits. */
  checksum: string;
}
"#;

/// Reads `schemaVersion`, `stateVersion`, `modifiedAt` (default: now) and
/// `generation` of a header to write.
fn snapshot_meta(meta: &JsValue) -> Result<SnapshotMeta, SessileError> {
    Ok(SnapshotMeta {
        generation: integer(meta, "generation", u64::from(u16::MAX))?.unwrap_or(0.0) as u16,
        schema_version: integer(meta, "schemaVersion", u64::from(u32::MAX))?.unwrap_or(0.0) as u32,
        state_version: integer(meta, "stateVersion", MAX_SAFE_INTEGER)?.unwrap_or(0.0) as u64,
        modified_at_ms: integer(meta, "modifiedAt", MAX_SAFE_INTEGER)?
            .unwrap_or_else(js_sys::Date::now) as u64,
    })
}

/// A verified snapshot as a plain `DecodedSnapshot` object.
pub(crate) fn decoded_snapshot(snapshot: &Snapshot) -> Object {
    let obj = snapshot_info(
        &snapshot.meta,
        snapshot.json.len(),
        snapshot.stored_len,
        snapshot.compressed,
        snapshot.checksum,
    );
    set(&obj, "generation", &JsValue::from(snapshot.meta.generation));
    set(&obj, "json", &JsValue::from_str(&snapshot.json));
    obj
}

/// Encodes a state's JSON text into snapshot bytes (format v1, docs/FORMAT.md).
///
/// Throws a `SessileError` with code `STATE_TOO_LARGE` (checked before any
/// work) or `INVALID_OPTIONS`.
///
/// ```ts
/// const bytes = encodeSnapshot(JSON.stringify(state), { stateVersion: 1, generation: 1 });
/// ```
#[wasm_bindgen(js_name = encodeSnapshot)]
pub fn encode_snapshot(
    json: &str,
    #[wasm_bindgen(unchecked_param_type = "SnapshotMetaInput | undefined")] meta: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CodecOptions | undefined")] options: JsValue,
) -> Result<Uint8Array, JsValue> {
    let encode = || -> Result<Vec<u8>, SessileError> {
        let cfg = envelope_config(&options)?;
        envelope::encode(json, &snapshot_meta(&meta)?, &cfg)
    };
    encode()
        .map(|bytes| Uint8Array::from(bytes.as_slice()))
        .map_err(to_js_error)
}

/// Decodes and verifies snapshot bytes; returns the state's JSON text and
/// the snapshot's figures.
///
/// Throws a `SessileError` whose code says what is wrong with the bytes:
/// `BAD_MAGIC`, `UNSUPPORTED_FORMAT_VERSION`, `UNSUPPORTED_FLAGS`,
/// `TRUNCATED`, `LENGTH_MISMATCH`, `CHECKSUM_MISMATCH`, `INFLATE_OVERFLOW`,
/// `CORRUPT_PAYLOAD`, `STATE_TOO_LARGE`, and `KEY_REQUIRED` for an
/// encrypted snapshot (this function takes no key).
#[wasm_bindgen(js_name = decodeSnapshot, unchecked_return_type = "DecodedSnapshot")]
pub fn decode_snapshot(
    bytes: &[u8],
    #[wasm_bindgen(unchecked_param_type = "DecodeOptions | undefined")] options: JsValue,
) -> Result<Object, JsValue> {
    decode_config(&options)
        .and_then(|cfg| envelope::decode(bytes, &cfg))
        .map(|snapshot| decoded_snapshot(&snapshot))
        .map_err(to_js_error)
}

/// The decoder's limits from `maxBytes`.
pub(crate) fn decode_config(options: &JsValue) -> Result<EnvelopeConfig, SessileError> {
    envelope_config(options)
}

/// Encodes a state's JSON text and stores it in localStorage under
/// `sessile:<key>` (base64); returns the snapshot's figures (no `json`).
/// On failure the previous value stays: `STATE_TOO_LARGE`,
/// `INVALID_OPTIONS`, `QUOTA_EXCEEDED`, `STORAGE_UNAVAILABLE`.
#[wasm_bindgen(js_name = saveSnapshot, unchecked_return_type = "Omit<DecodedSnapshot, \"json\">")]
pub fn save_snapshot(
    key: &str,
    json: &str,
    #[wasm_bindgen(unchecked_param_type = "SnapshotMetaInput | undefined")] meta: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CodecOptions | undefined")] options: JsValue,
) -> Result<Object, JsValue> {
    let save = || -> Result<Object, SessileError> {
        let cfg = envelope_config(&options)?;
        let bytes = envelope::encode(json, &snapshot_meta(&meta)?, &cfg)?;
        write_text(key, &to_base64(&bytes))?;
        let header = envelope::read_header(&bytes)?;
        let info = snapshot_info(
            &header.meta,
            json.len(),
            bytes.len(),
            header.flags & envelope::FLAG_COMPRESSED != 0,
            header.checksum,
        );
        set(&info, "generation", &JsValue::from(header.meta.generation));
        Ok(info)
    };
    save().map_err(to_js_error)
}

/// Reads and verifies the snapshot under `sessile:<key>`; `undefined` when
/// there is none. A value that is not base64 or not a valid snapshot
/// throws with the envelope's code (`CORRUPT_PAYLOAD`, `CHECKSUM_MISMATCH`,
/// ...); a storage that cannot be read, `STORAGE_UNAVAILABLE`.
#[wasm_bindgen(js_name = loadSnapshot, unchecked_return_type = "DecodedSnapshot | undefined")]
pub fn load_snapshot(
    key: &str,
    #[wasm_bindgen(unchecked_param_type = "DecodeOptions | undefined")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let load = || -> Result<JsValue, SessileError> {
        let cfg = decode_config(&options)?;
        let Some(text) = read_text(key)? else {
            return Ok(JsValue::UNDEFINED);
        };
        let bytes = from_base64(&text)?;
        Ok(decoded_snapshot(&envelope::decode(&bytes, &cfg)?).into())
    };
    load().map_err(to_js_error)
}
