/**
 * A session's status and expiry on the page, checked by the rules the server
 * applies: which transitions a flow allows, the TTL bounds, how `extend`
 * moves the expiry, and when a session counts as expired.
 *
 * The flows' tables and bounds come from the Rust core (`flows.ts` is
 * generated from `src/core/lifecycle.rs`), a flow the page declares is
 * checked as the core checks it (`declared.ts`), and `tests/fixtures/lifecycle_cases.json`
 * (written from the core's own functions) holds every verdict this class
 * must give, so the page and the server cannot disagree. The rules run here
 * rather than in the wasm module because, as a wasm class, they cost about
 * 5 KB of the download (docs/PERFORMANCE.md).
 *
 * @module
 */
import { SessileError } from "../errors.js";
import { DEFAULT_TTL_SECS, MAX_TTL_SECS, MIN_TTL_SECS, type StatusKind } from "./flows.js";
import { flowOf, type FlowDeclaration, type FlowTable } from "./declared.js";

export { declareFlow, flowOf, flowTable, type FlowDeclaration, type FlowTable } from "./declared.js";

const kindOf = (flow: FlowTable, status: string): StatusKind | undefined =>
  Object.hasOwn(flow.statuses, status) ? flow.statuses[status] : undefined;

const allows = (flow: FlowTable, from: string, to: string): boolean =>
  Object.hasOwn(flow.transitions, from) && (flow.transitions[from] ?? []).includes(to);

/** `from` → `to` allowed, else `INVALID_TRANSITION` naming both. */
export function checkTransition(flow: FlowTable, from: string, to: string): void {
  if (!allows(flow, from, to)) {
    throw new SessileError("INVALID_TRANSITION", `transition from \`${from}\` to \`${to}\` is not allowed`);
  }
}

/** Whether a session in `status` expiring at `expiresAt` is due to expire at `now`. */
export function dueToExpire(flow: FlowTable, status: string, expiresAt: number, now: number): boolean {
  return now >= expiresAt && allows(flow, status, flow.expired);
}

/** Usable at `now`, else `SESSION_EXPIRED` or `SESSION_CLOSED`. */
export function checkValidity(flow: FlowTable, status: string, expiresAt: number, now: number): void {
  const kind = kindOf(flow, status);
  if (kind === "expired") throw new SessileError("SESSION_EXPIRED", "session expired");
  if (kind === "closed" || kind === undefined) {
    throw new SessileError("SESSION_CLOSED", `session is closed (status \`${status}\`)`);
  }
  if (dueToExpire(flow, status, expiresAt, now)) throw new SessileError("SESSION_EXPIRED", "session expired");
}

const wholeSeconds = (secs: number): number => Math.max(0, Math.trunc(secs));

/** The TTL in ms for `ttlSeconds` (default 30 min); outside 60 s–24 h is `INVALID_OPTIONS`. */
export function ttlMs(ttlSeconds?: number): number {
  const secs = ttlSeconds === undefined ? DEFAULT_TTL_SECS : wholeSeconds(ttlSeconds);
  if (!(secs >= MIN_TTL_SECS && secs <= MAX_TTL_SECS)) {
    throw new SessileError(
      "INVALID_OPTIONS",
      `invalid option \`ttlSeconds\`: ${secs} s is outside ${MIN_TTL_SECS}..=${MAX_TTL_SECS} s`,
    );
  }
  return secs * 1000;
}

/**
 * The expiry after extending by `seconds` at `now`: added to the later of
 * now and the expiry, never more than 24 h from now; `seconds` must be 1 s–24 h.
 */
export function extendedExpiry(expiresAt: number, now: number, seconds: number): number {
  const secs = wholeSeconds(seconds);
  if (!(secs >= 1 && secs <= MAX_TTL_SECS)) {
    throw new SessileError(
      "INVALID_OPTIONS",
      `invalid option \`seconds\`: ${secs} s is outside 1..=${MAX_TTL_SECS} s`,
    );
  }
  return Math.min(Math.max(expiresAt, now) + secs * 1000, now + MAX_TTL_SECS * 1000);
}

/** Status and expiry of one session under a built-in or declared flow. */
export class Lifecycle {
  private readonly flow: FlowTable;
  private current: string;
  private expiry: number;

  /**
   * A session of flow `flow` (a built-in one's name, "checkout" or "table",
   * or a declared table) at its initial status, expiring `ttlSeconds` (60 s
   * to 24 h, default 30 min) after `now`. `UNKNOWN_FLOW` / `INVALID_OPTIONS`
   * otherwise.
   */
  constructor(flow: string | FlowDeclaration, ttlSeconds: number | undefined, now: number) {
    this.flow = flowOf(flow);
    this.current = this.flow.initial;
    this.expiry = Math.max(0, Math.trunc(now)) + ttlMs(ttlSeconds);
  }

  /** The flow, every field given (a declared one as the server will store it). */
  get table(): FlowTable {
    return this.flow;
  }

  /** The current status. */
  get status(): string {
    return this.current;
  }

  /** When the session expires, ms since the Unix epoch. */
  get expiresAt(): number {
    return this.expiry;
  }

  /** What `status` means in this flow; undefined for a status it does not know. */
  kind(status: string): StatusKind | undefined {
    return kindOf(this.flow, status);
  }

  /** `INVALID_TRANSITION` unless the flow allows moving to `to` now (staying put is allowed). */
  check(to: string): void {
    if (to !== this.current) checkTransition(this.flow, this.current, to);
  }

  /** Takes a status the server reports (no check: the server decided). */
  setStatus(status: string): void {
    this.current = status;
  }

  /** Takes an expiry the server reports. */
  setExpiresAt(at: number): void {
    this.expiry = Math.max(0, Math.trunc(at));
  }

  /** Extends by `seconds` at `now` (the server's rule); stores and returns the new expiry. */
  extend(seconds: number, now: number): number {
    this.expiry = extendedExpiry(this.expiry, Math.max(0, Math.trunc(now)), seconds);
    return this.expiry;
  }

  /** `SESSION_EXPIRED` or `SESSION_CLOSED` when the session cannot be used at `now`. */
  validate(now: number): void {
    checkValidity(this.flow, this.current, this.expiry, now);
  }

  /** Whether the session is past its expiry at `now` in a status that may expire. */
  dueToExpire(now: number): boolean {
    return dueToExpire(this.flow, this.current, this.expiry, now);
  }

  /** The flow's status for an expired session, and for an ended one. */
  terminalStatuses(): [expired: string, ended: string] {
    return [this.flow.expired, this.flow.ended];
  }
}
