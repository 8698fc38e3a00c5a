/**
 * `LinkCore`: the sans-IO link (`link.ts`) behind the surface the driver
 * (`../driver.ts`) uses: options read and checked, local changes given as
 * the state before and after (their merge patch becomes the op), the
 * persisted record (format 1, an object: the Rust engine reads the same
 * record) and the diagnostics. Everything crosses as plain
 * objects; nothing here touches a clock, a socket or storage.
 */
import { SessileError } from "../../errors.js";
import { Link } from "./link.js";
import { cloneJson, diff, isObject, type Json } from "./merge-patch.js";
import { corrupt, Outbox, type OutboxRecord } from "./outbox.js";
import { linkConfig, type LinkConfig, type LinkEvent, type Transmit, type Transport } from "./types.js";

/** Format version of the record written by {@link LinkCore.record}. */
export const RECORD_FORMAT = 1;

/** What {@link LinkCore.record} writes: server version, confirmed state and outbox. */
export interface LinkCoreRecord {
  format: number;
  version: number;
  confirmed: Json;
  outbox: OutboxRecord;
}

/** Options of {@link LinkCore}; tuning fields are whole numbers of ms (1 to 86,400,000). */
export interface LinkCoreOptions {
  /** Session id. */
  session: string;
  /** The session's token. */
  token: string;
  /** This client's id (32 lowercase hex digits). */
  client: string;
  /** Resume what `record()` wrote. */
  record?: LinkCoreRecord;
  /** Without a record: the server version held (0: none). */
  version?: number;
  /** Without a record: the server's state at `version` (a JSON object; default `{}`). */
  confirmed?: Json;
  heartbeatMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  wsProbeMs?: number;
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
  /** Start on HTTP (a remembered fallback). */
  startOnHttp?: boolean;
  /** Seed of the backoff jitter (a whole number below 2^53). */
  seed?: number;
}

/** The link's part of `diagnostics()`. */
export interface LinkDiagnostics {
  state: "idle" | "connecting" | "handshaking" | "connected" | "backoff" | "offline" | "stopped";
  stoppedBy: string | null;
  transport: "websocket" | "http" | null;
  preferred: "websocket" | "http";
  rttMs: number | null;
  outbox: number;
  connections: number;
  serverVersion: number;
  clientId: string;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function invalid(option: string, reason: string): SessileError {
  return new SessileError("INVALID_OPTIONS", `invalid option \`${option}\`: ${reason}`);
}

/** An optional non-negative whole-number option no larger than `max` (null and undefined: absent). */
function integer(options: Record<string, unknown>, key: string, max: number): number | undefined {
  const v = options[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(key, `must be a whole number from 0 to ${max}`);
  }
  return v;
}

/** Clock readings as the core takes them: whole ms, 0 for anything not a positive finite number. */
function ms(now: number): number {
  return Number.isFinite(now) && now > 0 ? Math.floor(now) : 0;
}

/** Reads a record `record()` wrote; `OUTBOX_CORRUPT` when it is not one, or when it belongs to another client. */
export function readRecord(record: unknown, client: string): { outbox: Outbox; version: number; confirmed: Json } {
  const v = record;
  if (!isObject(v)) throw corrupt("record is not an object");
  if (v.format !== RECORD_FORMAT) throw corrupt("unknown record format");
  const version = v.version;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) throw corrupt("record has no version");
  const confirmed = v.confirmed;
  if (!isObject(confirmed)) throw corrupt("record has no confirmed state");
  const outbox = Outbox.decode(v.outbox);
  if (outbox.client !== client) throw corrupt("record belongs to another client");
  return { outbox, version, confirmed };
}

/** The record of `link`, as {@link readRecord} reads it. */
export function writeRecord(link: Link): LinkCoreRecord {
  return {
    format: RECORD_FORMAT,
    version: link.version,
    confirmed: cloneJson(link.confirmed),
    outbox: link.outbox.encode(),
  };
}

/** A JSON copy of `value` (what `JSON.stringify` keeps), or INVALID_STATE when it has none. */
function jsonOf(value: unknown): Json {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new SessileError("INVALID_STATE", `state is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (text === undefined) throw new SessileError("INVALID_STATE", "state is not valid JSON: the state is not JSON");
  return JSON.parse(text) as Json;
}

/** One tab's link to the server for one session (see docs/PROTOCOL.md, "The client link"). */
export class LinkCore {
  private readonly link: Link;

  /**
   * A link for `options.session` / `options.token` under client id
   * `options.client`, resuming `options.record` or starting at
   * `options.version` with `options.confirmed`. Throws `INVALID_OPTIONS`
   * for a missing or malformed option and `OUTBOX_CORRUPT` for a record
   * that does not read.
   */
  constructor(options: LinkCoreOptions) {
    const o = (isObject(options) ? options : {}) as unknown as Record<string, unknown>;
    const text = (key: string): string => {
      const v = o[key];
      if (typeof v !== "string") throw invalid(key, "is required (a string)");
      return v;
    };
    const session = text("session");
    const token = text("token");
    const client = text("client");
    const cfg: LinkConfig = linkConfig(session, token, integer(o, "seed", MAX_SAFE) ?? 0);
    for (const key of ["heartbeatMs", "backoffBaseMs", "backoffCapMs", "wsProbeMs", "connectTimeoutMs", "ackTimeoutMs"] as const) {
      const n = integer(o, key, 86_400_000);
      if (n !== undefined) cfg[key] = Math.max(n, 1);
    }
    cfg.startOnHttp = Boolean(o.startOnHttp);
    let outbox: Outbox;
    let version: number;
    let confirmed: Json;
    if (o.record !== undefined && o.record !== null) {
      ({ outbox, version, confirmed } = readRecord(o.record, client));
    } else {
      version = integer(o, "version", MAX_SAFE) ?? 0;
      const c = (o.confirmed ?? {}) as Json;
      // The record could not hold anything else: a reload would lose the outbox.
      if (!isObject(c)) throw invalid("confirmed", "must be a JSON object");
      confirmed = c;
      outbox = Outbox.create(client);
    }
    this.link = new Link(cfg, outbox, version, confirmed);
  }

  /** The core link itself (for tests and tools). */
  get inner(): Link {
    return this.link;
  }

  /** Starts connecting (the page wants the session). */
  handleOpen(now: number): void {
    this.link.handleOpen(ms(now));
  }

  /** The transport asked for (`"websocket"` or `"http"`) is open. */
  handleConnected(transport: Transport, now: number): void {
    this.link.handleConnected(transport === "http" ? "http" : "websocket", ms(now));
  }

  /** The transport closed or failed to open. */
  handleClosed(now: number): void {
    this.link.handleClosed(ms(now));
  }

  /** The browser went online (`true`) or offline. */
  handleOnline(online: boolean, now: number): void {
    this.link.handleOnline(online, ms(now));
  }

  /** The page became visible (`true`) or hidden. */
  handleVisible(visible: boolean, now: number): void {
    this.link.handleVisible(visible, ms(now));
  }

  /** The timer from `pollTimeout()` fired. */
  handleTimeout(now: number): void {
    this.link.handleTimeout(ms(now));
  }

  /** One inbound text frame (a malformed one becomes an `error_occurred` event). */
  handleFrame(frame: string, now: number): void {
    this.link.handleFrame(typeof frame === "string" ? frame : String(frame), ms(now));
  }

  /**
   * A local change from `before` to `after` (JSON values; what
   * `JSON.stringify` keeps of them counts): their merge patch becomes the
   * next op. Returns the op's sequence, or 0 when nothing changed. `to` asks
   * for a status change. Persist `record()` before sending what
   * `pollTransmit()` gives. Throws INVALID_STATE when `after` is not a JSON
   * object.
   */
  submit(before: unknown, after: unknown, to: string | undefined, now: number): number {
    const a = jsonOf(before);
    const b = jsonOf(after);
    if (!isObject(b)) throw new SessileError("INVALID_STATE", "state is not valid JSON: a synced state must be a JSON object");
    const patch = diff(a, b);
    if (isObject(patch) && Object.keys(patch).length === 0 && to === undefined) return 0;
    return this.link.submit(patch, to, ms(now)).seq;
  }

  /** The next network action, or undefined. */
  pollTransmit(): Transmit | undefined {
    return this.link.pollTransmit();
  }

  /** The next event, or undefined. */
  pollEvent(): LinkEvent | undefined {
    return this.link.pollEvent();
  }

  /** When to call `handleTimeout` next (ms, the caller's clock). */
  pollTimeout(): number | undefined {
    return this.link.pollTimeout();
  }

  /** What the page sees (server state plus unanswered ops): a copy the caller may keep. */
  view(): Json {
    return this.link.view();
  }

  /** The server version this client holds. */
  get version(): number {
    return this.link.version;
  }

  /** The session's status as the server last said ("" until known). */
  get status(): string {
    return this.link.status;
  }

  /** The session's expiry as the server last said (ms, 0 until known). */
  get expiresAt(): number {
    return this.link.expiresAt;
  }

  /** The ops not yet answered (sequence and patch), oldest first. */
  pendingOps(): { seq: number; patch: Json }[] {
    return this.link.outbox.all().map((op) => ({ seq: op.id.seq, patch: op.patch }));
  }

  /** The newest unanswered op (sequence and patch), if any. */
  newestOp(): { seq: number; patch: Json } | undefined {
    const ops = this.link.outbox.all();
    const op = ops[ops.length - 1];
    return op && { seq: op.id.seq, patch: op.patch };
  }

  /** The status the newest unanswered op moves to, if one does (what the page shows until the server answers). */
  pendingStatus(): string | undefined {
    const ops = this.link.outbox.all();
    for (let i = ops.length - 1; i >= 0; i--) {
      const to = ops[i]?.to;
      if (to !== undefined) return to;
    }
    return undefined;
  }

  /** The highest sequence of `client` this link took from a patch naming it (0: none). */
  appliedSeq(client: string): number {
    return this.link.appliedSeq(client);
  }

  /** Ops not yet answered. */
  get outboxLength(): number {
    return this.link.outbox.length;
  }

  /** What to persist (crash-safe) after every change: version, confirmed state and outbox, for `new LinkCore({record})`. */
  record(): LinkCoreRecord {
    return writeRecord(this.link);
  }

  /** State, transport, preferred transport, RTT, outbox and counters. */
  diagnostics(): LinkDiagnostics {
    const s = this.link.state;
    const d = this.link.diagnostics();
    const transport = s.kind === "connecting" || s.kind === "handshaking" || s.kind === "connected" ? s.transport : null;
    return {
      state: s.kind,
      stoppedBy: s.kind === "stopped" ? s.code : null,
      transport,
      preferred: d.preferred,
      rttMs: d.srttMs === undefined ? null : Math.round(d.srttMs),
      outbox: d.outboxLen,
      connections: d.connections,
      serverVersion: this.link.version,
      clientId: this.link.outbox.client,
    };
  }
}
