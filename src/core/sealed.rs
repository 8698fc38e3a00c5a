//! Encrypted snapshots: the layout of a sealed envelope (the 40-byte header
//! with [`FLAG_ENCRYPTED`], then nonce ‖ AES-256-GCM ciphertext ‖ tag), its
//! associated data (the header's first 36 bytes), and which key error stops
//! an open. Pure: the nonce and the cipher come from outside (WebCrypto in
//! the browser, an [`Aead`] natively); docs/FORMAT.md has a worked example.

use super::envelope::{
    check_declared_size, checksum_of, put_u32, read_header, verified_header, EnvelopeConfig,
    Header, FLAG_ENCRYPTED, HEADER_LEN, OFF_CHECKSUM, OFF_FLAGS, OFF_PAYLOAD_LEN,
};
use super::error::{Result, SessileError};

/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Bytes of the AES-GCM nonce written before the ciphertext (96 bits).
pub const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM tag at the end of the payload (128 bits).
pub const TAG_LEN: usize = 16;
/// What sealing adds to a payload: nonce and tag.
pub const SEALED_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// The associated data is the header up to its checksum: bytes 0..36.
pub const AAD_LEN: usize = OFF_CHECKSUM;

/// AES-256-GCM with a key the implementation holds: `seal` returns the
/// ciphertext followed by the 16-byte tag; `open` returns the plaintext, or
/// `None` when the tag does not check.
pub trait Aead {
    /// Encrypts `plaintext` under `nonce`, authenticating `aad` too.
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8>;
    /// Decrypts and checks `sealed` (ciphertext ‖ tag).
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>>;
}

/// Refuses raw key bytes that are not an AES-256 key: `INVALID_OPTIONS`.
pub fn check_raw_key(len: usize) -> Result<()> {
    if len == KEY_LEN {
        Ok(())
    } else {
        Err(SessileError::InvalidOptions {
            option: "encryption.key",
            reason: "must be a non-extractable AES-GCM CryptoKey of 256 bits or 32 raw bytes"
                .into(),
        })
    }
}

/// Whether `bytes` is a snapshot whose header says encrypted (no other check).
pub fn is_sealed(bytes: &[u8]) -> bool {
    read_header(bytes).is_ok_and(|h| h.flags & FLAG_ENCRYPTED != 0)
}

/// A plain snapshot ready to be sealed: encrypt [`plaintext`](Self::plaintext)
/// with the associated data [`aad`](Self::aad), then [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct SealJob {
    header: [u8; HEADER_LEN],
    /// The plain snapshot's payload (JSON text, or its deflate stream).
    pub plaintext: Vec<u8>,
}

impl SealJob {
    /// The plain snapshot `plain` (as `envelope::encode` writes it) to seal:
    /// its header with the encrypted flag and the sealed payload length.
    pub fn new(plain: &[u8]) -> Result<Self> {
        let header = read_header(plain)?;
        if header.flags & FLAG_ENCRYPTED != 0 {
            return Err(SessileError::CorruptPayload {
                reason: "the snapshot is sealed already",
            });
        }
        let payload = &plain[HEADER_LEN..];
        let sealed_len = u32::try_from(payload.len() + SEALED_OVERHEAD).map_err(|_| {
            SessileError::StateTooLarge {
                size: payload.len() as u64,
                limit: u64::from(u32::MAX),
            }
        })?;
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(&plain[..HEADER_LEN]);
        out[OFF_FLAGS] |= FLAG_ENCRYPTED;
        put_u32(&mut out, OFF_PAYLOAD_LEN, sealed_len);
        put_u32(&mut out, OFF_CHECKSUM, 0);
        Ok(SealJob {
            header: out,
            plaintext: payload.to_vec(),
        })
    }

    /// The associated data: the sealed header's first 36 bytes.
    pub fn aad(&self) -> &[u8] {
        &self.header[..AAD_LEN]
    }

    /// The stored bytes: header, `nonce`, `sealed` (ciphertext ‖ tag), with
    /// the CRC-32 over all of it. `CORRUPT_PAYLOAD` when `sealed` is not
    /// the plaintext's length plus the tag.
    pub fn finish(self, nonce: &[u8; NONCE_LEN], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() != self.plaintext.len() + TAG_LEN {
            return Err(SessileError::CorruptPayload {
                reason: "the cipher returned a ciphertext of the wrong length",
            });
        }
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(nonce);
        out.extend_from_slice(sealed);
        let checksum = checksum_of(&out);
        put_u32(&mut out, OFF_CHECKSUM, checksum);
        Ok(out)
    }
}

/// A sealed snapshot checked up to its encryption: decrypt
/// [`sealed`](Self::sealed) under [`nonce`](Self::nonce) with
/// [`aad`](Self::aad), then [`finish`](Self::finish) (or
/// [`failed`](Self::failed) when the tag does not check).
#[derive(Debug, Clone)]
pub struct OpenJob {
    header: [u8; HEADER_LEN],
    meta: Header,
    /// The 96-bit nonce stored before the ciphertext.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext ‖ tag.
    pub sealed: Vec<u8>,
}

impl OpenJob {
    /// Checks `stored` as `envelope::decode` does up to the payload (magic,
    /// version, lengths, checksum, flags, declared size); it must be sealed.
    /// `Ok(None)` for a plain snapshot, which `decode` reads as it is.
    pub fn new(stored: &[u8], config: &EnvelopeConfig) -> Result<Option<Self>> {
        let meta = verified_header(stored, config)?;
        if meta.flags & FLAG_ENCRYPTED == 0 {
            return Ok(None);
        }
        check_declared_size(&meta, config)?;
        if (meta.payload_len as usize) < SEALED_OVERHEAD {
            return Err(SessileError::Truncated {
                expected: (HEADER_LEN + SEALED_OVERHEAD) as u64,
                actual: stored.len() as u64,
            });
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&stored[..HEADER_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&stored[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        Ok(Some(OpenJob {
            header,
            meta,
            nonce,
            sealed: stored[HEADER_LEN + NONCE_LEN..].to_vec(),
        }))
    }

    /// The associated data: the stored header's first 36 bytes.
    pub fn aad(&self) -> &[u8] {
        &self.header[..AAD_LEN]
    }

    /// `DECRYPT_FAILED` for this copy: the tag did not check.
    pub fn failed(&self) -> SessileError {
        SessileError::DecryptFailed {
            state_version: self.meta.meta.state_version,
        }
    }

    /// The plain snapshot the decrypted payload makes (flag cleared, its
    /// own length and checksum), for `envelope::decode` to read.
    pub fn finish(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() + TAG_LEN != self.sealed.len() {
            return Err(self.failed());
        }
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len());
        out.extend_from_slice(&self.header);
        out[OFF_FLAGS] &= !FLAG_ENCRYPTED;
        put_u32(&mut out, OFF_PAYLOAD_LEN, plaintext.len() as u32);
        out.extend_from_slice(plaintext);
        let checksum = checksum_of(&out);
        put_u32(&mut out, OFF_CHECKSUM, checksum);
        Ok(out)
    }
}

/// Seals the plain snapshot `plain` with `aead` under `nonce`.
pub fn seal_with(aead: &impl Aead, nonce: &[u8; NONCE_LEN], plain: &[u8]) -> Result<Vec<u8>> {
    let job = SealJob::new(plain)?;
    let sealed = aead.seal(nonce, job.aad(), &job.plaintext);
    job.finish(nonce, &sealed)
}

/// The plain snapshot of `stored` (sealed or not) opened with `aead`;
/// `DECRYPT_FAILED` when the tag does not check.
pub fn open_with(aead: &impl Aead, stored: &[u8], config: &EnvelopeConfig) -> Result<Vec<u8>> {
    match OpenJob::new(stored, config)? {
        None => Ok(stored.to_vec()),
        Some(job) => match aead.open(&job.nonce, job.aad(), &job.sealed) {
            Some(plain) => job.finish(&plain),
            None => Err(job.failed()),
        },
    }
}

/// Whether `error` says a stored copy could not be read for want of the
/// right key (`KEY_REQUIRED`, `DECRYPT_FAILED`), and of which version.
pub fn key_error_version(error: &SessileError) -> Option<u64> {
    match error {
        SessileError::KeyRequired { state_version }
        | SessileError::DecryptFailed { state_version } => Some(*state_version),
        _ => None,
    }
}

/// The key error that must stop an open, so that nothing overwrites a copy
/// the page cannot read: one of a copy at least as new as the
/// copy restored (`restored`: its state version), or any when nothing was
/// restored; of several, the newest copy's. An older copy the key does not open (the slot before a key
/// rotation) is only skipped, as a corrupt one is.
pub fn blocking_key_error<'a>(
    errors: impl IntoIterator<Item = &'a SessileError>,
    restored: Option<u64>,
) -> Option<SessileError> {
    errors
        .into_iter()
        .filter_map(|e| key_error_version(e).map(|v| (v, e)))
        .filter(|(v, _)| restored.is_none_or(|r| *v >= r))
        .max_by_key(|(v, _)| *v)
        .map(|(_, e)| e.clone())
}

// RustCrypto's AES-GCM is a native dev-dependency only.
#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "sealed_tests.rs"]
pub(crate) mod tests;
