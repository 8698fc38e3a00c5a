/**
 * A synced session: the namespace's persisted store (local truth, restored
 * on load, shared by tabs) plus, when a server is given, this tab's link
 * (the sans-IO core in ./link/core/, driven by ./link/driver.ts). Every local change is written
 * to the store and becomes an op in the crash-safe outbox before it is sent;
 * what the server confirms, or another client changed, flows back into the
 * store, except where another tab of this browser still has changes to send
 * (./link/pending.ts; docs/PROTOCOL.md, "Tabs of a synced session").
 */
import type * as wasm from "./wasm/sessile.js";
import type { StoreDiagnostics, StoreEvent } from "./store-types.js";
import { SessileError, toSessileError } from "./errors.js";
import { DEFAULT_MAX_BYTES, MAX_BYTES_LIMIT } from "./limits.js";
import { Lifecycle } from "./lifecycle/lifecycle.js";
import type { FlowDeclaration } from "./lifecycle/declared.js";
import type { Store, TypedStoreOptions } from "./store-types.js";
import { applyMergePatch, sameJson, type Json } from "./link/core/merge-patch.js";
import { LinkDriver, type LinkCoreRecord, type LinkDiagnostics, type LinkEventData, type LinkOptions } from "./link/driver.js";
import {
  callSession,
  clientIdentity,
  createServerSession,
  forgetClient,
  knownClients,
  rememberLifecycle,
  rememberSession,
  rememberedLifecycle,
  rememberedSession,
  type ClientIdentity,
  type ServerSession,
} from "./link/identity.js";
import { forgetPending, getAt, keepPending, overlaps, pathsOf, pendingOf, publishPending, type Path } from "./link/pending.js";
import { REBASE_UNSAVED } from "./store/options.js";

/** Where the server is, and optionally which session to join. */
export interface ServerOptions {
  /** Base URL of the server's HTTP API, e.g. `https://shop.example/sessile`. */
  http: string;
  /** WebSocket URL (default: `http` with a ws: or wss: scheme, plus `/v1/ws`). */
  ws?: string;
  /** A session created by the shop's backend; default: remembered, else created by the client. */
  session?: ServerSession;
}

/** Options of {@link openSession}. */
export type SessionOptions<T> = Omit<TypedStoreOptions<T>, "onEvent"> &
  LinkOptions & {
    /** Sync with this server (optional: without it the session is local only). */
    server?: ServerOptions;
    /**
     * The lifecycle flow: a built-in one's name, "checkout" (default) or
     * "table", or a table the page declares ({@link FlowDeclaration}). The
     * page checks every status change against it, and the server, which
     * gets the table when it creates the session, enforces the same one.
     *
     * ```ts
     * flow: {
     *   initial: "cart",
     *   statuses: { cart: "active", paying: "waiting", paid: "closed",
     *               expired: "expired", terminated: "closed" },
     *   transitions: { cart: ["paying", "expired", "terminated"], paying: ["paid", "terminated"] },
     * }
     * ```
     */
    flow?: string | FlowDeclaration;
    /** Time to live, seconds (60 to 86400, default 1800). */
    ttlSeconds?: number;
    /** Receives every event. */
    onEvent?: (event: SessionEvent) => void;
  };

/** Events of a session: the store's, the link's and the session's own. */
export type SessionEvent =
  | StoreEvent
  | { type: "session_created"; id: string }
  | { type: "session_expired"; expiresAt: number; status: string }
  | { type: "session_terminated"; reason: string; status: string }
  | { type: "status_changed"; status: string }
  | { type: "session_updated"; origin: "server"; version: number; serverVersion: number }
  | { type: "connection_established"; transport: "websocket" | "http" }
  | { type: "connection_lost"; reason: "closed" | "dead" | "timeout" | "resync" | "offline" | "server" | "upgrade" }
  | { type: "connection_restored"; transport: "websocket" | "http" }
  | { type: "state_synchronized"; version: number; confirmed: number }
  | { type: "auth_required"; code: string }
  | { type: "auth_success"; id: string }
  | { type: "auth_failed"; code: string; message: string }
  | { type: "conflict"; op: number; local: unknown; server: unknown; winner: "server" }
  | { type: "error_occurred"; error: { code: string; message: string }; during: "sync"; terminal: boolean };

/** What `diagnostics()` reports. */
export type SessionDiagnostics = StoreDiagnostics & {
  /** The server session id, once known. */
  sessionId: string | null;
  /** The lifecycle status and expiry (ms since the epoch). */
  status: string;
  expiresAt: number;
  /** The link, when a server is configured and the session exists there. */
  link: LinkDiagnostics | null;
};

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
  /** Joins another server session (or, without one, creates a new one holding the current state). */
  authenticate(session?: ServerSession): Promise<void>;
  /** Store, link and session figures. */
  diagnostics(): SessionDiagnostics;
  /** Flushes and releases everything (listeners, timers, connection, locks). */
  close(): Promise<void>;
}

type Handler = (event: SessionEvent) => void;

function wsUrlOf(http: string): string {
  const u = new URL(http.replace(/\/+$/, "") + "/v1/ws", location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/** Opens a session with the loaded module `w` and its `openStore`. */
export async function openSessionWith<T>(
  w: typeof wasm,
  openStore: <S>(o: TypedStoreOptions<S>) => Promise<Store<S>>,
  options: SessionOptions<T>,
): Promise<Session<T>> {
  const { server, flow, ttlSeconds, onEvent, ...rest } = options;
  let life: Lifecycle;
  try {
    life = new Lifecycle(flow ?? "checkout", ttlSeconds, Date.now());
  } catch (e) {
    throw toSessileError(e);
  }
  const handlers = new Map<string, Set<Handler>>();
  const subscribe = (type: string, handler: Handler): (() => void) => {
    const set = handlers.get(type) ?? new Set<Handler>();
    handlers.set(type, set);
    set.add(handler);
    return () => void set.delete(handler);
  };
  /** Calls one page handler; one that throws is reported (console, then `error_occurred`) and never stops sessile. */
  const call = (h: Handler, e: SessionEvent) => {
    try {
      h(e);
    } catch (err) {
      console.error(`sessile: a "${e.type}" event handler threw`, err);
      // A handler of this very report that throws again is only logged.
      if (e.type === "error_occurred" && e.error.code === "HANDLER_FAILED") return;
      const message = err instanceof Error ? err.message : String(err);
      emit({ type: "error_occurred", error: { code: "HANDLER_FAILED", message: `a "${e.type}" event handler threw: ${message}` }, during: "sync", terminal: false });
    }
  };
  const emit = (e: SessionEvent): void => {
    if (onEvent) call(onEvent, e);
    for (const key of [e.type, "*"]) for (const h of handlers.get(key) ?? []) call(h, e);
  };
  // Set once the link has started; the store's conflicts and the lifecycle hooks below reach it.
  let link: SyncedLink<T> | undefined;
  const store = await openStore<T>({
    ...rest,
    // Synced: a tab that takes another tab's stored copy puts its own unsaved changes back on top
    // of it, in the same task (docs/PROTOCOL.md, "Tabs of a synced session").
    ...(server ? { [REBASE_UNSAVED]: true } : {}),
    onEvent: emit,
  } as TypedStoreOptions<T>);
  const [expiredStatus, endedStatus] = life.terminalStatuses();
  let over = false;
  let expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Timestamp based: a timer that fires late (sleep, background) still finds the session expired. */
  const checkExpiry = () => {
    clearTimeout(expiryTimer);
    if (over) return;
    const now = Date.now();
    if (life.dueToExpire(now)) {
      over = true;
      life.setStatus(expiredStatus);
      emit({ type: "session_expired", expiresAt: life.expiresAt, status: expiredStatus });
      return;
    }
    expiryTimer = setTimeout(checkExpiry, Math.min(2 ** 31 - 1, Math.max(0, life.expiresAt - now) + 20));
  };
  const lifecycleHooks: LifecycleHooks = {
    status(status) {
      if (status === "" || status === life.status) return;
      life.setStatus(status);
      link?.rememberLifecycle(life.status, life.expiresAt);
      emit({ type: "status_changed", status });
      const kind = life.kind(status);
      if (!over && kind === "expired") {
        over = true;
        emit({ type: "session_expired", expiresAt: life.expiresAt, status });
      } else if (!over && kind === "closed") {
        over = true;
        emit({ type: "session_terminated", reason: status, status });
      }
    },
    expiresAt(at) {
      if (at > 0 && at !== life.expiresAt) {
        life.setExpiresAt(at);
        link?.rememberLifecycle(life.status, life.expiresAt);
        checkExpiry();
      }
    },
  };
  // The server gets a declared table as the page validated it, every field given.
  const linkOptions = flow !== null && typeof flow === "object" ? { ...options, flow: life.table } : options;
  link = server ? await SyncedLink.start(openStore, store, linkOptions, server, emit, lifecycleHooks) : undefined;
  link?.rememberLifecycle(life.status, life.expiresAt);
  document.addEventListener("visibilitychange", checkExpiry);
  checkExpiry();

  const change = (after: T, to: string | undefined): number => {
    try {
      life.validate(Date.now());
      if (to !== undefined) life.check(to);
    } catch (e) {
      throw toSessileError(e);
    }
    const before = store.state;
    const version = store.set(after);
    try {
      link?.submit(before, after, to);
    } catch (e) {
      throw toSessileError(e);
    }
    if (to !== undefined) lifecycleHooks.status(to);
    return version;
  };
  const next = (changeOrFn: Partial<T> | ((state: T) => T) | undefined): T =>
    typeof changeOrFn === "function"
      ? (changeOrFn as (s: T) => T)(store.state)
      : (applyMergePatch(store.state, changeOrFn ?? {}) as T);
  const shutdown = async (forget = false) => {
    clearTimeout(expiryTimer);
    document.removeEventListener("visibilitychange", checkExpiry);
    await link?.close(forget);
  };

  return {
    get state() {
      return store.state;
    },
    get version() {
      return store.version;
    },
    get sessionId() {
      return link?.server?.id ?? null;
    },
    get token() {
      return link?.server?.token ?? null;
    },
    get status() {
      return life.status;
    },
    get expiresAt() {
      return life.expiresAt;
    },
    update(changeOrFn, opts) {
      return change(next(changeOrFn), opts?.to);
    },
    set(state, opts) {
      return change(state, opts?.to);
    },
    step(to, changeOrFn) {
      return change(next(changeOrFn), to);
    },
    async extend(seconds) {
      if (link?.server) {
        const { expiresAt } = await callSession<{ expiresAt: number }>(server!.http, link.server, "POST", "/extend", { seconds });
        lifecycleHooks.expiresAt(expiresAt);
      } else {
        try {
          life.extend(seconds, Date.now());
        } catch (e) {
          throw toSessileError(e);
        }
        checkExpiry();
      }
      return life.expiresAt;
    },
    async validate() {
      if (link?.server) {
        const v = await callSession<{ valid: boolean; code?: string; expiresAt?: number }>(server!.http, link.server, "POST", "/validate");
        if (v.valid) {
          lifecycleHooks.expiresAt(v.expiresAt ?? 0);
          return { valid: true, expiresAt: life.expiresAt };
        }
        return { valid: false, code: v.code ?? "SESSION_CLOSED" };
      }
      try {
        life.validate(Date.now());
        return { valid: true, expiresAt: life.expiresAt };
      } catch (e) {
        return { valid: false, code: (toSessileError(e) as SessileError).code };
      }
    },
    async end(reason = endedStatus, opts) {
      const toReason = life.kind(reason) === "closed" && reason !== endedStatus;
      if (toReason) {
        if (life.status !== reason) change(store.state, reason);
        // The outbox holding the final status goes with the local copy: not before the server has it.
        await link?.acknowledged();
      } else {
        if (link?.server) {
          try {
            await callSession(server!.http, link.server, "DELETE", "");
          } catch (e) {
            // Already over on the server (expired, ended, swept): ending it here is all that is left.
            if (!ALREADY_OVER.has((e as SessileError).code)) throw e;
          }
        }
        lifecycleHooks.status(endedStatus);
      }
      if (!over) {
        over = true;
        emit({ type: "session_terminated", reason, status: life.status });
      }
      await shutdown(!opts?.keep);
      if (!opts?.keep) await store.clear();
      await store.close();
      handlers.clear();
    },
    on: (type, handler) => subscribe(type, handler as Handler),
    once(type, handler) {
      const off = subscribe(type, (e) => {
        off();
        (handler as Handler)(e);
      });
      return off;
    },
    async flush() {
      await store.flush();
      await link?.flush();
    },
    async authenticate(session) {
      if (!link) throw new SessileError("INVALID_OPTIONS", "authenticate needs a session opened with `server`");
      await link.restart(session);
    },
    diagnostics() {
      return {
        ...store.diagnostics(),
        sessionId: link?.server?.id ?? null,
        status: life.status,
        expiresAt: life.expiresAt,
        link: link?.diagnostics() ?? null,
      };
    },
    async close() {
      await shutdown();
      await store.close();
      handlers.clear();
    },
  };
}

/** What a DELETE of a session can answer when the server has already ended it. */
const ALREADY_OVER = new Set(["SESSION_EXPIRED", "SESSION_CLOSED", "SESSION_NOT_FOUND"]);

/** How the link tells the session's lifecycle what the server said. */
interface LifecycleHooks {
  status(status: string): void;
  expiresAt(at: number): void;
}

/** What an op of this tab was made on: its patch, the paths it sets and the page's values there before it. */
interface MadeOn {
  patch: Json;
  paths: Path[];
  values: (Json | undefined)[];
}

/**
 * The record a tab keeps of its link: which server session, and the core's
 * record.
 */
interface LinkRecord {
  session: string;
  record: LinkCoreRecord;
}

/** A link record's limit: the state limit twice (confirmed state and a full patch) plus 64 KiB. */
function linkRecordLimit(stateLimit: number | undefined): number {
  const limit = typeof stateLimit === "number" && stateLimit > 0 ? stateLimit : DEFAULT_MAX_BYTES;
  return Math.min(MAX_BYTES_LIMIT, 2 * limit + 64 * 1024);
}

/** The sync half of a session: identity, server session, record store and driver. */
class SyncedLink<T> {
  server: ServerSession | undefined;
  private driver: LinkDriver | undefined;
  private creating: ReturnType<typeof setTimeout> | undefined;
  private authPending = true;
  private closed = false;
  private lastReconciled = 0;
  /** This client's entry in the pending register as last written ("" for none). */
  private published = "";
  private publishFailed = false;
  /** Per unanswered op of this tab (by sequence): its patch, its paths and the page's values there when it was made. */
  private readonly madeOn = new Map<number, MadeOn>();

  private constructor(
    private readonly store: Store<T>,
    private readonly records: Store<LinkRecord | null>,
    private readonly identity: ClientIdentity,
    private readonly options: SessionOptions<T>,
    private readonly endpoint: { http: string; ws: string },
    private readonly emit: (e: SessionEvent) => void,
    private readonly life: LifecycleHooks,
  ) {}

  static async start<T>(
    openStore: <S>(o: TypedStoreOptions<S>) => Promise<Store<S>>,
    store: Store<T>,
    options: SessionOptions<T>,
    server: ServerOptions,
    emit: (e: SessionEvent) => void,
    life: LifecycleHooks,
  ): Promise<SyncedLink<T>> {
    const identity = await clientIdentity(options.name);
    const records = await openStore<LinkRecord | null>({
      name: `${options.name}:link:${identity.id}`,
      initial: null,
      debounceMs: 0,
      persist: false,
      // The record holds the confirmed state and the unanswered ops' patches.
      maxBytes: linkRecordLimit(options.maxBytes),
      ...(options.storage === undefined ? {} : { storage: options.storage }),
      onEvent: (e) => {
        if (e.type === "error_occurred" || e.type === "storage_degraded") emit(e);
      },
    });
    if (identity.problem) {
      const err = identity.problem;
      emit({ type: "error_occurred", error: { code: err.code, message: err.message }, during: "sync", terminal: false });
    }
    const link = new SyncedLink(store, records, identity, options, { http: server.http, ws: server.ws ?? wsUrlOf(server.http) }, emit, life);
    const known = server.session ?? rememberedSession(options.name);
    if (known) {
      rememberSession(options.name, known);
      // Where the session was when this browser last knew: the server's welcome corrects it.
      const kept = rememberedLifecycle(options.name, known.id);
      if (kept) {
        life.status(kept.status);
        // A remembered expiry already past may have been extended elsewhere: the server says.
        if (kept.expiresAt > Date.now()) life.expiresAt(kept.expiresAt);
      }
      link.connect(known, false);
    } else {
      await link.create(0);
    }
    return link;
  }

  submit(before: T, after: T, to: string | undefined): void {
    const driver = this.driver;
    if (!driver) return;
    const had = driver.outboxLength;
    const seq = driver.submit(before, after, to);
    if (seq > 0) this.rememberMadeOn(seq, before as Json, to, had);
    this.publish();
  }

  /**
   * Keeps what op `seq` (just submitted, the outbox holding `had` ops
   * before it) was made on, for {@link resubmit}. When the outbox coalesced
   * ops to take it, sequences moved: everything kept is dropped (those ops
   * lose a conflict as any client's would).
   */
  private rememberMadeOn(seq: number, before: Json, to: string | undefined, had: number): void {
    const driver = this.driver;
    const op = driver?.newestOp();
    if (!driver || driver.outboxLength !== had + 1 || op?.seq !== seq) {
      this.madeOn.clear();
      return;
    }
    if (to !== undefined) return;
    const paths = pathsOf(op.patch);
    this.madeOn.set(seq, { patch: op.patch, paths, values: paths.map((p) => getAt(before, p)) });
  }

  /**
   * An op of this tab refused as a conflict is submitted again on the
   * current version when the server's values at its paths are the ones it
   * was made on: what it conflicted with is a change this tab had already
   * taken from another tab (docs/PROTOCOL.md, "Tabs of a synced session",
   * rule 3). Returns whether it was.
   */
  private resubmit(seq: number, local: unknown, server: unknown): boolean {
    const made = this.madeOn.get(seq);
    const driver = this.driver;
    if (!made || !driver || !sameJson(made.patch, local)) return false;
    if (!made.paths.every((p, i) => sameJson(getAt(server as Json, p), made.values[i]))) return false;
    // A later op of this tab on the same paths holds the newer values already.
    const later = driver.pendingOps().filter((op) => op.seq > seq);
    if (later.some((op) => pathsOf(op.patch).some((p) => made.paths.some((q) => overlaps(p, q))))) return false;
    const view = driver.view();
    const next = applyMergePatch(view, made.patch);
    const had = driver.outboxLength;
    const again = driver.submit(view, next);
    if (again > 0) this.rememberMadeOn(again, view as Json, undefined, had);
    return true;
  }

  flush(): Promise<void> {
    return this.driver?.whenSynced() ?? Promise.resolve();
  }

  /** Resolves once the server has answered every op, waiting through a lost connection. */
  acknowledged(): Promise<void> {
    return this.driver?.whenAcknowledged() ?? Promise.resolve();
  }

  /** Drops what is kept of ops the server has answered. */
  private forgetAnswered(): void {
    if (this.madeOn.size === 0 || !this.driver) return;
    const live = new Set(this.driver.pendingOps().map((op) => op.seq));
    for (const seq of this.madeOn.keys()) if (!live.has(seq)) this.madeOn.delete(seq);
  }

  /** Keeps the session's status and expiry for the next load of the page (or another tab). */
  rememberLifecycle(status: string, expiresAt: number): void {
    if (this.server && !this.closed) rememberLifecycle(this.options.name, { session: this.server.id, status, expiresAt });
  }

  diagnostics(): LinkDiagnostics | null {
    return this.driver?.diagnostics() ?? null;
  }

  async restart(session?: ServerSession): Promise<void> {
    await this.driver?.close();
    this.driver = undefined;
    this.authPending = true;
    if (session) {
      rememberSession(this.options.name, session);
      this.connect(session, false);
    } else {
      rememberSession(this.options.name, undefined);
      await this.create(0);
    }
  }

  /** Stops the link; with `forget` (the session ended) also drops the server session, this client and its record. */
  async close(forget = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.creating);
    await this.driver?.close();
    // Ops left in the outbox stay listed: the tab that adopts this id sends them.
    this.publish(true);
    if (forget) {
      forgetPending(this.options.name, this.identity.id);
      rememberSession(this.options.name, undefined);
      rememberLifecycle(this.options.name, undefined);
      forgetClient(this.options.name, this.identity.id);
      await this.records.clear();
    }
    await this.records.close();
    this.identity.release();
  }

  /** Creates the server session holding the current state; retried with backoff while the server cannot be reached. */
  private async create(attempt: number): Promise<void> {
    if (this.closed) return;
    const state = this.store.state;
    try {
      const created = await createServerSession(this.endpoint.http, {
        state,
        ...(this.options.flow === undefined ? {} : { flow: this.options.flow }),
        ...(this.options.ttlSeconds === undefined ? {} : { ttlSeconds: this.options.ttlSeconds }),
      });
      if (this.closed) return;
      const remembered = { id: created.id, token: created.token };
      rememberSession(this.options.name, remembered);
      this.emit({ type: "session_created", id: created.id });
      this.life.status(created.status);
      this.life.expiresAt(created.expiresAt);
      this.connect(remembered, true, state);
    } catch (e) {
      const err = e as SessileError;
      this.emit({ type: "error_occurred", error: { code: err.code, message: err.message }, during: "sync", terminal: !err.retryable });
      if (!err.retryable || this.closed) return;
      const cap = Math.min(this.options.backoffCapMs ?? 30_000, (this.options.backoffBaseMs ?? 250) * 2 ** attempt);
      this.creating = setTimeout(() => void this.create(attempt + 1), Math.random() * cap);
    }
  }

  private connect(session: ServerSession, fresh: boolean, state?: T): void {
    this.server = session;
    const saved = this.records.state;
    const resume =
      fresh || !saved || saved.session !== session.id
        ? { version: fresh ? 1 : 0, ...(fresh ? { confirmed: JSON.parse(JSON.stringify(state)) as Json } : {}) }
        : { record: saved.record };
    const hooks = {
      // Async, so a set that throws (STATE_TOO_LARGE) rejects like a failed write.
      persist: async (record: LinkCoreRecord) => {
        this.records.set({ session: session.id, record });
        await this.records.flush();
      },
      event: (e: LinkEventData) => this.onLinkEvent(e as SessionEvent),
    };
    const endpoint = { ...this.endpoint, session: session.id, token: session.token, client: this.identity.id };
    try {
      this.driver = new LinkDriver(endpoint, this.options, resume, this.options.name, hooks);
    } catch (e) {
      // A record that does not read (OUTBOX_CORRUPT): reported, and the link starts afresh.
      const err = toSessileError(e) as SessileError;
      this.emit({ type: "error_occurred", error: { code: err.code, message: err.message }, during: "sync", terminal: false });
      this.driver = new LinkDriver(endpoint, this.options, { version: 0 }, this.options.name, hooks);
    }
    // A resumed outbox (a reload, or a closed tab's id adopted) is listed at once, connected or not.
    this.publish();
  }

  /**
   * Lists the paths of this client's unanswered ops in the pending register
   * (link/pending.ts), so another tab taking the server's copy keeps them.
   */
  private publish(closing = false): void {
    const driver = this.driver;
    if (!driver || !this.server || (this.closed && !closing)) return;
    try {
      this.published = publishPending(this.options.name, this.identity.id, this.server.id, driver.pendingOps(), this.published);
      this.publishFailed = false;
    } catch (e) {
      if (this.publishFailed) return;
      this.publishFailed = true;
      const quota = e instanceof DOMException && e.name === "QuotaExceededError";
      const message = `the list of this tab's unsent changes could not be stored for the other tabs: ${e instanceof Error ? e.message : String(e)}`;
      this.emit({ type: "error_occurred", error: { code: quota ? "QUOTA_EXCEEDED" : "STORAGE_UNAVAILABLE", message }, during: "sync", terminal: false });
    }
  }

  private onLinkEvent(e: SessionEvent): void {
    if (e.type === "conflict" && e.winner === "server" && this.resubmit(e.op, e.local, e.server)) {
      this.madeOn.delete(e.op);
      this.publish();
      this.reconcile(true);
      return;
    }
    this.forgetAnswered();
    this.publish();
    if (e.type === "status_changed") {
      // The server's status, unless this tab's own unanswered op moves it on (the page's optimistic one).
      this.life.status(this.driver?.shownStatus ?? e.status);
      return;
    }
    this.emit(e);
    switch (e.type) {
      case "connection_established":
      case "connection_restored":
        this.life.expiresAt(this.driver?.expiresAt ?? 0);
        if (this.authPending && this.server) {
          this.authPending = false;
          this.emit({ type: "auth_success", id: this.server.id });
        }
        this.reconcile(true);
        break;
      case "state_synchronized":
        this.reconcile(false);
        break;
      case "conflict":
        // A refused op's status change, if it had one, is gone with it.
        if (this.driver) this.life.status(this.driver.shownStatus);
        this.reconcile(true);
        break;
      case "auth_failed":
        this.emit({ type: "auth_required", code: e.code });
        break;
      case "error_occurred":
        // A refused status change: the server's status stands.
        if (e.error.code === "INVALID_TRANSITION" && this.driver) this.life.status(this.driver.shownStatus);
        break;
      default:
    }
  }

  /**
   * Takes what the server says (plus this tab's unanswered ops) into the
   * store when it differs, except where another client of this browser
   * still has ops to send: there the page's value stays (the server's copy
   * is older there).
   */
  private reconcile(always: boolean): void {
    const driver = this.driver;
    if (!driver || !this.server) return;
    const serverVersion = driver.serverVersion;
    if (!always && serverVersion <= this.lastReconciled) return;
    this.lastReconciled = serverVersion;
    const others = knownClients(this.options.name).filter((c) => c !== this.identity.id);
    const view = keepPending(driver.view() as Json, this.store.state as Json, pendingOf(this.options.name, others, this.server.id, (c) => driver.appliedSeq(c)));
    if (sameJson(view, this.store.state)) return;
    let version: number;
    try {
      version = this.store.set(view as T);
    } catch (e) {
      // STATE_TOO_LARGE, a blocked or closed store: the page keeps its state, the link keeps running.
      const err = toSessileError(e) as SessileError;
      this.emit({ type: "error_occurred", error: { code: err.code, message: `the server's state could not be taken: ${err.message}` }, during: "sync", terminal: false });
      return;
    }
    this.emit({ type: "session_updated", origin: "server", version, serverVersion });
  }
}
