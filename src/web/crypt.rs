//! Encrypted local copies in the browser: the page's key (a non-extractable
//! AES-GCM `CryptoKey` or 32 raw bytes, imported as one), held in memory by
//! the session that was given it (never by namespace: two sessions of one
//! name in a page may hold different keys) and never stored; WebCrypto's AES-256-GCM with a fresh nonce
//! from `crypto.getRandomValues` for every write. The layout and every
//! decision are `core::sealed`'s; this file only runs the cipher.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

use crate::core::envelope::{EnvelopeConfig, MAX_RAW_BYTES_LIMIT};
use crate::core::error::SessileError;
use crate::core::sealed::{check_raw_key, OpenJob, SealJob, NONCE_LEN};
use crate::core::sealed_text::{read_stored, stored_text, text_of, text_snapshot, StoredText};
use crate::core::session::store::Stored;

/// The key a page gives in `encryption: { key }`.
#[derive(Clone)]
pub enum EncryptionKey {
    /// A WebCrypto key: AES-GCM, 256 bits, usable to encrypt and decrypt
    /// (best not extractable).
    Crypto(CryptoKey),
    /// 32 raw key bytes, imported as a non-extractable AES-GCM key.
    Raw(Vec<u8>),
}

fn invalid_key(reason: &str) -> SessileError {
    SessileError::InvalidOptions {
        option: "encryption.key",
        reason: reason.into(),
    }
}

fn subtle() -> Result<SubtleCrypto, SessileError> {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.subtle())
        .ok_or_else(|| invalid_key("needs WebCrypto (crypto.subtle), which this page lacks"))
}

/// The page's key as a WebCrypto key: raw bytes must be 32
/// (`INVALID_OPTIONS` otherwise); a `CryptoKey` must be AES-GCM of 256 bits
/// that may encrypt and decrypt.
pub(crate) async fn import(key: &EncryptionKey) -> Result<CryptoKey, SessileError> {
    match key {
        EncryptionKey::Raw(bytes) => {
            check_raw_key(bytes.len())?;
            let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
            let data = Uint8Array::from(bytes.as_slice());
            let promise = subtle()?
                .import_key_with_str("raw", &data, "AES-GCM", false, &usages)
                .map_err(|_| invalid_key("WebCrypto refused the raw key"))?;
            let imported = JsFuture::from(promise)
                .await
                .map_err(|_| invalid_key("WebCrypto refused the raw key"))?;
            Ok(imported.unchecked_into())
        }
        EncryptionKey::Crypto(key) => {
            let algorithm: JsValue = key.algorithm().unwrap_or_default().into();
            let name = Reflect::get(&algorithm, &"name".into()).unwrap_or_default();
            let bits = Reflect::get(&algorithm, &"length".into()).unwrap_or_default();
            let usages = key.usages();
            let may = |u: &str| usages.includes(&u.into(), 0);
            if name.as_string().as_deref() != Some("AES-GCM")
                || bits.as_f64() != Some(256.0)
                || !may("encrypt")
                || !may("decrypt")
            {
                return Err(invalid_key(
                    "must be an AES-GCM CryptoKey of 256 bits with the usages encrypt and decrypt, or 32 raw bytes",
                ));
            }
            Ok(key.clone())
        }
    }
}

fn params(nonce: &[u8], aad: &[u8]) -> Object {
    let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(nonce));
    params.set_additional_data_u8_array(&Uint8Array::from(aad));
    params.into()
}

async fn bytes_of(promise: Result<js_sys::Promise, JsValue>) -> Option<Vec<u8>> {
    let buffer = JsFuture::from(promise.ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// The stored form of the plain snapshot `plain` under `key`.
pub(crate) async fn seal_with(key: &CryptoKey, plain: &[u8]) -> Result<Vec<u8>, SessileError> {
    let job = SealJob::new(plain)?;
    let mut nonce = [0u8; NONCE_LEN];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    let drawn = crypto.is_some_and(|c| c.get_random_values_with_u8_array(&mut nonce).is_ok());
    let failed = || SessileError::StorageUnavailable {
        reason: "WebCrypto could not encrypt the copy".into(),
    };
    if !drawn {
        return Err(failed());
    }
    let params = params(&nonce, job.aad());
    let sealed = subtle()?.encrypt_with_object_and_u8_array(&params, key, &job.plaintext);
    let sealed = bytes_of(sealed).await.ok_or_else(failed)?;
    job.finish(&nonce, &sealed)
}

/// `plain` as a session with `key` stores it: sealed, or as it is without one.
pub(crate) async fn seal(key: Option<&CryptoKey>, plain: Vec<u8>) -> Result<Vec<u8>, SessileError> {
    match key {
        Some(key) => seal_with(key, &plain).await,
        None => Ok(plain),
    }
}

/// `text` (a pending-register entry) as localStorage keeps it with `key`:
/// sealed, as base64 (`core::sealed_text`).
pub(crate) async fn seal_text(key: &CryptoKey, text: &str) -> Result<String, SessileError> {
    let sealed = seal_with(key, &text_snapshot(text)?).await?;
    Ok(stored_text(&sealed))
}

/// A text read from localStorage, opened with `key`: a plain one as it is;
/// `None` when it does not read (another key's, or damaged).
pub(crate) async fn open_text(key: Option<&CryptoKey>, text: &str) -> Option<String> {
    match read_stored(text) {
        StoredText::Plain(text) => Some(text),
        StoredText::Sealed(bytes) => match open_with(key, Stored::Bytes(bytes)).await {
            Stored::Bytes(plain) => text_of(&plain),
            _ => None,
        },
        StoredText::Unreadable => None,
    }
}

/// What was read, opened with `key`: a sealed copy becomes its plain
/// snapshot or `DECRYPT_FAILED`; anything else (a plain copy, a damaged one,
/// which the engine's decode reports) is left as it is.
pub(crate) async fn open_with(key: Option<&CryptoKey>, stored: Stored) -> Stored {
    let (Some(key), Stored::Bytes(bytes)) = (key, &stored) else {
        return stored;
    };
    // The engine checks the page's size limit when it decodes.
    let config = EnvelopeConfig {
        max_raw_bytes: MAX_RAW_BYTES_LIMIT,
        ..EnvelopeConfig::default()
    };
    let Ok(Some(job)) = OpenJob::new(bytes, &config) else {
        return stored;
    };
    let Ok(subtle) = subtle() else {
        return Stored::Failed(job.failed());
    };
    let params = params(&job.nonce, job.aad());
    let plain = subtle.decrypt_with_object_and_u8_array(&params, key, &job.sealed);
    match bytes_of(plain).await {
        Some(plain) => job
            .finish(&plain)
            .map_or_else(Stored::Failed, Stored::Bytes),
        None => Stored::Failed(job.failed()),
    }
}

/// Seals one plain snapshot (as `envelope::encode` writes it) with `key`,
/// as the store writes it: for a Rust page that keeps snapshots itself.
pub async fn seal_snapshot(key: &EncryptionKey, plain: &[u8]) -> Result<Vec<u8>, SessileError> {
    seal_with(&import(key).await?, plain).await
}

/// Opens one stored snapshot with `key`: the plain snapshot for
/// `envelope::decode` (a plain one as it is), `DECRYPT_FAILED` when the tag
/// does not check, the envelope's code when the bytes are damaged.
pub async fn open_snapshot(key: &EncryptionKey, stored: &[u8]) -> Result<Vec<u8>, SessileError> {
    let key = import(key).await?;
    match open_with(Some(&key), Stored::Bytes(stored.to_vec())).await {
        Stored::Bytes(plain) => {
            // A damaged copy is left as it is: say what is wrong with it.
            let config = EnvelopeConfig {
                max_raw_bytes: MAX_RAW_BYTES_LIMIT,
                ..EnvelopeConfig::default()
            };
            OpenJob::new(&plain, &config)?;
            Ok(plain)
        }
        Stored::Failed(error) => Err(error),
        Stored::Missing => Ok(Vec::new()),
    }
}
