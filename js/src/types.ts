/**
 * The types of the session API: the options of `openSession`, its events
 * and what `diagnostics()` reports. The session itself runs in Rust
 * (`WasmSession`, src/web/session_api/); these declarations give it types.
 *
 * @module
 */
import type { StoreDiagnostics, StoreEvent, TypedStoreOptions } from "./store-types.js";

/** What a status means for the session holding it. */
export type StatusKind = "active" | "waiting" | "closed" | "expired";

/**
 * A lifecycle flow a page declares instead of a built-in one: every status
 * with its kind, the statuses each may go to, and which status a session
 * starts in, expires to and ends in. The server validates it with the same
 * rules, stores it with the session and enforces it.
 *
 * - Kinds: `active` (the shopper moves on), `waiting` (on a payment, a
 *   kitchen: reported as stale after 20 min), `closed` and `expired`
 *   (terminal: a terminal status has no row).
 * - Every non-terminal status needs a row that goes to `ended`. A status
 *   whose row goes to `expired` expires when the TTL has passed; one whose
 *   row does not never expires silently.
 * - At most 64 statuses; names are 1 to 64 letters, digits, `_`, `.`, `:` or `-`.
 *
 * ```ts
 * const session = await openSession<Cart>({
 *   name: "checkout",
 *   initial: { items: [] },
 *   server: { http: "https://shop.example/sessile" },
 *   flow: {
 *     name: "pay-desk",                     // optional, default "custom"
 *     initial: "cart",
 *     statuses: { cart: "active", paying: "waiting", paid: "closed",
 *                 expired: "expired", terminated: "closed" },
 *     transitions: { cart: ["paying", "expired", "terminated"],
 *                    paying: ["paid", "terminated"] },   // paying never expires
 *     // expired: "expired", ended: "terminated"          (the defaults)
 *   },
 * });
 * session.step("paying");
 * session.step("cart");                     // throws INVALID_TRANSITION
 * ```
 */
export interface FlowDeclaration {
  /** Name the server reports and groups the health report by (default `custom`; not `checkout` or `table`). */
  name?: string;
  /** Status of a new session (active or waiting). */
  initial: string;
  /** Every status of the flow with its kind. */
  statuses: Readonly<Record<string, StatusKind>>;
  /** For each non-terminal status, the statuses it may go to. */
  transitions: Readonly<Record<string, readonly string[]>>;
  /** Status an expired session moves to (kind `expired`; default `expired`). */
  expired?: string;
  /** Status `end()` moves a session to (kind `closed`; default `terminated`). */
  ended?: string;
}

/** The server session a namespace is synced with. */
export interface ServerSession {
  id: string;
  token: string;
}

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
  /**
   * A WebSocket not open this soon gets HTTP opened beside it, and whichever
   * syncs first carries the changes (250; docs/PROTOCOL.md).
   */
  wsRaceMs?: number;
  /** Longest wait for a transport to open and answer `hello` (10000). */
  connectTimeoutMs?: number;
  /** Longest wait for progress on sent ops before reconnecting (20000). */
  ackTimeoutMs?: number;
  /** How long one HTTP long-poll waits (80 % of the heartbeat, so pongs arrive in time). */
  longPollMs?: number;
  /** How long a fallback to HTTP is remembered by this tab (600000). */
  rememberFallbackMs?: number;
}

/** The link's part of `diagnostics()`. */
export interface LinkDiagnostics {
  state: "idle" | "connecting" | "handshaking" | "connected" | "backoff" | "offline" | "stopped";
  stoppedBy: string | null;
  transport: "websocket" | "http" | null;
  preferred: "websocket" | "http";
  /**
   * Why `transport` (or, between connections, `preferred`) is the one it is:
   * `websocket` the first choice (or back after HTTP); `websocket_slow` HTTP
   * carries the link because the WebSocket had not opened within `wsRaceMs`
   * (it keeps opening beside it, `standby`, and takes over once open);
   * `websocket_refused` a WebSocket failed to open while HTTP worked (probed
   * again after `wsProbeMs`); `websocket_flapping` WebSocket connections
   * dropped soon after opening several times in a row; `remembered` a
   * WebSocket refused on an earlier page load (`rememberFallbackMs`).
   */
  reason: "websocket" | "websocket_slow" | "websocket_refused" | "websocket_flapping" | "remembered";
  /** A WebSocket is opening (or open, waiting to take over) beside HTTP. */
  standby: boolean;
  /**
   * A WebSocket probe from HTTP is under way (every `wsProbeMs`, doubling
   * while it fails): the link left HTTP to try the WebSocket (`transport` is
   * then `websocket` while it opens), or HTTP carries it while the WebSocket
   * opens beside it (`standby`). If the WebSocket does not open the link is
   * back on HTTP; it is not a lost connection (the `connection_lost` of a
   * probe says `upgrade`).
   */
  probing: boolean;
  rttMs: number | null;
  /** Changes not answered yet: ops in the outbox and changes held until the link's first welcome. */
  outbox: number;
  connections: number;
  serverVersion: number;
  clientId: string;
}

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
    /**
     * Encrypts the stored copies (slots, outbox, rescue copy) with
     * AES-256-GCM through WebCrypto. The key is kept in memory only, never
     * stored. A copy sealed with another key rejects the open with
     * `DECRYPT_FAILED`, an encrypted copy opened without `encryption` with
     * `KEY_REQUIRED`; the copy is kept until the page opens with the right
     * key or with `discardLocal: true`.
     *
     * ```ts
     * const key = await crypto.subtle.importKey("raw", bytesFromYourBackend, "AES-GCM", false, ["encrypt", "decrypt"]);
     * const session = await openSession({ name: "checkout", encryption: { key } });
     * ```
     */
    encryption?: EncryptionOptions;
    /**
     * Drops a stored copy this page cannot decrypt (`KEY_REQUIRED`,
     * `DECRYPT_FAILED`) and starts from the server or `initial` instead of
     * rejecting; default false.
     */
    discardLocal?: boolean;
    /** Receives every event. */
    onEvent?: (event: SessionEvent) => void;
  };

/** `encryption` of {@link SessionOptions}. */
export interface EncryptionOptions {
  /**
   * An AES-GCM `CryptoKey` of 256 bits with the usages encrypt and decrypt
   * (best not extractable), or 32 raw key bytes; other lengths are
   * refused with `INVALID_OPTIONS`.
   */
  key: CryptoKey | Uint8Array | ArrayBuffer;
}

/** Events of a session: the store's, the link's and the session's own. */
export type SessionEvent =
  | StoreEvent
  | { type: "session_created"; id: string }
  | { type: "session_expired"; expiresAt: number; status: string }
  | { type: "session_terminated"; reason: string; status: string }
  | { type: "status_changed"; status: string }
  | { type: "session_updated"; origin: "server"; version: number; serverVersion: number }
  | { type: "connection_established"; transport: "websocket" | "http" }
  | { type: "connection_lost"; reason: "closed" | "dead" | "timeout" | "resync" | "offline" | "server" | "upgrade" | "frozen" }
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
