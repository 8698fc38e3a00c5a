//! The messages of sessile's errors, written without
//! `core::fmt`, so that the browser's module links no formatting machinery
//! (about 2 KB gzip of wasm once the standard library is built with
//! panic=immediate-abort, docs/PERFORMANCE.md). Each text equals the error's
//! `Display` (tested below): the page and the server say the same thing.
//! [`message`] covers every variant: the module never formats an error
//! through thiserror's `Display` (the server does).

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

/// The message of `err`, equal to its `Display` (tested below for every
/// variant) but written without `core::fmt`.
pub fn message(err: &SessileError) -> String {
    use SessileError as E;
    let d = decimal;
    let parts: &[&str] = match err {
        E::StateTooLarge { size, limit } => &[
            "state is ",
            &d(*size),
            " bytes, above the limit of ",
            &d(*limit),
            " bytes",
        ],
        E::BadMagic => &["not a sessile snapshot (bad magic bytes)"],
        E::UnsupportedFormatVersion { found, supported } => &[
            "snapshot format version ",
            &d(u64::from(*found)),
            " is not supported (this build reads up to ",
            &d(u64::from(*supported)),
            ")",
        ],
        E::UnsupportedFlags { flags } => &[
            "snapshot flags ",
            &hex(u64::from(*flags), 2),
            " are not supported by this build",
        ],
        E::Truncated { expected, actual } => &[
            "snapshot is truncated: ",
            &d(*actual),
            " bytes, at least ",
            &d(*expected),
            " needed",
        ],
        E::LengthMismatch { declared, actual } => &[
            "snapshot length mismatch: header says ",
            &d(*declared),
            " bytes, found ",
            &d(*actual),
        ],
        E::ChecksumMismatch { stored, computed } => &[
            "snapshot checksum mismatch: stored ",
            &hex(u64::from(*stored), 8),
            ", computed ",
            &hex(u64::from(*computed), 8),
        ],
        E::InflateOverflow { declared } => &[
            "compressed payload inflates past its declared ",
            &d(*declared),
            " bytes",
        ],
        E::CorruptPayload { reason } => &["snapshot payload is corrupt: ", reason],
        E::InvalidState { reason } => &["invalid state: ", reason],
        E::InvalidOptions { option, reason } => &["invalid option `", option, "`: ", reason],
        E::OutboxCorrupt { reason } => &["outbox is corrupt: ", reason],
        E::StorageUnavailable { reason } => &["storage is unavailable: ", reason],
        E::QuotaExceeded { bytes } => &[
            "storage quota exceeded while writing ",
            &d(*bytes),
            " bytes",
        ],
        E::SchemaTooNew { stored, current } => &[
            "stored state has schema version ",
            &d(u64::from(*stored)),
            ", newer than this page's ",
            &d(u64::from(*current)),
            "; it was left untouched",
        ],
        E::MigrationFailed { from, reason } => &[
            "migration from schema version ",
            &d(u64::from(*from)),
            " failed: ",
            reason,
        ],
        E::StoreClosed => &["the store is closed"],
        E::StaleWrite { stored, attempted } => &[
            "the stored state moved to version ",
            &d(*stored),
            " since this copy read it; write of version ",
            &d(*attempted),
            " refused",
        ],
        E::KeyRequired { state_version } => &[
            "the stored copy of version ",
            &d(*state_version),
            " is encrypted; open with its key or discard it",
        ],
        E::DecryptFailed { state_version } => &[
            "the stored copy of version ",
            &d(*state_version),
            " could not be decrypted: wrong key or altered bytes",
        ],
        E::ProtocolError { reason } => &["protocol error: ", reason],
        E::FrameTooLarge { size, limit } => &[
            "frame is ",
            &d(*size),
            " bytes, above the limit of ",
            &d(*limit),
            " bytes",
        ],
        E::UnsupportedProtocolVersion { found, supported } => &[
            "protocol version ",
            &d(*found),
            " is not supported (this build speaks ",
            &d(u64::from(*supported)),
            ")",
        ],
        E::InvalidTransition { from, to } => {
            &["transition from `", from, "` to `", to, "` is not allowed"]
        }
        E::UnknownFlow { name } => &["unknown flow `", name, "`"],
        E::SessionNotFound => &["session not found"],
        E::SessionExpired => &["session expired"],
        E::SessionClosed { status } => &["session is closed (status `", status, "`)"],
        E::InvalidToken => &["invalid or missing token"],
        E::VersionConflict { base, current } => &[
            "version conflict: op based on version ",
            &d(*base),
            ", session is at ",
            &d(*current),
        ],
        E::VersionAhead { have, current } => &[
            "version ",
            &d(*have),
            " is ahead of the session's version ",
            &d(*current),
            "; ask for version 0 to get the whole state",
        ],
        E::OpOutOfOrder { expected, got } => &[
            "op sequence ",
            &d(*got),
            " is out of order: expected ",
            &d(*expected),
        ],
        E::SessionLimitReached { limit } => &[&d(*limit), " live sessions already use this key"],
        E::RateLimited {
            what,
            retry_after_secs,
        } => &[
            "rate limited (",
            what,
            "): try again in ",
            &d(*retry_after_secs),
            " s",
        ],
        E::OriginNotAllowed { origin } => &["origin `", origin, "` is not allowed"],
        E::RouteNotFound { path } => &["no endpoint at `", path, "`"],
        E::MethodNotAllowed { method, path } => {
            &["method ", method, " is not allowed at `", path, "`"]
        }
        E::ServerBusy => &["server busy, try again"],
        E::InternalError { reason } => &["internal server error: ", reason],
        E::ServerStorage { reason } => &["server storage failed: ", reason],
    };
    parts.concat()
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
    fn every_message_equals_display() {
        for e in crate::core::error::tests::one_of_each() {
            assert_eq!(message(&e), e.to_string(), "{}", e.code());
        }
        let odd = [
            SessileError::StateTooLarge {
                size: 5_242_881,
                limit: 5_242_880,
            },
            SessileError::UnsupportedFlags { flags: 0x06 },
            SessileError::ChecksumMismatch {
                stored: 0x0012_abcd,
                computed: 0xffff_0000,
            },
            SessileError::UnsupportedProtocolVersion {
                found: u64::MAX,
                supported: u32::MAX,
            },
            SessileError::SchemaTooNew {
                stored: 0,
                current: u32::MAX,
            },
            SessileError::MigrationFailed {
                from: 2,
                reason: "no migration function migrate[2]".into(),
            },
        ];
        for e in &odd {
            assert_eq!(message(e), e.to_string(), "{}", e.code());
        }
    }
}
