//! The one error type of sessile. Every failure that reaches a caller (Rust,
//! the server, or JS through the bindings) is a [`SessileError`] whose
//! [`code`](SessileError::code) is a stable string documented in docs/FORMAT.md.

use thiserror::Error;

/// Everything that can go wrong in sessile, each variant with a stable code.
///
/// Messages say what happened and what to do; codes never change once
/// released, so pages may branch on them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessileError {
    /// The state's JSON is larger than the configured limit; nothing was
    /// encoded or stored. Make the state smaller or raise `maxBytes`.
    #[error("state is {size} bytes, above the limit of {limit} bytes")]
    StateTooLarge {
        /// Size of the state's JSON (or the size a snapshot declares), in bytes.
        size: u64,
        /// The configured limit, in bytes.
        limit: u64,
    },
    /// The bytes do not start with the snapshot magic: not a sessile snapshot.
    #[error("not a sessile snapshot (bad magic bytes)")]
    BadMagic,
    /// The snapshot was written by a newer (or unknown) format version.
    /// Upgrade sessile to read it; the stored bytes are left untouched.
    #[error(
        "snapshot format version {found} is not supported (this build reads up to {supported})"
    )]
    UnsupportedFormatVersion {
        /// The format version found in the header.
        found: u8,
        /// The newest format version this build reads.
        supported: u8,
    },
    /// The header sets flags this build does not know. Upgrade sessile to
    /// read it.
    #[error("snapshot flags {flags:#04x} are not supported by this build")]
    UnsupportedFlags {
        /// The flags byte found in the header.
        flags: u8,
    },
    /// The bytes end before the snapshot does (a torn or cut-off write).
    #[error("snapshot is truncated: {actual} bytes, at least {expected} needed")]
    Truncated {
        /// Bytes the snapshot needs at this point.
        expected: u64,
        /// Bytes that were there.
        actual: u64,
    },
    /// A length in the header disagrees with the bytes that follow it.
    #[error("snapshot length mismatch: header says {declared} bytes, found {actual}")]
    LengthMismatch {
        /// The length the header declares.
        declared: u64,
        /// The length actually found.
        actual: u64,
    },
    /// The checksum over header and payload does not match: the bytes were
    /// corrupted in storage or in transit. Use another copy.
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the bytes.
        computed: u32,
    },
    /// The compressed payload inflates past the raw length the header declares
    /// (a "zip bomb" or a lying header); decoding stopped at the declared length.
    #[error("compressed payload inflates past its declared {declared} bytes")]
    InflateOverflow {
        /// The raw length declared in the header.
        declared: u64,
    },
    /// The payload is not a valid deflate stream or not UTF-8 JSON text.
    #[error("snapshot payload is corrupt: {reason}")]
    CorruptPayload {
        /// What was wrong, in a few words.
        reason: &'static str,
    },
    /// The state is not what sessile keeps: not JSON, or (for a server
    /// session) valid JSON that is not an object.
    #[error("invalid state: {reason}")]
    InvalidState {
        /// What was wrong: what the JSON engine said, or what the value is.
        reason: String,
    },
    /// An option has a value sessile cannot work with.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOptions {
        /// The option's name, as the page spells it.
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// The link's persisted record or outbox does not read as one (not
    /// JSON, a field missing or of the wrong type, op ids that are not the
    /// consecutive ids of its client, another client's record). Its ops
    /// cannot be trusted; the page starts a new outbox.
    #[error("outbox is corrupt: {reason}")]
    OutboxCorrupt {
        /// What was wrong, in a few words.
        reason: String,
    },
    /// The storage backend cannot be used (no `window`, disabled, private mode).
    #[error("storage is unavailable: {reason}")]
    StorageUnavailable {
        /// Why, as the browser said it.
        reason: String,
    },
    /// The storage backend is full; the previous copy was kept.
    #[error("storage quota exceeded while writing {bytes} bytes")]
    QuotaExceeded {
        /// Size of the write that was refused, in bytes.
        bytes: u64,
    },
    /// The stored state has a newer schema than the page declares: an older
    /// page must not overwrite it. The stored copy is left untouched.
    #[error("stored state has schema version {stored}, newer than this page's {current}; it was left untouched")]
    SchemaTooNew {
        /// Schema version of the stored state.
        stored: u32,
        /// Schema version the page declares.
        current: u32,
    },
    /// A migration function failed or returned no value; the stored copy is
    /// left untouched.
    #[error("migration from schema version {from} failed: {reason}")]
    MigrationFailed {
        /// The schema version the failing migration starts from.
        from: u32,
        /// What the migration threw.
        reason: String,
    },
    /// The store was closed; open a new one to go on.
    #[error("the store is closed")]
    StoreClosed,
    /// Another tab stored a state after the one this write was based on (or
    /// the stored state went away); the write was refused so that nothing
    /// newer is lost, and this copy takes the stored state.
    #[error("the stored state moved to version {stored} since this copy read it; write of version {attempted} refused")]
    StaleWrite {
        /// Version found in storage.
        stored: u64,
        /// Version this copy tried to write.
        attempted: u64,
    },
    /// The stored copy is encrypted and the page gave no key (`encryption`
    /// option). Nothing was overwritten: open again with the key, or with
    /// `discardLocal` to drop the copy.
    #[error(
        "the stored copy of version {state_version} is encrypted; open with its key or discard it"
    )]
    KeyRequired {
        /// The state version its header gives.
        state_version: u64,
    },
    /// An encrypted stored copy failed AES-GCM's check: a wrong key, or its
    /// header or ciphertext was altered. Nothing was overwritten: open again
    /// with the right key, or with `discardLocal` to drop the copy.
    #[error("the stored copy of version {state_version} could not be decrypted: wrong key or altered bytes")]
    DecryptFailed {
        /// The state version its header gives.
        state_version: u64,
    },

    // --- Wire protocol and server-side sessions (docs/PROTOCOL.md) ---
    /// A frame is not a valid protocol message (not JSON, truncated, an
    /// unknown type, a missing field, or a message out of place). Fix the
    /// sender; the connection stays usable.
    #[error("protocol error: {reason}")]
    ProtocolError {
        /// What was wrong with the frame, in a few words.
        reason: String,
    },
    /// A frame is larger than the receiver accepts; it was not parsed.
    #[error("frame is {size} bytes, above the limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the frame, in bytes.
        size: u64,
        /// The receiver's limit, in bytes.
        limit: u64,
    },
    /// The peer speaks a protocol version this build does not. Upgrade the
    /// older side; nothing was applied.
    #[error("protocol version {found} is not supported (this build speaks {supported})")]
    UnsupportedProtocolVersion {
        /// The version the peer announced.
        found: u64,
        /// The version this build speaks.
        supported: u32,
    },
    /// The session's flow does not allow this status change; nothing changed.
    #[error("transition from `{from}` to `{to}` is not allowed")]
    InvalidTransition {
        /// The session's current status.
        from: String,
        /// The status that was asked for.
        to: String,
    },
    /// No flow of that name is known (built-in: `checkout`, `table`).
    #[error("unknown flow `{name}`")]
    UnknownFlow {
        /// The flow name that was asked for.
        name: String,
    },
    /// No session has this id (never created, or removed by the sweeper).
    #[error("session not found")]
    SessionNotFound,
    /// The session is past its TTL; start a new one.
    #[error("session expired")]
    SessionExpired,
    /// The session reached a terminal status (completed, closed, ended);
    /// start a new one.
    #[error("session is closed (status `{status}`)")]
    SessionClosed {
        /// The terminal status it is in.
        status: String,
    },
    /// The token does not belong to this session (or the admin token is wrong
    /// or missing). Nothing about the session is revealed.
    #[error("invalid or missing token")]
    InvalidToken,
    /// The op's base version is behind and a newer change touched the same
    /// keys; nothing was applied. Rebase on the current state and send again.
    #[error("version conflict: op based on version {base}, session is at {current}")]
    VersionConflict {
        /// The version the op was based on.
        base: u64,
        /// The session's current version.
        current: u64,
    },
    /// A version the client claims (`hello` `haveVersion`, the `since` of a
    /// long-poll, an op's `base`) is ahead of the session's: this server
    /// never produced it (a client of another server or of a restored older
    /// database). Nothing was applied; start again from version 0 (the whole
    /// state).
    #[error("version {have} is ahead of the session's version {current}; ask for version 0 to get the whole state")]
    VersionAhead {
        /// The version the client claimed.
        have: u64,
        /// The session's current version.
        current: u64,
    },
    /// An op's sequence number skips ahead of the next one expected from its
    /// client; it was refused. Send the missing ops first, in order.
    #[error("op sequence {got} is out of order: expected {expected}")]
    OpOutOfOrder {
        /// The next sequence number the server expects from this client.
        expected: u64,
        /// The sequence number received.
        got: u64,
    },
    /// The per-client-key limit of live sessions is reached (for example the
    /// maximum sessions per table). Close one, or wait for one to expire.
    #[error("{limit} live sessions already use this key")]
    SessionLimitReached {
        /// The configured maximum.
        limit: u64,
    },
    /// A per-address rate limit or cap of the server is reached (sessions
    /// created, connections); nothing was done. Try again after
    /// `retry_after_secs` (HTTP: 429 with `Retry-After`).
    #[error("rate limited ({what}): try again in {retry_after_secs} s")]
    RateLimited {
        /// Which limit, in a few words.
        what: String,
        /// Seconds until trying again may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// The request's `Origin` is not on the server's allow-list.
    #[error("origin `{origin}` is not allowed")]
    OriginNotAllowed {
        /// The origin the browser sent.
        origin: String,
    },
    /// No endpoint has this path (under `/v1/`); check the URL.
    #[error("no endpoint at `{path}`")]
    RouteNotFound {
        /// The path that was asked for.
        path: String,
    },
    /// The endpoint exists but does not take this HTTP method.
    #[error("method {method} is not allowed at `{path}`")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path that was asked for.
        path: String,
    },
    /// The server is overloaded or shutting down; try again shortly.
    #[error("server busy, try again")]
    ServerBusy,
    /// The server failed inside while handling the request (a bug, caught);
    /// nothing of it was stored. Trying again is safe.
    #[error("internal server error: {reason}")]
    InternalError {
        /// What failed, in a few words (no internals).
        reason: String,
    },
    /// The server's store failed to read or write; nothing was acknowledged.
    #[error("server storage failed: {reason}")]
    ServerStorage {
        /// What the store said.
        reason: String,
    },
}

/// `SessileError::code` and `SessileError::CODES` from one table: each
/// variant with its code, so the list cannot miss a variant (the match is
/// exhaustive) nor name a code twice (a test).
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        impl SessileError {
            /// Every code, in the order of the variants. js/src/errors.ts's
            /// `SESSILE_ERROR_CODES` is checked against it
            /// (`tests/error_codes.rs`).
            pub const CODES: &'static [&'static str] = &[$($code),*];

            /// The stable, machine-readable code of this error (SCREAMING_SNAKE_CASE).
            pub fn code(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $code,)*
                }
            }
        }
    };
}

error_codes! {
    StateTooLarge => "STATE_TOO_LARGE",
    BadMagic => "BAD_MAGIC",
    UnsupportedFormatVersion => "UNSUPPORTED_FORMAT_VERSION",
    UnsupportedFlags => "UNSUPPORTED_FLAGS",
    Truncated => "TRUNCATED",
    LengthMismatch => "LENGTH_MISMATCH",
    ChecksumMismatch => "CHECKSUM_MISMATCH",
    InflateOverflow => "INFLATE_OVERFLOW",
    CorruptPayload => "CORRUPT_PAYLOAD",
    InvalidState => "INVALID_STATE",
    InvalidOptions => "INVALID_OPTIONS",
    OutboxCorrupt => "OUTBOX_CORRUPT",
    StorageUnavailable => "STORAGE_UNAVAILABLE",
    QuotaExceeded => "QUOTA_EXCEEDED",
    SchemaTooNew => "SCHEMA_TOO_NEW",
    MigrationFailed => "MIGRATION_FAILED",
    StoreClosed => "STORE_CLOSED",
    StaleWrite => "STALE_WRITE",
    KeyRequired => "KEY_REQUIRED",
    DecryptFailed => "DECRYPT_FAILED",
    ProtocolError => "PROTOCOL_ERROR",
    FrameTooLarge => "FRAME_TOO_LARGE",
    UnsupportedProtocolVersion => "UNSUPPORTED_PROTOCOL_VERSION",
    InvalidTransition => "INVALID_TRANSITION",
    UnknownFlow => "UNKNOWN_FLOW",
    SessionNotFound => "SESSION_NOT_FOUND",
    SessionExpired => "SESSION_EXPIRED",
    SessionClosed => "SESSION_CLOSED",
    InvalidToken => "INVALID_TOKEN",
    VersionConflict => "VERSION_CONFLICT",
    VersionAhead => "VERSION_AHEAD",
    OpOutOfOrder => "OP_OUT_OF_ORDER",
    SessionLimitReached => "SESSION_LIMIT_REACHED",
    RateLimited => "RATE_LIMITED",
    OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
    RouteNotFound => "ROUTE_NOT_FOUND",
    MethodNotAllowed => "METHOD_NOT_ALLOWED",
    ServerBusy => "SERVER_BUSY",
    InternalError => "INTERNAL_ERROR",
    ServerStorage => "SERVER_STORAGE_ERROR",
}

impl SessileError {
    /// Whether trying the same thing again later may succeed without any
    /// change by the caller (storage that may come back or free up space).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::StorageUnavailable { .. }
                | Self::QuotaExceeded { .. }
                | Self::SessionLimitReached { .. }
                | Self::RateLimited { .. }
                | Self::ServerBusy
                | Self::InternalError { .. }
                | Self::ServerStorage { .. }
        )
    }
}

/// Shorthand for results whose error is a [`SessileError`].
pub type Result<T, E = SessileError> = std::result::Result<T, E>;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One error of each variant (`error_text`'s test checks every message).
    pub(crate) fn one_of_each() -> Vec<SessileError> {
        vec![
            SessileError::StateTooLarge { size: 2, limit: 1 },
            SessileError::BadMagic,
            SessileError::UnsupportedFormatVersion {
                found: 9,
                supported: 1,
            },
            SessileError::UnsupportedFlags { flags: 0x80 },
            SessileError::Truncated {
                expected: 40,
                actual: 3,
            },
            SessileError::LengthMismatch {
                declared: 1,
                actual: 2,
            },
            SessileError::ChecksumMismatch {
                stored: 1,
                computed: 2,
            },
            SessileError::InflateOverflow { declared: 1 },
            SessileError::CorruptPayload { reason: "x" },
            SessileError::InvalidState { reason: "x".into() },
            SessileError::OutboxCorrupt { reason: "x".into() },
            SessileError::InvalidOptions {
                option: "compressAbove",
                reason: "x".into(),
            },
            SessileError::StorageUnavailable { reason: "x".into() },
            SessileError::QuotaExceeded { bytes: 1 },
            SessileError::SchemaTooNew {
                stored: 2,
                current: 1,
            },
            SessileError::MigrationFailed {
                from: 1,
                reason: "x".into(),
            },
            SessileError::StaleWrite {
                stored: 2,
                attempted: 1,
            },
            SessileError::StoreClosed,
            SessileError::KeyRequired { state_version: 3 },
            SessileError::DecryptFailed { state_version: 3 },
            SessileError::ProtocolError { reason: "x".into() },
            SessileError::FrameTooLarge { size: 2, limit: 1 },
            SessileError::UnsupportedProtocolVersion {
                found: 2,
                supported: 1,
            },
            SessileError::InvalidTransition {
                from: "cart".into(),
                to: "success".into(),
            },
            SessileError::UnknownFlow { name: "x".into() },
            SessileError::SessionNotFound,
            SessileError::SessionExpired,
            SessileError::SessionClosed {
                status: "completed".into(),
            },
            SessileError::InvalidToken,
            SessileError::VersionConflict {
                base: 1,
                current: 2,
            },
            SessileError::VersionAhead {
                have: 9,
                current: 2,
            },
            SessileError::OpOutOfOrder {
                expected: 2,
                got: 4,
            },
            SessileError::SessionLimitReached { limit: 1 },
            SessileError::RateLimited {
                what: "x".into(),
                retry_after_secs: 1,
            },
            SessileError::OriginNotAllowed { origin: "x".into() },
            SessileError::RouteNotFound {
                path: "/v1/x".into(),
            },
            SessileError::MethodNotAllowed {
                method: "PUT".into(),
                path: "/v1/sessions".into(),
            },
            SessileError::ServerBusy,
            SessileError::InternalError { reason: "x".into() },
            SessileError::ServerStorage { reason: "x".into() },
        ]
    }

    #[test]
    fn codes_are_distinct_and_stable() {
        let all = one_of_each();
        let mut codes: Vec<_> = all.iter().map(SessileError::code).collect();
        assert_eq!(codes[0], "STATE_TOO_LARGE");
        assert_eq!(codes[6], "CHECKSUM_MISMATCH");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "every variant has its own code");
        let mut listed = SessileError::CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, codes, "CODES names each variant's code once");
        assert!(all.iter().all(|e| !e.to_string().is_empty()));
        assert!(SessileError::QuotaExceeded { bytes: 1 }.is_retryable());
        assert!(!SessileError::BadMagic.is_retryable());
        assert!(SessileError::ServerBusy.is_retryable());
        assert!(SessileError::RateLimited {
            what: "x".into(),
            retry_after_secs: 1
        }
        .is_retryable());
        assert!(!SessileError::SessionExpired.is_retryable());
        assert!(SessileError::InternalError { reason: "x".into() }.is_retryable());
        assert!(!SessileError::VersionAhead {
            have: 2,
            current: 1
        }
        .is_retryable());
    }
}
