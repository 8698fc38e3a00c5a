/**
 * A synced session: the namespace's persisted store (local truth, restored
 * on load, shared by tabs) plus, when a server is given, this tab's link
 * (src/core/link/ driven by ./link/driver.ts). Every local change is written
 * to the store and becomes an op in the crash-safe outbox before it is sent;
 * what the server confirms, or another client changed, flows back into the
 * store.
 */
import type * as wasm from "../../pkg/sessile.js";
import type { StoreDiagnostics, StoreEvent } from "../../pkg/sessile.js";
import { SessileError, toSessileError } from "./errors.js";
import type { Store, TypedStoreOptions } from "./index.js";
import { LinkDriver, type LinkDiagnostics, type LinkEventData, type LinkOptions } from "./link/driver.js";
import {
  clientIdentity,
  createServerSession,
  rememberSession,
  rememberedSession,
  type ClientIdentity,
  type ServerSession,
} from "./link/identity.js";

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
    /** The server flow a client-created session follows ("checkout" by default on the server). */
    flow?: string;
    /** Time to live of a client-created session, seconds. */
    ttlSeconds?: number;
    /** Receives every event. */
    onEvent?: (event: SessionEvent) => void;
  };

/** Events of a session: the store's, the link's and the session's own. */
export type SessionEvent =
  | StoreEvent
  | { type: "session_created"; id: string }
  | { type: "session_updated"; origin: "server"; version: number; serverVersion: number }
  | { type: "connection_established"; transport: "websocket" | "http" }
  | { type: "connection_lost"; reason: "closed" | "dead" | "timeout" | "resync" | "offline" | "server" | "upgrade" }
  | { type: "connection_restored"; transport: "websocket" | "http" }
  | { type: "state_synchronized"; version: number; confirmed: number }
  | { type: "auth_required"; code: string }
  | { type: "auth_success"; id: string }
  | { type: "auth_failed"; code: string; message: string }
  | { type: "conflict"; op: number; local: unknown; server: unknown; winner: "server" }
  | { type: "error_occurred"; code: string; message: string; terminal: boolean };

/** What `diagnostics()` reports. */
export type SessionDiagnostics = StoreDiagnostics & {
  /** The server session id, once known. */
  sessionId: string | null;
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
  /** Applies a merge patch, or a function of the current state; persists and syncs it. Returns the new version. */
  update(change: Partial<T> | ((state: T) => T), options?: { to?: string }): number;
  /** Replaces the state; persists and syncs the difference. Returns the new version. */
  set(state: T, options?: { to?: string }): number;
  /** Calls `handler` for every event of `type` ("*" for all); returns the unsubscribe. */
  on<K extends SessionEvent["type"] | "*">(
    type: K,
    handler: (event: K extends "*" ? SessionEvent : Extract<SessionEvent, { type: K }>) => void,
  ): () => void;
  /** Resolves when stored locally and, while connected, every change is acknowledged. */
  flush(): Promise<void>;
  /** Joins another server session (or, without one, creates a new one holding the current state). */
  authenticate(session?: ServerSession): Promise<void>;
  /** Store, link and session figures. */
  diagnostics(): SessionDiagnostics;
  /** Flushes and releases everything (listeners, timers, connection, locks). */
  close(): Promise<void>;
}

type Handler = (event: SessionEvent) => void;

/** Applies an RFC 7386 merge patch to a copy of `target`. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** Deep equality of two JSON values, whatever the order of object keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(ob, k) && sameJson((a as Record<string, unknown>)[k], ob[k]));
}

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
  const handlers = new Map<string, Set<Handler>>();
  const emit = (e: SessionEvent) => {
    onEvent?.(e);
    for (const key of [e.type, "*"]) for (const h of handlers.get(key) ?? []) h(e);
  };
  const store = await openStore<T>({ ...rest, onEvent: (e) => emit(e) } as TypedStoreOptions<T>);
  const link = server ? await SyncedLink.start(w, openStore, store, options, server, emit) : undefined;

  const change = (after: T, to: string | undefined): number => {
    const before = store.state;
    const version = store.set(after);
    try {
      link?.submit(before, after, to);
    } catch (e) {
      throw toSessileError(e);
    }
    return version;
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
    update(changeOrFn, opts) {
      const next =
        typeof changeOrFn === "function"
          ? (changeOrFn as (s: T) => T)(store.state)
          : (applyMergePatch(store.state, changeOrFn) as T);
      return change(next, opts?.to);
    },
    set(state, opts) {
      return change(state, opts?.to);
    },
    on(type, handler) {
      const set = handlers.get(type) ?? new Set<Handler>();
      handlers.set(type, set);
      set.add(handler as Handler);
      return () => void set.delete(handler as Handler);
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
      return { ...store.diagnostics(), sessionId: link?.server?.id ?? null, link: link?.diagnostics() ?? null };
    },
    async close() {
      await link?.close();
      await store.close();
      handlers.clear();
    },
  };
}

/** The record a tab keeps of its link: which server session, and the core's record. */
interface LinkRecord {
  session: string;
  record: string;
}

/** The sync half of a session: identity, server session, record store and driver. */
class SyncedLink<T> {
  server: ServerSession | undefined;
  private driver: LinkDriver | undefined;
  private creating: ReturnType<typeof setTimeout> | undefined;
  private authPending = true;
  private closed = false;
  private lastReconciled = 0;

  private constructor(
    private readonly w: typeof wasm,
    private readonly store: Store<T>,
    private readonly records: Store<LinkRecord | null>,
    private readonly identity: ClientIdentity,
    private readonly options: SessionOptions<T>,
    private readonly endpoint: { http: string; ws: string },
    private readonly emit: (e: SessionEvent) => void,
  ) {}

  static async start<T>(
    w: typeof wasm,
    openStore: <S>(o: TypedStoreOptions<S>) => Promise<Store<S>>,
    store: Store<T>,
    options: SessionOptions<T>,
    server: ServerOptions,
    emit: (e: SessionEvent) => void,
  ): Promise<SyncedLink<T>> {
    const identity = await clientIdentity(options.name);
    const records = await openStore<LinkRecord | null>({
      name: `${options.name}:link:${identity.id}`,
      initial: null,
      debounceMs: 0,
      persist: false,
      ...(options.storage === undefined ? {} : { storage: options.storage }),
      onEvent: (e) => {
        if (e.type === "error_occurred" || e.type === "storage_degraded") emit(e);
      },
    });
    const link = new SyncedLink(w, store, records, identity, options, { http: server.http, ws: server.ws ?? wsUrlOf(server.http) }, emit);
    const known = server.session ?? rememberedSession(options.name);
    if (known) {
      rememberSession(options.name, known);
      link.connect(known, false);
    } else {
      await link.create(0);
    }
    return link;
  }

  submit(before: T, after: T, to: string | undefined): void {
    this.driver?.submit(before, after, to);
  }

  flush(): Promise<void> {
    return this.driver?.whenSynced() ?? Promise.resolve();
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

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.creating);
    await this.driver?.close();
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
      rememberSession(this.options.name, created);
      this.emit({ type: "session_created", id: created.id });
      this.connect(created, true, state);
    } catch (e) {
      const err = e as SessileError;
      this.emit({ type: "error_occurred", code: err.code, message: err.message, terminal: !err.retryable });
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
        ? { version: fresh ? 1 : 0, ...(fresh ? { confirmed: JSON.stringify(state) } : {}) }
        : { record: saved.record };
    const hooks = {
      persist: (record: string) => {
        this.records.set({ session: session.id, record });
        return this.records.flush();
      },
      event: (e: LinkEventData) => this.onLinkEvent(e as SessionEvent),
    };
    const endpoint = { ...this.endpoint, session: session.id, token: session.token, client: this.identity.id };
    try {
      this.driver = new LinkDriver(this.w.LinkCore, endpoint, this.options, resume, this.options.name, hooks);
    } catch (e) {
      // A record that does not read (OUTBOX_CORRUPT): reported, and the link starts afresh.
      const err = toSessileError(e) as SessileError;
      this.emit({ type: "error_occurred", code: err.code, message: err.message, terminal: false });
      this.driver = new LinkDriver(this.w.LinkCore, endpoint, this.options, { version: 0 }, this.options.name, hooks);
    }
  }

  private onLinkEvent(e: SessionEvent): void {
    this.emit(e);
    switch (e.type) {
      case "connection_established":
      case "connection_restored":
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
        this.reconcile(true);
        break;
      case "auth_failed":
        this.emit({ type: "auth_required", code: e.code });
        break;
      default:
    }
  }

  /** Takes what the server says (plus this tab's unanswered ops) into the store when it differs. */
  private reconcile(always: boolean): void {
    const driver = this.driver;
    if (!driver) return;
    const serverVersion = driver.serverVersion;
    if (!always && serverVersion <= this.lastReconciled) return;
    this.lastReconciled = serverVersion;
    const view = driver.view();
    if (sameJson(view, this.store.state)) return;
    const version = this.store.set(view as T);
    this.emit({ type: "session_updated", origin: "server", version, serverVersion });
  }
}
