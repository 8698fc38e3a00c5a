//! A short JSON text kept in localStorage by a session with a key, sealed:
//! the entries of the pending register (`<name>:pending:<client>`), which
//! list the paths of the state a client still has to send. The text goes
//! into a snapshot envelope (version 0), is sealed as a slot is
//! ([`super::sealed`]) and stored as its base64. A text in the clear is a
//! JSON object and starts with `{`, which base64 never does, so a plain
//! entry (written before the page had a key) still reads. Pure: the cipher
//! runs outside (WebCrypto in the browser).

use super::envelope::{decode, encode, EnvelopeConfig, SnapshotMeta};
use super::error::Result;
use super::session::store::base64::{from_base64, to_base64};

/// What a text read from localStorage is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredText {
    /// A JSON text in the clear, to read as it is.
    Plain(String),
    /// A sealed snapshot, to open with the key, then [`text_of`].
    Sealed(Vec<u8>),
    /// Neither: nothing to read.
    Unreadable,
}

/// The plain snapshot holding `text`, to seal and then store as
/// [`stored_text`].
pub fn text_snapshot(text: &str) -> Result<Vec<u8>> {
    encode(text, &SnapshotMeta::default(), &EnvelopeConfig::default())
}

/// The localStorage text of a sealed snapshot.
pub fn stored_text(sealed: &[u8]) -> String {
    to_base64(sealed)
}

/// Sorts out a text read from localStorage.
pub fn read_stored(text: &str) -> StoredText {
    if text.starts_with('{') {
        return StoredText::Plain(text.into());
    }
    match from_base64(text) {
        Ok(bytes) if super::sealed::is_sealed(&bytes) => StoredText::Sealed(bytes),
        _ => StoredText::Unreadable,
    }
}

/// The JSON text of an opened snapshot; `None` when it does not decode.
pub fn text_of(plain: &[u8]) -> Option<String> {
    decode(plain, &EnvelopeConfig::default())
        .ok()
        .map(|snapshot| snapshot.json)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::core::sealed::tests::RustCrypto;
    use crate::core::sealed::{open_with, seal_with};

    const ENTRY: &str = r#"{"session":"s1","ops":[{"seq":1,"paths":[["cart","sku-4711"]]}]}"#;

    #[test]
    fn a_sealed_entry_hides_its_paths_and_opens_with_the_key() {
        let key = RustCrypto::new(&[7; 32]);
        let plain = text_snapshot(ENTRY).unwrap();
        let stored = stored_text(&seal_with(&key, &[3; 12], &plain).unwrap());
        assert!(!stored.contains("sku-4711"));
        let StoredText::Sealed(bytes) = read_stored(&stored) else {
            panic!("not read as sealed: {stored}")
        };
        let opened = open_with(&key, &bytes, &EnvelopeConfig::default()).unwrap();
        assert_eq!(text_of(&opened).as_deref(), Some(ENTRY));
        let other = RustCrypto::new(&[8; 32]);
        let refused = open_with(&other, &bytes, &EnvelopeConfig::default()).unwrap_err();
        assert_eq!(refused.code(), "DECRYPT_FAILED");
    }

    #[test]
    fn a_plain_entry_reads_as_it_is_and_anything_else_is_unreadable() {
        assert_eq!(read_stored(ENTRY), StoredText::Plain(ENTRY.into()));
        assert_eq!(read_stored("not base64!"), StoredText::Unreadable);
        // Base64 of something that is not a sealed snapshot.
        let plain = stored_text(&text_snapshot(ENTRY).unwrap());
        assert_eq!(read_stored(&plain), StoredText::Unreadable);
    }
}
