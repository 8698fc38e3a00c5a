/**
 * The size limits of a state, named once for the package (Rust names them in
 * src/core/envelope.rs): the default `maxBytes` and the largest a page may
 * set (docs/FORMAT.md).
 */

/** Default limit on a state's JSON, in bytes: 5 MiB (`DEFAULT_MAX_RAW_BYTES` in Rust). */
export const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;

/** Largest `maxBytes` a page may set: 256 MiB (`MAX_RAW_BYTES_LIMIT` in Rust). */
export const MAX_BYTES_LIMIT = 256 * 1024 * 1024;
