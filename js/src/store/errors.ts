/**
 * The store's errors: SessileErrors with the codes and messages the page
 * branches on and logs, `{ code, message }` summaries for events and
 * diagnostics, and the conversion of anything thrown (by the wasm codec,
 * the browser or a page callback) into a SessileError.
 */
import { SessileError, toSessileError, type SessileErrorCode } from "../errors.js";

/** A SessileError; storage errors are retryable, as the core says. */
export function fail(code: SessileErrorCode, message: string): SessileError {
  return new SessileError(code, message, { retryable: code === "STORAGE_UNAVAILABLE" || code === "QUOTA_EXCEEDED" });
}

export const unavailable = (reason: string) => fail("STORAGE_UNAVAILABLE", `storage is unavailable: ${reason}`);

export const invalidState = (reason: string) => fail("INVALID_STATE", `state is not valid JSON: ${reason}`);

export const staleWrite = (stored: number, attempted: number) =>
  fail(
    "STALE_WRITE",
    `the stored state moved to version ${stored} since this copy read it; write of version ${attempted} refused`,
  );

/** The `message` of anything thrown. */
export function messageOf(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  return typeof thrown === "string" ? thrown : "unknown JavaScript error";
}

/** The `name` of anything thrown ("QuotaExceededError", "SecurityError", ...). */
export function nameOf(thrown: unknown): string {
  const name = (thrown as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : "";
}

/** Anything thrown as a SessileError: coded errors keep their code, others are `fallback`. */
export function coded(thrown: unknown, fallback: SessileErrorCode = "STORAGE_UNAVAILABLE"): SessileError {
  const e = toSessileError(thrown);
  if (e instanceof SessileError) return e;
  return fallback === "STORAGE_UNAVAILABLE" ? unavailable(messageOf(thrown)) : fail(fallback, messageOf(thrown));
}

/** `{ code, message }` of an error, for events and diagnostics. */
export function summary(e: SessileError): { code: string; message: string } {
  return { code: e.code, message: e.message };
}

/** Whether `e` is a SessileError with `code`. */
export const isCode = (e: unknown, code: SessileErrorCode): e is SessileError =>
  e instanceof SessileError && e.code === code;
