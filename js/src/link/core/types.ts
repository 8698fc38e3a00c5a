/**
 * What the client link tells its driver: the transport kinds, the network
 * actions (`Transmit`), the states (each saying what the driver must do),
 * the events for the page, the configuration with its defaults and the
 * diagnostics. Plain data only; the machine itself is `link.ts`.
 */
import type { Json } from "./merge-patch.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./frames.js";

/**
 * How frames travel: one WebSocket carrying text frames both ways
 * (`GET /v1/ws`), or the HTTP fallback (the driver maps `hello` to the
 * long-poll `GET /v1/sessions/{id}/changes`, `op` to `POST .../ops`, and
 * answers `ping` with a `pong` when the next request completes).
 */
export type Transport = "websocket" | "http";

/** A network action for the driver, in order. */
export type Transmit =
  /** Open a transport of this kind; report `handleConnected` or `handleClosed`. */
  | { kind: "open"; transport: Transport }
  /** Send this text frame on the open transport. */
  | { kind: "send"; frame: string }
  /** Close the open (or opening) transport and drop its listeners; do not report `handleClosed` for it. */
  | { kind: "close" };

/** Where the link stands; each state says what the driver must do. */
export type LinkState =
  /** Not started: call `handleOpen` when the page wants the session. */
  | { kind: "idle" }
  /** An `open` was queued: report `handleConnected` or `handleClosed`, call `handleTimeout` at `pollTimeout`. */
  | { kind: "connecting"; transport: Transport }
  /** `hello` is sent: feed frames and call `handleTimeout` at `pollTimeout` until `welcome` arrives. */
  | { kind: "handshaking"; transport: Transport }
  /** Live and synced: feed frames, send what `pollTransmit` gives, call `handleTimeout` at `pollTimeout`. */
  | { kind: "connected"; transport: Transport }
  /** Waiting before the next attempt (ms, the caller's clock); `handleVisible(true)` or `handleOnline(true)` tries at once. */
  | { kind: "backoff"; until: number }
  /** The browser is offline: nothing to do until `handleOnline(true)`. */
  | { kind: "offline" }
  /** Retries stopped for good (auth failed or a terminal server error, `code`); local changes stay in the outbox. */
  | { kind: "stopped"; code: string };

/**
 * Why a connection ended: the transport closed or failed to open, nothing
 * arrived for two heartbeats, opening or the handshake took too long, a gap
 * only a reconnect fills, the browser went offline, the server sent a
 * retryable error or `bye`, or a switch from HTTP to a WebSocket probe.
 */
export type LossReason = "closed" | "dead" | "timeout" | "resync" | "offline" | "server" | "upgrade";

/** Something the page may want to know (the shapes `pollEvent` returns). */
export type LinkEvent =
  /** The first `welcome`: connected and synced. */
  | { type: "connection_established"; transport: Transport }
  /** A connection that had been established ended; the link retries. */
  | { type: "connection_lost"; reason: LossReason }
  /** Connected and synced again after a loss. */
  | { type: "connection_restored"; transport: Transport }
  /** The confirmed state reached `version`; `confirmed` ops left the outbox with it. */
  | { type: "state_synchronized"; version: number; confirmed: number }
  /** The session's status changed (first known at the first `welcome`). */
  | { type: "status_changed"; status: string }
  /** The server refused the session's token or id (`INVALID_TOKEN`, `SESSION_NOT_FOUND`); retries stopped. */
  | { type: "auth_failed"; code: string; message: string }
  /** Op `op` (its sequence) conflicted with a newer change; the server's value won. */
  | { type: "conflict"; op: number; local: Json; server: Json; winner: "server" }
  /** An error a developer should see; `terminal` ones stopped retries. */
  | { type: "error_occurred"; code: string; message: string; terminal: boolean };

/** Settings of a link; {@link linkConfig} gives the defaults. */
export interface LinkConfig {
  /** Session id (32 hex digits). */
  session: string;
  /** The session's token, sent in `hello`. */
  token: string;
  /** Ping interval; the link is dead after two intervals of silence (5 s). */
  heartbeatMs: number;
  /** First backoff ceiling (250 ms). */
  backoffBaseMs: number;
  /** Largest backoff (30 s). */
  backoffCapMs: number;
  /** A connection up this long resets the backoff and the WebSocket failure count; one that drops sooner is a flap (10 s). */
  stableAfterMs: number;
  /** WebSocket open failures or flaps in a row before falling back to HTTP (3). */
  wsFailuresBeforeFallback: number;
  /** First wait before probing WebSocket again from HTTP, doubled after each failed probe, to at most 16 times as long (60 s). */
  wsProbeMs: number;
  /** Start on HTTP (a fallback remembered by the driver); WebSocket is probed `wsProbeMs` after the first attempt. */
  startOnHttp: boolean;
  /** Longest wait for a transport to open and answer `hello` (10 s). */
  connectTimeoutMs: number;
  /** Longest wait for progress on sent ops or a missing version before reconnecting to resync (20 s). */
  ackTimeoutMs: number;
  /** Ops held before unsent ones are coalesced (64). */
  outboxLimit: number;
  /** Largest inbound frame accepted, UTF-8 bytes. */
  maxFrameBytes: number;
  /** Seed of the backoff jitter (random, from the caller; a whole number below 2^53, or a 64-bit bigint). */
  seed: number | bigint;
}

/** The defaults for `session` with `token`, jitter seeded by `seed`. */
export function linkConfig(session: string, token: string, seed: number | bigint): LinkConfig {
  return {
    session,
    token,
    heartbeatMs: 5_000,
    backoffBaseMs: 250,
    backoffCapMs: 30_000,
    stableAfterMs: 10_000,
    wsFailuresBeforeFallback: 3,
    wsProbeMs: 60_000,
    startOnHttp: false,
    connectTimeoutMs: 10_000,
    ackTimeoutMs: 20_000,
    outboxLimit: 64,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    seed,
  };
}

/** Counters and sizes, for `diagnostics()` and for tests that check nothing grows. */
export interface CoreDiagnostics {
  /** Smoothed round-trip time of pings, ms, once measured. */
  srttMs: number | undefined;
  /** Connections established so far. */
  connections: number;
  /** The transport new connections use (HTTP after a fallback). */
  preferred: Transport;
  /** Ops in the outbox. */
  outboxLen: number;
  /** Actions not yet polled. */
  queuedTransmits: number;
  /** Events not yet polled. */
  queuedEvents: number;
  /** Out-of-order versions held until the gap before them fills. */
  bufferedVersions: number;
}
