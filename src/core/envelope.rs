//! Snapshot envelope v1: the bytes every later layer stores and sends.
//! A fixed 40-byte little-endian header (magic, format version, flags, schema
//! and state versions, modified-at, lengths, CRC-32) and the state's JSON,
//! raw-deflated above a threshold when that saves bytes. docs/FORMAT.md has
//! the exact layout; decoding never panics and never allocates past the limit.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::checksum::Crc32;
use super::error::{Result, SessileError};
use super::error_text::decimal;

/// The four bytes every snapshot starts with.
pub const MAGIC: [u8; 4] = *b"SSNP";
/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u8 = 1;
/// Size of the fixed header in bytes; the payload starts here.
pub const HEADER_LEN: usize = 40;
/// Default threshold: payloads of more raw bytes than this are deflated.
pub const DEFAULT_COMPRESS_ABOVE: usize = 10 * 1024;
/// Default limit on the raw (JSON) size of a state: 5 MiB.
pub const DEFAULT_MAX_RAW_BYTES: usize = 5 * 1024 * 1024;
/// Largest `max_raw_bytes` a config may set: 256 MiB. Above that a decoder
/// could be made to reserve more memory than a page can give.
pub const MAX_RAW_BYTES_LIMIT: usize = 256 * 1024 * 1024;
/// Default deflate level: 1 is about 2x faster than 6 for ~10 % more bytes,
/// which keeps a save of 100 KB well under the JS stack (docs/PERFORMANCE.md).
pub const DEFAULT_COMPRESSION_LEVEL: u8 = 1;

/// Flag bit: the payload is a raw deflate stream (RFC 1951, no zlib header).
pub const FLAG_COMPRESSED: u8 = 0b0000_0001;
/// Flag bit: the payload is sealed with AES-256-GCM (nonce, ciphertext, tag;
/// `core::sealed`). [`decode`] refuses it with `KEY_REQUIRED`.
pub const FLAG_ENCRYPTED: u8 = 0b0000_0010;
pub(crate) const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_ENCRYPTED;

// Offsets of the header fields (see docs/FORMAT.md).
const OFF_FORMAT: usize = 4;
pub(crate) const OFF_FLAGS: usize = 5;
const OFF_GENERATION: usize = 6;
const OFF_SCHEMA: usize = 8;
const OFF_STATE_VERSION: usize = 12;
const OFF_MODIFIED_AT: usize = 20;
const OFF_RAW_LEN: usize = 28;
pub(crate) const OFF_PAYLOAD_LEN: usize = 32;
pub(crate) const OFF_CHECKSUM: usize = 36;

/// How snapshots are encoded and what decoding accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeConfig {
    /// Payloads with more raw bytes than this are deflated (if that saves bytes).
    pub compress_above: usize,
    /// Largest raw (JSON) size accepted, encoding or decoding.
    pub max_raw_bytes: usize,
    /// Deflate level, 0 (store) to 9 (smallest).
    pub compression_level: u8,
}

impl Default for EnvelopeConfig {
    fn default() -> Self {
        Self {
            compress_above: DEFAULT_COMPRESS_ABOVE,
            max_raw_bytes: DEFAULT_MAX_RAW_BYTES,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

impl EnvelopeConfig {
    /// Checks that the options make sense together.
    pub fn validate(&self) -> Result<()> {
        if self.max_raw_bytes == 0 || self.max_raw_bytes > MAX_RAW_BYTES_LIMIT {
            return Err(SessileError::InvalidOptions {
                option: "maxBytes",
                reason: [
                    "must be between 1 and ",
                    &decimal(MAX_RAW_BYTES_LIMIT as u64),
                ]
                .concat(),
            });
        }
        if self.compression_level > 9 {
            return Err(SessileError::InvalidOptions {
                option: "compressionLevel",
                reason: "must be between 0 and 9".into(),
            });
        }
        Ok(())
    }
}

/// What the header says about the state, apart from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// Write counter of the storage slot this snapshot was written to (0 when
    /// not stored in slots); compared with serial-number arithmetic, see
    /// [`crate::core::slots`].
    pub generation: u16,
    /// Version of the page's state schema (for migrations).
    pub schema_version: u32,
    /// Version of the state itself; grows with every change.
    pub state_version: u64,
    /// When the state was last changed, in milliseconds since the Unix epoch.
    pub modified_at_ms: u64,
}

/// A decoded, verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Versions and time from the header.
    pub meta: SnapshotMeta,
    /// The state's JSON text.
    pub json: String,
    /// Whether the payload was stored deflated.
    pub compressed: bool,
    /// Size of the whole encoded snapshot, header included.
    pub stored_len: usize,
    /// The CRC-32 from the header (verified).
    pub checksum: u32,
}

/// Encodes the state's JSON text into a snapshot.
///
/// Refuses a state over `config.max_raw_bytes` with `STATE_TOO_LARGE` before
/// doing any work. Deflates when the JSON is longer than
/// `config.compress_above` and the deflated form is smaller.
pub fn encode(json: &str, meta: &SnapshotMeta, config: &EnvelopeConfig) -> Result<Vec<u8>> {
    config.validate()?;
    let raw = json.as_bytes();
    if raw.len() > config.max_raw_bytes {
        return Err(SessileError::StateTooLarge {
            size: raw.len() as u64,
            limit: config.max_raw_bytes as u64,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + raw.len());
    out.resize(HEADER_LEN, 0);
    let compressed = raw.len() > config.compress_above
        && deflate_if_smaller(raw, config.compression_level, &mut out);
    if !compressed {
        out.extend_from_slice(raw);
    }
    let payload_len = out.len() - HEADER_LEN;
    out[..4].copy_from_slice(&MAGIC);
    out[OFF_FORMAT] = FORMAT_VERSION;
    out[OFF_FLAGS] = if compressed { FLAG_COMPRESSED } else { 0 };
    out[OFF_GENERATION..OFF_GENERATION + 2].copy_from_slice(&meta.generation.to_le_bytes());
    put_u32(&mut out, OFF_SCHEMA, meta.schema_version);
    put_u64(&mut out, OFF_STATE_VERSION, meta.state_version);
    put_u64(&mut out, OFF_MODIFIED_AT, meta.modified_at_ms);
    put_u32(&mut out, OFF_RAW_LEN, raw.len() as u32);
    put_u32(&mut out, OFF_PAYLOAD_LEN, payload_len as u32);
    let checksum = checksum_of(&out);
    put_u32(&mut out, OFF_CHECKSUM, checksum);
    Ok(out)
}

/// Appends the raw deflate of `raw` to `out` if it is shorter than `raw`;
/// returns whether it did (otherwise `out` is left as it was).
fn deflate_if_smaller(raw: &[u8], level: u8, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    // compress_vec writes only into spare capacity: room for raw.len() bytes
    // bounds the work, and a stream that needs all of it saves nothing.
    out.reserve_exact(raw.len());
    let mut deflater = Compress::new(Compression::new(u32::from(level)), false);
    let finished = matches!(
        deflater.compress_vec(raw, out, FlushCompress::Finish),
        Ok(Status::StreamEnd)
    );
    let saves = finished && out.len() - start < raw.len();
    if !saves {
        out.truncate(start);
    }
    saves
}

/// Reads only the header fields, verifying magic, format version and lengths
/// but not the checksum: cheap, for diagnostics of stored bytes.
pub fn read_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            SessileError::Truncated {
                expected: HEADER_LEN as u64,
                actual: bytes.len() as u64,
            }
        } else {
            SessileError::BadMagic
        });
    }
    if bytes[..4] != MAGIC {
        return Err(SessileError::BadMagic);
    }
    if bytes.len() <= OFF_FORMAT {
        return Err(SessileError::Truncated {
            expected: HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    }
    let format = bytes[OFF_FORMAT];
    if format == 0 {
        // No sessile writes format 0: a damaged header, not a newer format.
        return Err(SessileError::BadMagic);
    }
    if format != FORMAT_VERSION {
        return Err(SessileError::UnsupportedFormatVersion {
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(SessileError::Truncated {
            expected: HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    }
    let header = Header {
        flags: bytes[OFF_FLAGS],
        meta: SnapshotMeta {
            generation: get_u16(bytes, OFF_GENERATION),
            schema_version: get_u32(bytes, OFF_SCHEMA),
            state_version: get_u64(bytes, OFF_STATE_VERSION),
            modified_at_ms: get_u64(bytes, OFF_MODIFIED_AT),
        },
        raw_len: get_u32(bytes, OFF_RAW_LEN),
        payload_len: get_u32(bytes, OFF_PAYLOAD_LEN),
        checksum: get_u32(bytes, OFF_CHECKSUM),
    };
    let expected = HEADER_LEN as u64 + u64::from(header.payload_len);
    let actual = bytes.len() as u64;
    if actual < expected {
        return Err(SessileError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(SessileError::LengthMismatch {
            declared: expected,
            actual,
        });
    }
    Ok(header)
}

/// The fields of a v1 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Flag bits ([`FLAG_COMPRESSED`], [`FLAG_ENCRYPTED`]).
    pub flags: u8,
    /// Versions and time.
    pub meta: SnapshotMeta,
    /// Length of the state's JSON before compression.
    pub raw_len: u32,
    /// Length of the payload as stored.
    pub payload_len: u32,
    /// CRC-32 over the header's first 36 bytes and the payload.
    pub checksum: u32,
}

/// Decodes and verifies a snapshot.
///
/// Order of checks: magic, format version, lengths, checksum, flags (an
/// encrypted snapshot is `KEY_REQUIRED`: `core::sealed` opens it), declared
/// raw size against `config.max_raw_bytes`, then the payload (inflated into at
/// most the declared raw length). Each failure has its own code.
pub fn decode(bytes: &[u8], config: &EnvelopeConfig) -> Result<Snapshot> {
    let header = verified_header(bytes, config)?;
    if header.flags & FLAG_ENCRYPTED != 0 {
        return Err(SessileError::KeyRequired {
            state_version: header.meta.state_version,
        });
    }
    check_declared_size(&header, config)?;
    let raw_len = header.raw_len as usize;
    let payload = &bytes[HEADER_LEN..];
    let compressed = header.flags & FLAG_COMPRESSED != 0;
    let raw = if compressed {
        inflate_exact(payload, raw_len)?
    } else {
        if payload.len() != raw_len {
            return Err(SessileError::LengthMismatch {
                declared: raw_len as u64,
                actual: payload.len() as u64,
            });
        }
        let mut raw = reserve(raw_len)?;
        raw.extend_from_slice(payload);
        raw
    };
    let json = String::from_utf8(raw).map_err(|_| SessileError::CorruptPayload {
        reason: "payload is not UTF-8 text",
    })?;
    Ok(Snapshot {
        meta: header.meta,
        json,
        compressed,
        stored_len: bytes.len(),
        checksum: header.checksum,
    })
}

/// Steps 1 to 6 of decoding (docs/FORMAT.md): the header read, the checksum
/// verified, unknown flags refused. The flags may still say encrypted.
pub(crate) fn verified_header(bytes: &[u8], config: &EnvelopeConfig) -> Result<Header> {
    config.validate()?;
    let header = read_header(bytes)?;
    let computed = checksum_of(bytes);
    if computed != header.checksum {
        return Err(SessileError::ChecksumMismatch {
            stored: header.checksum,
            computed,
        });
    }
    if header.flags & !KNOWN_FLAGS != 0 {
        return Err(SessileError::UnsupportedFlags {
            flags: header.flags,
        });
    }
    Ok(header)
}

/// Step 7 of decoding: `STATE_TOO_LARGE` when the header declares a raw
/// length over `config.max_raw_bytes`, before anything is allocated.
pub(crate) fn check_declared_size(header: &Header, config: &EnvelopeConfig) -> Result<()> {
    if header.raw_len as usize > config.max_raw_bytes {
        return Err(SessileError::StateTooLarge {
            size: u64::from(header.raw_len),
            limit: config.max_raw_bytes as u64,
        });
    }
    Ok(())
}

/// Inflates a raw deflate stream that must produce exactly `raw_len` bytes,
/// never holding more than `raw_len + 1` bytes of output.
///
/// What comes first in the stream decides (docs/FORMAT.md, step 9): a byte
/// past `raw_len` is `INFLATE_OVERFLOW` whatever follows it; invalid data
/// before that is `CORRUPT_PAYLOAD`; input that ends before the final block
/// is `LENGTH_MISMATCH` below `raw_len` bytes and `CORRUPT_PAYLOAD` at it; a
/// complete stream is checked for its length, then for bytes after its end.
fn inflate_exact(payload: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    // One byte of room past the declared length: that byte, if the stream
    // makes it, is the overflow. One call with Finish: miniz_oxide inflates
    // straight into `out` (the fast path, and the mode that refuses a
    // distance before the start of the output); it stops when `out` is full.
    let mut out = reserve(raw_len.saturating_add(1))?;
    let mut inflater = Decompress::new(false);
    let result = inflater.decompress_vec(payload, &mut out, FlushDecompress::Finish);
    if out.len() > raw_len {
        return Err(SessileError::InflateOverflow {
            declared: raw_len as u64,
        });
    }
    let short = || SessileError::LengthMismatch {
        declared: raw_len as u64,
        actual: out.len() as u64,
    };
    match result {
        Err(_) => Err(corrupt_stream()),
        // Room was left, so the input ended before the final block.
        Ok(status) if status != Status::StreamEnd => {
            if out.len() < raw_len {
                Err(short())
            } else {
                Err(corrupt_stream())
            }
        }
        Ok(_) if out.len() < raw_len => Err(short()),
        Ok(_) if inflater.total_in() as usize != payload.len() => {
            Err(SessileError::CorruptPayload {
                reason: "bytes after the end of the deflate stream",
            })
        }
        Ok(_) => Ok(out),
    }
}

/// An empty buffer with room for `len` bytes, or `STATE_TOO_LARGE` when the
/// allocator cannot give that much (never an abort).
fn reserve(len: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| SessileError::StateTooLarge {
            size: len as u64,
            limit: len as u64,
        })?;
    Ok(buf)
}

fn corrupt_stream() -> SessileError {
    SessileError::CorruptPayload {
        reason: "invalid deflate stream",
    }
}

/// CRC-32 over the header without its checksum field, then the payload.
pub(crate) fn checksum_of(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(&bytes[..OFF_CHECKSUM]);
    crc.update(&bytes[HEADER_LEN..]);
    crc.finish()
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
