/**
 * The driver of one tab's link: it owns what the sans-IO core (`LinkCore`,
 * ./core/) may not: the clock, the timer, the sockets and fetches,
 * the page's online/offline and visibility listeners, and the crash-safe
 * record of the outbox, written before any op leaves. Every listener, timer
 * and connection is released by `close()`.
 */
import { SessileError } from "../errors.js";
import { LinkCore, type LinkCoreRecord, type LinkDiagnostics } from "./core/link-core.js";
import type { Json } from "./core/merge-patch.js";
import type { LinkEvent, Transmit } from "./core/types.js";
import { openHttp, openWebSocket, type Endpoint, type Transport } from "./transport.js";

export type { LinkCoreRecord, LinkDiagnostics } from "./core/link-core.js";

/** Tuning of the link; every field is optional (docs/PROTOCOL.md has the defaults). */
export interface LinkOptions {
  /** Ping interval; the link is dead after two of silence (5000). */
  heartbeatMs?: number;
  /** First backoff ceiling (250). */
  backoffBaseMs?: number;
  /** Largest backoff (30000). */
  backoffCapMs?: number;
  /** How soon HTTP probes WebSocket again (60000, doubling after failed probes). */
  wsProbeMs?: number;
  /** Longest wait for a transport to open and answer `hello` (10000). */
  connectTimeoutMs?: number;
  /** Longest wait for progress on sent ops before reconnecting (20000). */
  ackTimeoutMs?: number;
  /** How long one HTTP long-poll waits (80 % of the heartbeat, so pongs arrive in time). */
  longPollMs?: number;
  /** How long a fallback to HTTP is remembered by this tab (600000). */
  rememberFallbackMs?: number;
}

/** A link event as the page gets it: the core's, with errors shaped as the session's `error_occurred`. */
export type LinkEventData =
  | Exclude<LinkEvent, { type: "error_occurred" }>
  | { type: "error_occurred"; error: { code: string; message: string }; during: "sync"; terminal: boolean };

/** What the driver needs from its owner. */
export interface DriverHooks {
  /** Stores the link record crash-safely; resolves once stored. */
  persist(record: LinkCoreRecord): Promise<void>;
  /** A link event for the page. */
  event(e: LinkEventData): void;
}

/** One running link. */
export class LinkDriver {
  private readonly core: LinkCore;
  private transport: Transport | undefined;
  private generation = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Ops were added since the record was last stored: hold sends until it is. */
  private mustPersist = false;
  private persisting: Promise<void> | undefined;
  private recordStale = false;
  /** The last write of the record failed: it is tried again at the next input (not at once, which would spin). */
  private persistOwed = false;
  private retryHeld = false;
  private waiters: Array<() => void> = [];
  private ackWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly longPollMs: number;
  private readonly rememberKey: string;
  private readonly rememberMs: number;
  private readonly onOnline = () => this.input((c, now) => c.handleOnline(true, now));
  private readonly onOffline = () => this.input((c, now) => c.handleOnline(false, now));
  private readonly onVisibility = () =>
    this.input((c, now) => c.handleVisible(document.visibilityState === "visible", now));

  /** Throws OUTBOX_CORRUPT when `resume.record` does not read, INVALID_OPTIONS for bad tuning. */
  constructor(
    private readonly endpoint: Endpoint,
    options: LinkOptions,
    resume: { record?: LinkCoreRecord; version?: number; confirmed?: Json },
    namespace: string,
    private readonly hooks: DriverHooks,
  ) {
    this.rememberKey = `sessile:${namespace}:fallback`;
    this.rememberMs = options.rememberFallbackMs ?? 600_000;
    const heartbeat = options.heartbeatMs ?? 5_000;
    this.longPollMs = Math.max(0, Math.min(options.longPollMs ?? Math.floor(heartbeat * 0.8), 30_000));
    const until = Number(sessionGet(this.rememberKey) ?? 0);
    this.core = new LinkCore({
      ...options,
      ...resume,
      session: endpoint.session,
      token: endpoint.token,
      client: endpoint.client,
      seed: Math.floor(Math.random() * 2 ** 52),
      startOnHttp: until > Date.now(),
    });
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisibility);
    if (navigator.onLine === false) this.core.handleOnline(false, Date.now());
    this.input((c, now) => c.handleOpen(now));
  }

  /** The page's state as the link sees it (server state plus unanswered ops). */
  view(): unknown {
    return this.core.view();
  }

  /** This client's unanswered ops (sequence and patch), oldest first. */
  pendingOps(): { seq: number; patch: Json }[] {
    return this.core.pendingOps();
  }

  /** This client's newest unanswered op (sequence and patch), if any. */
  newestOp(): { seq: number; patch: Json } | undefined {
    return this.core.newestOp();
  }

  /** How many of this client's ops are unanswered. */
  get outboxLength(): number {
    return this.core.outboxLength;
  }

  /** The highest sequence of `client` whose change this link holds from a patch naming it (0: none). */
  appliedSeq(client: string): number {
    return this.core.appliedSeq(client);
  }

  /** The server version this client holds. */
  get serverVersion(): number {
    return this.core.version;
  }

  /** The session's status as the server last said ("" until known). */
  get status(): string {
    return this.core.status;
  }

  /** The status as the page sees it: the newest unanswered op's `to`, else the server's. */
  get shownStatus(): string {
    return this.core.pendingStatus() ?? this.core.status;
  }

  /** The session's expiry as the server last said (ms since the epoch, 0 until known). */
  get expiresAt(): number {
    return this.core.expiresAt;
  }

  /** A local change from `before` to `after`; returns the op's sequence (0: nothing changed). */
  submit(before: unknown, after: unknown, to?: string): number {
    const seq = this.core.submit(before, after, to, Date.now());
    if (seq > 0) {
      this.mustPersist = true;
      this.pump();
    }
    return seq;
  }

  /**
   * Resolves when every op is answered, or at once when the link is not
   * connected or connecting (offline, waiting to retry, stopped: nothing to
   * wait for now). A connection being opened counts as connected: its
   * `welcome` re-sends the ops.
   */
  whenSynced(): Promise<void> {
    if (this.syncedOrIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Resolves once the server has answered every op, connected or not (while
   * offline it waits for the link to come back); rejects with SESSION_CLOSED
   * when the link is closed first.
   */
  whenAcknowledged(): Promise<void> {
    if (this.core.outboxLength === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(notAcknowledged());
    return new Promise((resolve, reject) => this.ackWaiters.push({ resolve, reject }));
  }

  /** State, transport, RTT, outbox, counters. */
  diagnostics(): LinkDiagnostics {
    return this.core.diagnostics();
  }

  /** Stops the link: closes the connection, removes every listener and timer, stores the record. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearTimeout(this.timer);
    this.generation++;
    this.transport?.close();
    this.transport = undefined;
    this.releaseWaiters();
    for (const w of this.ackWaiters.splice(0)) w.reject(notAcknowledged());
    await this.persisting;
    await this.hooks.persist(this.core.record());
  }

  private input(f: (core: LinkCore, now: number) => void): void {
    if (this.closed) return;
    f(this.core, Date.now());
    this.pump();
  }

  /** Carries out what the core asks, in order; sends wait until new ops are stored. */
  private pump(): void {
    if (this.closed) return;
    if (this.mustPersist) {
      this.persistNow();
      return;
    }
    try {
      for (let t = this.core.pollTransmit(); t !== undefined; t = this.core.pollTransmit()) {
        this.transmit(t);
        if (this.closed) return;
      }
      for (let e = this.core.pollEvent(); e !== undefined; e = this.core.pollEvent()) {
        this.event(e);
        if (this.closed) return;
      }
    } finally {
      // Whatever an owner's hook threw, the link keeps its timer: pings, dead-link detection, reconnects.
      if (!this.closed) this.armTimer();
    }
    if (this.recordStale || (this.persistOwed && !this.retryHeld)) this.persistNow();
    if (this.syncedOrIdle()) this.releaseWaiters();
    if (this.core.outboxLength === 0) for (const w of this.ackWaiters.splice(0)) w.resolve();
  }

  private persistNow(): void {
    if (this.persisting) return;
    const hadOps = this.mustPersist;
    const failing = this.persistOwed;
    this.mustPersist = false;
    this.recordStale = false;
    this.persistOwed = false;
    let failed = false;
    // A hook that throws synchronously is caught like one that rejects.
    this.persisting = Promise.resolve()
      .then(() => this.hooks.persist(this.core.record()))
      .catch((e: unknown) => {
        // The op is kept in memory and in the page's state; sending it is
        // better than holding it, but the page must know it is not crash-safe.
        // The record is owed: written again at the next input.
        failed = true;
        this.persistOwed = true;
        if (failing) return; // reported when the failures began
        const err = e as { code?: string; message?: string };
        this.hooks.event({
          type: "error_occurred",
          error: { code: err.code ?? "STORAGE_UNAVAILABLE", message: `the outbox could not be stored: ${err.message ?? String(e)}` },
          during: "sync",
          terminal: false,
        });
      })
      .finally(() => {
        this.persisting = undefined;
        if (!(hadOps || this.mustPersist || this.recordStale || failed)) return;
        this.retryHeld = failed;
        try {
          this.pump();
        } finally {
          this.retryHeld = false;
        }
      });
  }

  private transmit(t: Transmit): void {
    switch (t.kind) {
      case "open": {
        const kind = t.transport;
        const gen = ++this.generation;
        const live = () => gen === this.generation && !this.closed;
        const sink = {
          connected: () => live() && this.input((c, now) => c.handleConnected(kind, now)),
          frame: (text: string) => live() && this.input((c, now) => c.handleFrame(text, now)),
          closed: () => {
            if (!live()) return;
            this.transport = undefined;
            this.input((c, now) => c.handleClosed(now));
          },
        };
        this.transport =
          kind === "http" ? openHttp(this.endpoint, sink, this.longPollMs) : openWebSocket(this.endpoint, sink);
        break;
      }
      case "send":
        this.transport?.send(t.frame);
        break;
      default:
        this.generation++;
        this.transport?.close();
        this.transport = undefined;
    }
  }

  private event(e: LinkEvent): void {
    if (e.type === "connection_established" || e.type === "connection_restored") {
      this.rememberTransport(e.transport === "http");
    }
    if (e.type === "state_synchronized" || e.type === "conflict") this.recordStale = true;
    if (e.type === "error_occurred") {
      this.hooks.event({ type: "error_occurred", error: { code: e.code, message: e.message }, during: "sync", terminal: e.terminal });
    } else {
      this.hooks.event(e);
    }
  }

  /** A fallback to HTTP is remembered by this tab for a while, so a reload does not retry WebSocket three times first. */
  private rememberTransport(http: boolean): void {
    try {
      if (http) sessionStorage.setItem(this.rememberKey, String(Date.now() + this.rememberMs));
      else sessionStorage.removeItem(this.rememberKey);
    } catch {
      // No sessionStorage (sandboxed frame): the fallback is found again after a reload.
    }
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    const at = this.core.pollTimeout();
    if (at === undefined) return;
    this.timer = setTimeout(() => this.input((c, now) => c.handleTimeout(now)), Math.max(0, at - Date.now()));
  }

  private syncedOrIdle(): boolean {
    const kind = this.core.inner.state.kind;
    return this.core.outboxLength === 0 || (kind !== "connected" && kind !== "handshaking" && kind !== "connecting");
  }

  private releaseWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}

const notAcknowledged = () =>
  new SessileError("SESSION_CLOSED", "the link was closed before the server acknowledged every change; they stay in the outbox");

function sessionGet(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}
