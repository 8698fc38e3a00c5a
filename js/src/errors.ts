/**
 * SessileError: the one error type sessile throws, with a stable `code`.
 * The wasm side throws plain `Error`s named "SessileError" with a `code`;
 * {@link toSessileError} turns them into instances of this class.
 */

/**
 * Every code a SessileError can carry on the page (docs/FORMAT.md and
 * docs/PROTOCOL.md say what each means): Rust's list (`SessileError::CODES`,
 * src/core/error.rs, in its order; tests/error_codes.rs checks this copy),
 * then the codes only this package's JavaScript raises
 * (`SERVER_UNREACHABLE`, `WASM_LOAD_FAILED`, `HANDLER_FAILED`). Answers of
 * the server that the link handles itself never reach the page as errors:
 * `VERSION_CONFLICT` becomes a `conflict` event, `OP_OUT_OF_ORDER` a resync,
 * `VERSION_AHEAD` (the server lost changes this page saw) a resync from
 * version 0; `SESSION_LIMIT_REACHED` is answered only to a backend that
 * creates sessions with a `key`.
 */
export const SESSILE_ERROR_CODES = [
  "STATE_TOO_LARGE",
  "BAD_MAGIC",
  "UNSUPPORTED_FORMAT_VERSION",
  "UNSUPPORTED_FLAGS",
  "TRUNCATED",
  "LENGTH_MISMATCH",
  "CHECKSUM_MISMATCH",
  "INFLATE_OVERFLOW",
  "CORRUPT_PAYLOAD",
  "INVALID_STATE",
  "INVALID_OPTIONS",
  "OUTBOX_CORRUPT",
  "STORAGE_UNAVAILABLE",
  "QUOTA_EXCEEDED",
  "SCHEMA_TOO_NEW",
  "MIGRATION_FAILED",
  "STORE_CLOSED",
  "STALE_WRITE",
  "KEY_REQUIRED",
  "DECRYPT_FAILED",
  "PROTOCOL_ERROR",
  "FRAME_TOO_LARGE",
  "UNSUPPORTED_PROTOCOL_VERSION",
  "INVALID_TRANSITION",
  "UNKNOWN_FLOW",
  "SESSION_NOT_FOUND",
  "SESSION_EXPIRED",
  "SESSION_CLOSED",
  "INVALID_TOKEN",
  "RATE_LIMITED",
  "ORIGIN_NOT_ALLOWED",
  "ROUTE_NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "SERVER_BUSY",
  "INTERNAL_ERROR",
  "SERVER_STORAGE_ERROR",
  "SERVER_UNREACHABLE",
  "WASM_LOAD_FAILED",
  "HANDLER_FAILED",
] as const;

/** A code of {@link SESSILE_ERROR_CODES}. */
export type SessileErrorCode = (typeof SESSILE_ERROR_CODES)[number];

/** An error from sessile; branch on `code`, show or log `message`. */
export class SessileError extends Error {
  override readonly name = "SessileError";
  /** Stable machine-readable code. */
  readonly code: SessileErrorCode;
  /** Whether the same call may succeed later without any change. */
  readonly retryable: boolean;

  constructor(code: SessileErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** Converts what the wasm module threw into a SessileError (others pass through). */
export function toSessileError(thrown: unknown): unknown {
  if (thrown instanceof SessileError) return thrown;
  if (thrown instanceof Error && thrown.name === "SessileError" && "code" in thrown) {
    const coded = thrown as Error & { code: SessileErrorCode; retryable?: boolean };
    return new SessileError(coded.code, coded.message, {
      cause: thrown,
      retryable: coded.retryable === true,
    });
  }
  return thrown;
}
