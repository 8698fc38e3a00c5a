//! The messages of the errors the snapshot codec returns, written without
//! `core::fmt`, so that the browser's module links no formatting machinery
//! (about 2 KB gzip of wasm once the standard library is built with
//! panic=immediate-abort, docs/PERFORMANCE.md). Each text equals the error's
//! `Display` (tested below): the page and the server say the same thing.
//! [`codec_message`] covers the codec's errors, [`store_message`] the
//! store's (what `openStore` and its store reject with or report).

use super::error::SessileError;

/// `n` in decimal.
pub fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..].iter().map(|&d| char::from(d)).collect()
}

/// `0x` and the low `width` hex digits of `n`, zero-padded (as `{:#0w$x}`
/// with `w = width + 2`).
pub fn hex(n: u64, width: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::from("0x");
    for i in (0..width).rev() {
        out.push(char::from(HEX[((n >> (i * 4)) & 0xF) as usize]));
    }
    out
}

/// The message of `err` when the codec can return it; `None` for the others
/// (the server formats those with `Display`).
pub fn codec_message(err: &SessileError) -> Option<String> {
    use SessileError as E;
    let parts: &[&str] = match err {
        E::StateTooLarge { size, limit } => &[
            "state is ",
            &decimal(*size),
            " bytes, above the limit of ",
            &decimal(*limit),
            " bytes",
        ],
        E::BadMagic => &["not a sessile snapshot (bad magic bytes)"],
        E::UnsupportedFormatVersion { found, supported } => &[
            "snapshot format version ",
            &decimal(u64::from(*found)),
            " is not supported (this build reads up to ",
            &decimal(u64::from(*supported)),
            ")",
        ],
        E::UnsupportedFlags { flags } => &[
            "snapshot flags ",
            &hex(u64::from(*flags), 2),
            " are not supported by this build",
        ],
        E::Truncated { expected, actual } => &[
            "snapshot is truncated: ",
            &decimal(*actual),
            " bytes, at least ",
            &decimal(*expected),
            " needed",
        ],
        E::LengthMismatch { declared, actual } => &[
            "snapshot length mismatch: header says ",
            &decimal(*declared),
            " bytes, found ",
            &decimal(*actual),
        ],
        E::ChecksumMismatch { stored, computed } => &[
            "snapshot checksum mismatch: stored ",
            &hex(u64::from(*stored), 8),
            ", computed ",
            &hex(u64::from(*computed), 8),
        ],
        E::InflateOverflow { declared } => &[
            "compressed payload inflates past its declared ",
            &decimal(*declared),
            " bytes",
        ],
        E::CorruptPayload { reason } => &["snapshot payload is corrupt: ", reason],
        E::InvalidOptions { option, reason } => &["invalid option `", option, "`: ", reason],
        E::OutboxCorrupt { reason } => &["outbox is corrupt: ", reason],
        _ => return None,
    };
    Some(parts.concat())
}

/// The message of `err` when the store can return it (its own errors and
/// the storage's); `None` for the others.
pub fn store_message(err: &SessileError) -> Option<String> {
    use SessileError as E;
    let parts: &[&str] = match err {
        E::InvalidState { reason } => &["invalid state: ", reason],
        E::StorageUnavailable { reason } => &["storage is unavailable: ", reason],
        E::QuotaExceeded { bytes } => &[
            "storage quota exceeded while writing ",
            &decimal(*bytes),
            " bytes",
        ],
        E::SchemaTooNew { stored, current } => &[
            "stored state has schema version ",
            &decimal(u64::from(*stored)),
            ", newer than this page's ",
            &decimal(u64::from(*current)),
            "; it was left untouched",
        ],
        E::MigrationFailed { from, reason } => &[
            "migration from schema version ",
            &decimal(u64::from(*from)),
            " failed: ",
            reason,
        ],
        E::StoreClosed => &["the store is closed"],
        E::StaleWrite { stored, attempted } => &[
            "the stored state moved to version ",
            &decimal(*stored),
            " since this copy read it; write of version ",
            &decimal(*attempted),
            " refused",
        ],
        _ => return None,
    };
    Some(parts.concat())
}

/// The message of any error the codec or the store returns; the code alone
/// for the others.
pub fn message(err: &SessileError) -> String {
    codec_message(err)
        .or_else(|| store_message(err))
        .unwrap_or_else(|| err.code().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_fmt_would() {
        for n in [0, 7, 10, 99, 100, 65_535, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        assert_eq!(hex(0x0b, 2), format!("{:#04x}", 0x0b));
        assert_eq!(hex(0xdead_beef, 8), format!("{:#010x}", 0xdead_beef_u32));
        assert_eq!(hex(0x12, 8), format!("{:#010x}", 0x12));
    }

    #[test]
    fn every_codec_message_equals_display() {
        let errors = [
            SessileError::StateTooLarge {
                size: 5_242_881,
                limit: 5_242_880,
            },
            SessileError::BadMagic,
            SessileError::UnsupportedFormatVersion {
                found: 9,
                supported: 1,
            },
            SessileError::UnsupportedFlags { flags: 0x06 },
            SessileError::Truncated {
                expected: 40,
                actual: 12,
            },
            SessileError::LengthMismatch {
                declared: 300,
                actual: 299,
            },
            SessileError::ChecksumMismatch {
                stored: 0x0012_abcd,
                computed: 0xffff_0000,
            },
            SessileError::InflateOverflow { declared: 1024 },
            SessileError::CorruptPayload {
                reason: "not a deflate stream",
            },
            SessileError::InvalidOptions {
                option: "maxBytes",
                reason: "must be between 1 and 9".into(),
            },
            SessileError::OutboxCorrupt {
                reason: "op ids are not consecutive ids of this client".into(),
            },
        ];
        for e in &errors {
            assert_eq!(
                codec_message(e).as_deref(),
                Some(e.to_string().as_str()),
                "{}",
                e.code()
            );
        }
        assert_eq!(codec_message(&SessileError::SessionExpired), None);
    }

    #[test]
    fn every_store_message_equals_display() {
        let errors = [
            SessileError::InvalidState {
                reason: "the state must be a JSON value".into(),
            },
            SessileError::StorageUnavailable {
                reason: "SecurityError: denied".into(),
            },
            SessileError::QuotaExceeded { bytes: 2_097_162 },
            SessileError::SchemaTooNew {
                stored: 4,
                current: 3,
            },
            SessileError::MigrationFailed {
                from: 2,
                reason: "no migration function migrate[2]".into(),
            },
            SessileError::StoreClosed,
            SessileError::StaleWrite {
                stored: 7,
                attempted: 6,
            },
        ];
        for e in &errors {
            assert_eq!(store_message(e).as_deref(), Some(e.to_string().as_str()));
            assert_eq!(message(e), e.to_string());
        }
        assert_eq!(message(&SessileError::SessionExpired), "SESSION_EXPIRED");
        assert_eq!(
            message(&SessileError::BadMagic),
            SessileError::BadMagic.to_string()
        );
    }
}
