/**
 * The client link, sans-IO: connection state, transport choice (WebSocket,
 * HTTP fallback, probing back), heartbeat liveness, jittered backoff and the
 * outbox of ops with resume. Inputs are `handle*(…, now)` and `submit`;
 * outputs are `pollTransmit`, `pollTimeout` and `pollEvent`. No clock, no
 * randomness of its own, no sockets: the driver owns all three.
 */
import { SessileError } from "../../errors.js";
import { Backoff, Rng } from "./backoff.js";
import {
  decode,
  encode,
  helloFrame,
  opFrame,
  type Message,
  type Op,
  type OpId,
} from "./frames.js";
import { applyInPlace, cloneJson, isObject, type Json } from "./merge-patch.js";
import { Outbox } from "./outbox.js";
import type { CoreDiagnostics, LinkConfig, LinkEvent, LinkState, LossReason, Transmit, Transport } from "./types.js";

/** Out-of-order versions held before the link gives up and resyncs. */
const MAX_BUFFERED_VERSIONS = 256;

/** Error codes after which retrying cannot help. */
const AUTH_CODES = ["INVALID_TOKEN", "SESSION_NOT_FOUND"];
const TERMINAL_CODES = ["SESSION_EXPIRED", "SESSION_CLOSED", "UNSUPPORTED_PROTOCOL_VERSION", "ORIGIN_NOT_ALLOWED"];

type Welcome = Extract<Message, { type: "welcome" }>;
type Ack = Extract<Message, { type: "ack" }>;
type Reject = Extract<Message, { type: "reject" }>;
type ErrorFrame = Extract<Message, { type: "error" }>;

/** One client's link to the server for one session. */
export class Link {
  private readonly rng: Rng;
  private readonly backoff: Backoff;
  private linkState: LinkState = { kind: "idle" };
  /** The server's state at `version`, as far as this client knows; owned (changed in place, shared with nobody). */
  private confirmedState: Json;
  private versionValue: number;
  /** Versions that arrived ahead of a gap, with the status each set. */
  private readonly ahead = new Map<number, { patch: Json; status: string | undefined; op: OpId | undefined }>();
  /** Per client, the highest sequence whose change this link has taken into `confirmed` (from the ops named by patches). */
  private readonly appliedSeqs = new Map<string, number>();
  /** The session's status at `version` ("" until the first `welcome`). */
  private statusValue = "";
  /** When the session expires (ms since the Unix epoch, 0 until known). */
  private expiresAtValue = 0;
  private gapSince: number | undefined;
  /** Since when sent ops have waited without progress. */
  private inflightSince: number | undefined;
  private preferred: Transport;
  private wsFailures = 0;
  private probeAt: number | undefined;
  private probeMs: number;
  private probing = false;
  private heartbeatMs: number;
  /** When the current attempt started (connecting and handshaking). */
  private attemptStarted = 0;
  private welcomedAt: number | undefined;
  private lastInbound = 0;
  private nextPing = 0;
  private srttMs: number | undefined;
  private online = true;
  private connections = 0;
  private transmits: Transmit[] = [];
  private events: LinkEvent[] = [];

  /** A link sending `outbox`'s ops, holding `state` at server `version` (0 and `{}` for nothing yet). Starts idle. */
  constructor(
    private readonly cfg: LinkConfig,
    private readonly box: Outbox,
    version: number,
    state: Json,
  ) {
    this.preferred = cfg.startOnHttp ? "http" : "websocket";
    this.rng = new Rng(cfg.seed);
    this.backoff = new Backoff(cfg.backoffBaseMs, cfg.backoffCapMs);
    this.probeMs = cfg.wsProbeMs;
    this.heartbeatMs = Math.max(cfg.heartbeatMs, 1);
    this.confirmedState = cloneJson(state);
    this.versionValue = version;
  }

  /** Where the link stands. */
  get state(): LinkState {
    return this.linkState;
  }

  /** The outbox, for the driver to persist after every change. */
  get outbox(): Outbox {
    return this.box;
  }

  /** The server version the client holds. */
  get version(): number {
    return this.versionValue;
  }

  /** The session's status at `version` ("" until the first `welcome`). */
  get status(): string {
    return this.statusValue;
  }

  /** When the session expires, ms since the Unix epoch (0 until known). */
  get expiresAt(): number {
    return this.expiresAtValue;
  }

  /** The server moved the expiry (an `extended` answer or the HTTP API). */
  setExpiresAt(at: number): void {
    this.expiresAtValue = at;
  }

  /** The server's state at `version` (do not change it). */
  get confirmed(): Json {
    return this.confirmedState;
  }

  /** What the page sees: the confirmed state with the outbox's ops on top (a new value the caller owns). */
  view(): Json {
    let v = cloneJson(this.confirmedState);
    for (const op of this.box.all()) v = applyInPlace(v, op.patch);
    return v;
  }

  /** Sizes and counters. */
  diagnostics(): CoreDiagnostics {
    return {
      srttMs: this.srttMs,
      connections: this.connections,
      preferred: this.preferred,
      outboxLen: this.box.length,
      queuedTransmits: this.transmits.length,
      queuedEvents: this.events.length,
      bufferedVersions: this.ahead.size,
    };
  }

  /** The next network action, if any. */
  pollTransmit(): Transmit | undefined {
    return this.transmits.shift();
  }

  /** The next event, if any. */
  pollEvent(): LinkEvent | undefined {
    return this.events.shift();
  }

  /** When to call `handleTimeout` next (ms, the caller's clock), if ever. */
  pollTimeout(): number | undefined {
    const s = this.linkState;
    switch (s.kind) {
      case "backoff":
        return s.until;
      case "connecting":
        return this.attemptStarted + this.cfg.connectTimeoutMs;
      case "handshaking":
        return Math.min(this.deadAt(), this.attemptStarted + this.cfg.connectTimeoutMs);
      case "connected": {
        let at = Math.min(this.deadAt(), this.nextPing);
        for (const t of [this.inflightSince, this.gapSince]) if (t !== undefined) at = Math.min(at, t + this.cfg.ackTimeoutMs);
        if (s.transport === "http" && this.probeAt !== undefined) at = Math.min(at, this.probeAt);
        return at;
      }
      default:
        return undefined;
    }
  }

  /** The page wants the session: start connecting. */
  handleOpen(now: number): void {
    if (this.linkState.kind !== "idle") return;
    if (this.online) this.openTransport(now);
    else this.linkState = { kind: "offline" };
  }

  /** The transport asked for opened: `hello` goes out. */
  handleConnected(transport: Transport, now: number): void {
    const s = this.linkState;
    if (s.kind !== "connecting" || s.transport !== transport) return;
    this.linkState = { kind: "handshaking", transport };
    this.lastInbound = now;
    this.nextPing = now + this.heartbeatMs;
    this.transmits.push({ kind: "send", frame: helloFrame(this.cfg.session, this.cfg.token, this.box.client, this.versionValue) });
  }

  /** The transport closed or failed to open (not after a `close` transmit). */
  handleClosed(now: number): void {
    if (this.isAttempting()) this.connectionDown("closed", false, now);
  }

  /** The browser went online (`true`) or offline. */
  handleOnline(online: boolean, now: number): void {
    this.online = online;
    const kind = this.linkState.kind;
    if (kind === "offline" && online) {
      this.backoff.reset();
      this.openTransport(now);
    } else if (kind === "backoff" && !online) {
      this.linkState = { kind: "offline" };
    } else if (!online && this.isAttempting()) {
      this.connectionDown("offline", true, now);
    }
  }

  /**
   * The page became visible (`true`) or hidden. Visible during a backoff
   * tries at once; hidden changes nothing (liveness uses timestamps, so
   * throttled timers do not kill the link).
   */
  handleVisible(visible: boolean, now: number): void {
    if (visible && this.linkState.kind === "backoff") this.openTransport(now);
  }

  /** A timer set from `pollTimeout` fired (or any time later; early calls do nothing). */
  handleTimeout(now: number): void {
    const s = this.linkState;
    if (s.kind === "backoff") {
      if (now >= s.until) this.openTransport(now);
    } else if (s.kind === "connecting") {
      if (now >= this.attemptStarted + this.cfg.connectTimeoutMs) this.connectionDown("timeout", true, now);
    } else if (s.kind === "handshaking" || s.kind === "connected") {
      this.liveTimers(now);
    }
  }

  private liveTimers(now: number): void {
    if (now >= this.deadAt()) return this.connectionDown("dead", true, now);
    const s = this.linkState;
    if (s.kind === "handshaking" && now >= this.attemptStarted + this.cfg.connectTimeoutMs) {
      return this.connectionDown("timeout", true, now);
    }
    if (s.kind === "connected") {
      const overdue = (t: number | undefined) => t !== undefined && now >= t + this.cfg.ackTimeoutMs;
      if (overdue(this.inflightSince) || overdue(this.gapSince)) return this.connectionDown("resync", true, now);
      if (s.transport === "http" && this.probeAt !== undefined && now >= this.probeAt) {
        return this.connectionDown("upgrade", true, now);
      }
      // No ping before `welcome`: the server wants `hello` answered first.
      if (now >= this.nextPing) {
        this.send({ type: "ping", ts: now });
        this.nextPing = now + this.heartbeatMs;
      }
    }
  }

  /**
   * A local change: `patch` (a JSON merge patch object) becomes the next op
   * in the outbox, sent at once when connected. `to` asks for a status
   * change. Persist the outbox before the frame leaves. Throws
   * `PROTOCOL_ERROR` when the patch is not an object.
   */
  submit(patch: Json, to: string | undefined, now: number): OpId {
    if (!isObject(patch)) throw new SessileError("PROTOCOL_ERROR", "protocol error: an op's patch must be a JSON object");
    const id = this.box.push(this.versionValue, patch, to, this.cfg.outboxLimit);
    if (this.linkState.kind === "connected") this.sendUnsent(now);
    return id;
  }

  /** One inbound text frame on the current transport. */
  handleFrame(frame: string, now: number): void {
    const s = this.linkState;
    if (s.kind !== "handshaking" && s.kind !== "connected") return;
    this.lastInbound = now;
    let msg: Message;
    try {
      msg = decode(frame, this.cfg.maxFrameBytes);
    } catch (e) {
      const err = e instanceof SessileError ? e : new SessileError("PROTOCOL_ERROR", `protocol error: ${String(e)}`);
      return this.errorEvent(err.code, err.message, false);
    }
    const connected = s.kind === "connected";
    switch (msg.type) {
      case "welcome":
        if (!connected) this.onWelcome(msg, now);
        break;
      case "ack":
        if (connected) this.onAck(msg, now);
        break;
      case "reject":
        if (connected) this.onReject(msg, now);
        break;
      case "patch":
        if (connected) this.integrate(msg.version, msg.patch, msg.status, 0, now, msg.op);
        break;
      case "ping":
        this.send({ type: "pong", ts: msg.ts, serverTs: now });
        break;
      case "pong":
        this.onPong(msg.ts, now);
        break;
      case "error":
        this.onError(msg, now);
        break;
      case "bye": {
        const reason = msg.reason ?? "";
        if (AUTH_CODES.includes(reason) || TERMINAL_CODES.includes(reason)) this.stop(reason);
        else this.connectionDown("server", true, now);
        break;
      }
      case "ended":
        // The session ended or expired (after its last patch): as a `bye` with that code.
        this.stop(msg.code);
        break;
      case "extended":
        // Another client moved the expiry.
        this.expiresAtValue = msg.expiresAt;
        break;
      default:
    }
  }

  private onWelcome(w: Welcome, now: number): void {
    const confirmed = this.box.removeUpto(w.appliedSeq);
    this.ahead.clear();
    this.gapSince = undefined;
    const c = w.catchUp;
    if (c.kind === "patches") {
      for (const p of c.patches) {
        if (p.version === this.versionValue + 1) {
          this.confirmedState = applyInPlace(this.confirmedState, p.patch);
          this.versionValue = p.version;
          this.noteApplied(p.op);
        }
      }
    } else if (c.kind === "snapshot") {
      this.confirmedState = c.state;
      this.versionValue = w.version;
    }
    this.expiresAtValue = w.expiresAt;
    this.setStatus(w.status);
    // The catch-up did not reach the server's version: try again.
    if (this.versionValue !== w.version) return this.connectionDown("resync", true, now);
    if (w.heartbeatMs > 0) this.heartbeatMs = Math.max(Math.min(this.cfg.heartbeatMs, w.heartbeatMs), 1);
    const s = this.linkState;
    const transport = s.kind === "handshaking" ? s.transport : this.preferred;
    this.linkState = { kind: "connected", transport };
    this.welcomedAt = now;
    if (transport === "websocket") {
      this.preferred = "websocket";
      this.probeAt = undefined;
      this.probeMs = this.cfg.wsProbeMs;
    }
    this.probing = false;
    this.events.push(
      this.connections === 0
        ? { type: "connection_established", transport }
        : { type: "connection_restored", transport },
    );
    this.connections += 1;
    this.events.push({ type: "state_synchronized", version: this.versionValue, confirmed });
    // Re-send every op still waiting, in order, on this connection.
    this.inflightSince = undefined;
    const ops = this.box.all().slice();
    for (const op of ops) this.transmits.push({ kind: "send", frame: opFrame(op) });
    const last = ops[ops.length - 1];
    if (last) {
      this.box.markSent(last.id.seq);
      this.inflightSince = now;
    }
  }

  private sendUnsent(now: number): void {
    const ops = this.box.unsent();
    for (const op of ops) this.transmits.push({ kind: "send", frame: opFrame(op) });
    const last = ops[ops.length - 1];
    if (last) {
      this.box.markSent(last.id.seq);
      this.inflightSince ??= now;
    }
  }

  /** The op an answer is about, which must be the oldest one waiting: undefined when already answered; a resync when answers skip. */
  private answered(id: OpId, now: number): Op | undefined {
    if (id.client !== this.box.client) return undefined;
    const front = this.box.front();
    if (!front) return undefined;
    if (id.seq < front.id.seq) return undefined;
    if (id.seq > front.id.seq || !this.box.wasSent(id.seq)) {
      this.connectionDown("resync", true, now);
      return undefined;
    }
    const op = this.box.popFront();
    if (!op) return undefined;
    this.inflightSince = !this.box.isEmpty() && this.box.wasSent(op.id.seq + 1) ? now : undefined;
    return op;
  }

  private onAck(a: Ack, now: number): void {
    const op = this.answered(a.id, now);
    if (!op) return;
    // Applied earlier, at a version this connection never said: the welcome of a fresh connection carries it.
    if (a.duplicate) return this.connectionDown("resync", true, now);
    this.integrate(a.version, op.patch, op.to, 1, now);
  }

  private onReject(r: Reject, now: number): void {
    if (r.code === "OP_OUT_OF_ORDER") return this.connectionDown("resync", true, now);
    const op = this.answered(r.id, now);
    if (!op) return;
    const current = r.current;
    if (current && r.code === "VERSION_CONFLICT") {
      if (current.version >= this.versionValue) {
        this.confirmedState = cloneJson(current.state);
        this.versionValue = current.version;
        this.setStatus(current.status);
        for (const v of [...this.ahead.keys()]) if (v <= current.version) this.ahead.delete(v);
        this.drainAhead(now);
      }
      this.events.push({ type: "conflict", op: r.id.seq, local: op.patch, server: current.state, winner: "server" });
    } else if (r.code === "VERSION_CONFLICT" || r.code === "VERSION_AHEAD") {
      // The server sends a version's state once per connection: this link holds it already.
      // VERSION_AHEAD: the op was made on a version the server no longer has (it lost
      // changes); the server's state, taken at the welcome, wins as in any conflict.
      this.events.push({ type: "conflict", op: r.id.seq, local: op.patch, server: cloneJson(this.confirmedState), winner: "server" });
    } else {
      this.errorEvent(r.code, r.message, false);
    }
  }

  /** A change at `version`: applied when it is the next one, held when it is ahead of a gap, ignored when already known. */
  private integrate(version: number, patch: Json, status: string | undefined, confirmed: number, now: number, op?: OpId): void {
    if (version <= this.versionValue) return;
    this.ahead.set(version, { patch, status, op });
    if (this.ahead.size > MAX_BUFFERED_VERSIONS) return this.connectionDown("resync", true, now);
    const before = this.versionValue;
    this.drainAhead(now);
    if (this.versionValue > before || confirmed > 0) {
      this.events.push({ type: "state_synchronized", version: this.versionValue, confirmed });
    }
  }

  private drainAhead(now: number): void {
    for (let next = this.ahead.get(this.versionValue + 1); next; next = this.ahead.get(this.versionValue + 1)) {
      this.ahead.delete(this.versionValue + 1);
      this.confirmedState = applyInPlace(this.confirmedState, next.patch);
      this.versionValue += 1;
      this.noteApplied(next.op);
      if (next.status !== undefined) this.setStatus(next.status);
    }
    this.gapSince = this.ahead.size === 0 ? undefined : (this.gapSince ?? now);
  }

  /** Keeps the highest sequence of `op`'s client whose change is in `confirmed`. */
  private noteApplied(op: OpId | undefined): void {
    if (op && op.seq > (this.appliedSeqs.get(op.client) ?? 0)) this.appliedSeqs.set(op.client, op.seq);
  }

  /**
   * The highest sequence of `client` whose change this link has taken from
   * a patch the server named it in (0: none seen; a snapshot names none).
   */
  appliedSeq(client: string): number {
    return this.appliedSeqs.get(client) ?? 0;
  }

  /** Takes the server's status; a change is an event. */
  private setStatus(status: string): void {
    if (status !== this.statusValue) {
      this.statusValue = status;
      this.events.push({ type: "status_changed", status });
    }
  }

  private onPong(ts: number, now: number): void {
    const rtt = Math.max(0, now - ts);
    this.srttMs = this.srttMs === undefined ? rtt : this.srttMs * 0.875 + rtt * 0.125;
  }

  private onError(e: ErrorFrame, now: number): void {
    if (AUTH_CODES.includes(e.code)) {
      this.events.push({ type: "auth_failed", code: e.code, message: e.message });
      this.stop(e.code);
    } else if (TERMINAL_CODES.includes(e.code)) {
      this.errorEvent(e.code, e.message, true);
      this.stop(e.code);
    } else if (e.code === "VERSION_AHEAD" && this.linkState.kind === "handshaking") {
      // This link holds a version the server does not have (the server lost
      // changes): ask again from version 0, and the welcome's snapshot wins.
      this.versionValue = 0;
      this.connectionDown("resync", true, now);
    } else {
      this.errorEvent(e.code, e.message, false);
      if (e.retryable) this.connectionDown("server", true, now);
    }
  }

  private errorEvent(code: string, message: string, terminal: boolean): void {
    this.events.push({ type: "error_occurred", code, message, terminal });
  }

  private stop(code: string): void {
    const had = this.isAttempting();
    this.transmits = had ? [{ kind: "close" }] : [];
    this.ahead.clear();
    this.linkState = { kind: "stopped", code };
  }

  private isAttempting(): boolean {
    const k = this.linkState.kind;
    return k === "connecting" || k === "handshaking" || k === "connected";
  }

  private deadAt(): number {
    return this.lastInbound + 2 * this.heartbeatMs;
  }

  private send(msg: Message): void {
    this.transmits.push({ kind: "send", frame: encode(msg) });
  }

  private openTransport(now: number): void {
    if (this.preferred === "http" && this.probeAt === undefined) this.probeAt = now + this.probeMs;
    const probe = this.preferred === "http" && this.probeAt !== undefined && now >= this.probeAt;
    this.probing = probe;
    const transport: Transport = probe ? "websocket" : this.preferred;
    this.attemptStarted = now;
    this.welcomedAt = undefined;
    this.linkState = { kind: "connecting", transport };
    this.transmits.push({ kind: "open", transport });
  }

  /** The current attempt or connection ended: count it, tell the page, pick the transport and when to try again. */
  private connectionDown(reason: LossReason, close: boolean, now: number): void {
    const s = this.linkState;
    if (s.kind !== "connecting" && s.kind !== "handshaking" && s.kind !== "connected") return;
    const transport = s.transport;
    const upFor = this.welcomedAt === undefined ? undefined : Math.max(0, now - this.welcomedAt);
    if (upFor !== undefined) {
      this.events.push({ type: "connection_lost", reason });
      if (upFor >= this.cfg.stableAfterMs) {
        this.backoff.reset();
        this.wsFailures = 0;
      }
    }
    const failed = upFor === undefined || upFor < this.cfg.stableAfterMs;
    if (transport === "websocket" && failed && reason !== "offline") this.wsFailures += 1;
    // Frames queued for the dead connection go nowhere.
    this.transmits = close ? [{ kind: "close" }] : [];
    this.ahead.clear();
    this.gapSince = undefined;
    this.inflightSince = undefined;
    this.welcomedAt = undefined;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe && upFor === undefined) {
      // The WebSocket probe failed: stay on HTTP, probe later.
      this.probeMs = Math.min(this.probeMs * 2, this.cfg.wsProbeMs * 16);
      this.probeAt = now + this.probeMs;
    } else if (this.preferred === "websocket" && this.wsFailures >= this.cfg.wsFailuresBeforeFallback) {
      this.preferred = "http";
      this.probeAt = now + this.probeMs;
    }
    if (!this.online) {
      this.linkState = { kind: "offline" };
      return;
    }
    // Switching transports is one deliberate attempt; everything else,
    // resyncs included, waits its jittered turn (so no loop is tight).
    if (reason === "upgrade" || wasProbe) {
      this.openTransport(now);
    } else {
      const delay = this.backoff.nextDelay(this.rng);
      this.linkState = { kind: "backoff", until: now + delay };
    }
  }
}
