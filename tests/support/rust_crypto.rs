//! RustCrypto's AES-256-GCM behind `sessile::core::sealed::Aead`: the
//! second implementation the sealed fixtures are written and checked with
//! (a dev-dependency only; the browser uses WebCrypto).

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sessile::core::sealed::{Aead, NONCE_LEN};

/// AES-256-GCM with one key.
pub struct RustCrypto(Aes256Gcm);

impl RustCrypto {
    /// The cipher of `key` (32 bytes).
    pub fn new(key: &[u8]) -> Self {
        RustCrypto(Aes256Gcm::new_from_slice(key).expect("a 32-byte key"))
    }
}

impl Aead for RustCrypto {
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let payload = Payload { msg, aad };
        self.0.encrypt(Nonce::from_slice(nonce), payload).unwrap()
    }
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload { msg, aad };
        self.0.decrypt(Nonce::from_slice(nonce), payload).ok()
    }
}
