/**
 * `openSession`: a thin wrapper over the Rust session (`WasmSession`,
 * src/web/session_api/, driving the session engine of src/core). It gives
 * the session its types, turns a change function into the value it
 * returns, and what Rust throws into {@link SessileError}s; every decision
 * (options, flow checks, storage, tabs, the link to the server) is Rust's.
 */
import type * as wasm from "./wasm/sessile.js";
import { toSessileError } from "./errors.js";
import type { ServerSession, SessionDiagnostics, SessionEvent, SessionOptions } from "./types.js";

/** A namespace's state of type `T`, persisted and (with a server) synced. */
export interface Session<T> {
  /** The current state. */
  readonly state: T;
  /** The local state version. */
  readonly version: number;
  /** The server session id (null until created). */
  readonly sessionId: string | null;
  /** The server session token (null until created); keep it as secret as a cookie. */
  readonly token: string | null;
  /** The lifecycle status (the flow's initial one until the server says otherwise). */
  readonly status: string;
  /** When the session expires, ms since the epoch. */
  readonly expiresAt: number;
  /**
   * Applies a merge patch, or a function of the current state; persists and
   * syncs it. `to` also moves the status (INVALID_TRANSITION if the flow
   * does not allow it). Throws SESSION_EXPIRED / SESSION_CLOSED once the
   * session is over. Returns the new version.
   */
  update(change: Partial<T> | ((state: T) => T), options?: { to?: string }): number;
  /** Replaces the state; persists and syncs the difference. Returns the new version. */
  set(state: T, options?: { to?: string }): number;
  /** Moves the status to `to` (checked against the flow), with an optional change. */
  step(to: string, change?: Partial<T> | ((state: T) => T)): number;
  /** Adds `seconds` to the TTL (on the server when synced); resolves with the new expiry. */
  extend(seconds: number): Promise<number>;
  /** Whether the session can still be used: `{valid: true, expiresAt}` or `{valid: false, code}`. */
  validate(): Promise<{ valid: true; expiresAt: number } | { valid: false; code: string }>;
  /**
   * Ends the session: moves it to `reason` when that is a status the flow
   * allows (e.g. "completed"), else terminates it; clears the local copy
   * unless `keep` is true; then closes. Nothing is cleared before the server
   * has the end: with a reason it resolves once the server acknowledged it
   * (offline, it waits for the connection; the change stays in the outbox
   * if the page closes first). Terminating rejects with SERVER_UNREACHABLE
   * when the server cannot be reached, and only clears a session the server
   * already ended (expired, closed or gone).
   */
  end(reason?: string, options?: { keep?: boolean }): Promise<void>;
  /** Calls `handler` for every event of `type` ("*" for all); returns the unsubscribe. */
  on<K extends SessionEvent["type"] | "*">(
    type: K,
    handler: (event: K extends "*" ? SessionEvent : Extract<SessionEvent, { type: K }>) => void,
  ): () => void;
  /**
   * Calls `handler` for the next event of `type` ("*": the next event) only;
   * returns a function that cancels it before it fires.
   *
   * ```ts
   * session.once("state_synchronized", (e) => console.log("on the server at", e.version));
   * ```
   */
  once<K extends SessionEvent["type"] | "*">(
    type: K,
    handler: (event: K extends "*" ? SessionEvent : Extract<SessionEvent, { type: K }>) => void,
  ): () => void;
  /** Resolves when stored locally and, while connected or connecting, every change is acknowledged. */
  flush(): Promise<void>;
  /**
   * Seals everything stored with `key` from now on and re-encrypts what is
   * stored (the outbox and both slots) before it resolves; a reload then
   * needs the new key, and the old one fails with `DECRYPT_FAILED`.
   * `INVALID_OPTIONS` for a key that is not AES-256-GCM.
   */
  rotateKey(key: CryptoKey | Uint8Array | ArrayBuffer): Promise<void>;
  /**
   * The page's decision that the stored copies this session's key cannot
   * open (sealed by another tab's key, or a key the page lost) may be
   * written over: the ones stored now, not one another tab stores later.
   * Then the current state is written to both slots before it resolves, so
   * a save refused with `DECRYPT_FAILED` goes through. Resolves at once on a
   * session without an `encryption` key (it never refuses a write).
   */
  discardLocal(): Promise<void>;
  /** Joins another server session (or, without one, creates a new one holding the current state). */
  authenticate(session?: ServerSession): Promise<void>;
  /** Store, link and session figures. */
  diagnostics(): SessionDiagnostics;
  /** Flushes and releases everything (listeners, timers, connection, locks). */
  close(): Promise<void>;
}

type Handler = (event: SessionEvent) => void;
type Change<T> = Partial<T> | ((state: T) => T) | undefined;

/** Runs a call of the Rust session; what it throws becomes a SessileError. */
function call<R>(run: () => R): R {
  try {
    return run();
  } catch (e) {
    throw toSessileError(e);
  }
}

/** Awaits a request of the Rust session; a rejection becomes a SessileError. */
async function settle<R>(request: () => Promise<R>): Promise<R> {
  try {
    return await request();
  } catch (e) {
    throw toSessileError(e);
  }
}

/** Opens a session with the loaded module `w`. */
export async function openSessionWith<T>(w: typeof wasm, options: SessionOptions<T>): Promise<Session<T>> {
  const s = await settle(() => w.WasmSession.open(options));
  /** A change function runs here, on the current state; its value goes to Rust as a whole state. */
  const change = (c: Change<T>, to: string | undefined): number =>
    call(() => (typeof c === "function" ? s.set((c as (state: T) => T)(s.state() as T), to) : s.update(c ?? {}, to)));
  const listen = (type: string, handler: Handler, once: boolean): (() => void) => {
    const id = s.on(type, handler, once);
    return () => s.off(id);
  };
  return {
    get state() {
      return s.state() as T;
    },
    get version() {
      return s.version();
    },
    get sessionId() {
      return s.sessionId() ?? null;
    },
    get token() {
      return s.token() ?? null;
    },
    get status() {
      return s.status();
    },
    get expiresAt() {
      return s.expiresAt();
    },
    update: (c, opts) => change(c, opts?.to),
    set: (state, opts) => call(() => s.set(state, opts?.to)),
    step: (to, c) => (typeof c === "function" ? change(c, to) : call(() => s.step(to, c))),
    extend: (seconds) => settle(() => s.extend(seconds) as Promise<number>),
    validate: () => settle(() => s.validate() as ReturnType<Session<T>["validate"]>),
    end: (reason, opts) => settle(() => s.end(reason, opts?.keep === true) as Promise<void>),
    on: (type, handler) => listen(type, handler as Handler, false),
    once: (type, handler) => listen(type, handler as Handler, true),
    flush: () => settle(() => s.flush() as Promise<void>),
    rotateKey: (key) => settle(() => s.rotateKey(key) as Promise<void>),
    discardLocal: () => settle(() => s.discardLocal() as Promise<void>),
    authenticate: (session?: ServerSession) => settle(() => s.authenticate(session) as Promise<void>),
    diagnostics: () => s.diagnostics() as SessionDiagnostics,
    close: () => settle(() => s.close() as Promise<void>),
  };
}
