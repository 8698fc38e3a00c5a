/**
 * The wire protocol's messages as the client link sees them
 * (docs/PROTOCOL.md; the server's side is `src/core/protocol.rs`): their
 * types, `encode` for what the client sends, and `decode`, which parses a
 * frame with `JSON.parse` and checks every field by hand. Decoding never
 * throws anything but a coded SessileError: `FRAME_TOO_LARGE` before
 * parsing, `UNSUPPORTED_PROTOCOL_VERSION`, or `PROTOCOL_ERROR` with a reason.
 */
import { SessileError } from "../../errors.js";
import { DEFAULT_MAX_BYTES } from "../../limits.js";
import { utf8Length } from "../../utf8.js";
import { isObject, type Json } from "./merge-patch.js";

/** The protocol version this build speaks, sent in `hello` and `welcome`. */
export const PROTOCOL_VERSION = 1;

/** Default largest frame accepted: a state at the default limit in a `welcome` or `reject`, plus 64 KiB around it. */
export const DEFAULT_MAX_FRAME_BYTES = DEFAULT_MAX_BYTES + 64 * 1024;

/** Length of client and session ids in hex digits (128 bits). */
export const ID_HEX_LEN = 32;

/** An op's id: the client that made it and its sequence number (1, 2, ...). */
export interface OpId {
  client: string;
  seq: number;
}

/** One change from a client: id, the server version it was made on, its merge patch, a status to move to. */
export interface Op {
  id: OpId;
  base: number;
  patch: Json;
  to?: string;
}

/** One applied change as the server logs and pushes it. */
export interface LoggedPatch {
  version: number;
  patch: Json;
  status?: string;
  op?: OpId;
}

/** How a client gets from the version it holds to the current one. */
export type CatchUp =
  | { kind: "upToDate" }
  | { kind: "patches"; patches: LoggedPatch[] }
  | { kind: "snapshot"; state: Json };

/** A session's current version, status and state (with `VERSION_CONFLICT`). */
export interface Current {
  version: number;
  status: string;
  state: Json;
}

/** One protocol message; `type` names it, fields are camelCase. */
export type Message =
  | { type: "hello"; protocol: number; session: string; token: string; client: string; haveVersion: number }
  | {
      type: "welcome";
      protocol: number;
      version: number;
      status: string;
      expiresAt: number;
      heartbeatMs: number;
      appliedSeq: number;
      serverTime: number;
      catchUp: CatchUp;
    }
  | ({ type: "op" } & Op)
  | { type: "ack"; id: OpId; version: number; duplicate: boolean; rebased: boolean }
  | { type: "reject"; id: OpId; code: string; message: string; current?: Current }
  | ({ type: "patch" } & LoggedPatch)
  | { type: "ping"; ts: number }
  | { type: "pong"; ts: number; serverTs: number }
  | { type: "extend"; seconds: number }
  | { type: "extended"; expiresAt: number }
  | { type: "error"; code: string; message: string; retryable: boolean }
  | { type: "bye"; reason?: string }
  | { type: "ended"; status: string; code: string; version: number; message: string };

/** Whether `s` is a 128-bit id as sessile writes them: 32 lowercase hex digits. */
export function isId(s: unknown): s is string {
  return typeof s === "string" && /^[0-9a-f]{32}$/.test(s);
}

/** Encodes `msg` as one JSON text frame (the fields in the order the Rust encoder writes them). */
export function encode(msg: Message): string {
  return JSON.stringify(msg);
}

/** The frame `hello`. */
export function helloFrame(session: string, token: string, client: string, haveVersion: number): string {
  return encode({ type: "hello", protocol: PROTOCOL_VERSION, session, token, client, haveVersion });
}

/** The frame of `op`. */
export function opFrame(op: Op): string {
  const m: Message = { type: "op", id: { client: op.id.client, seq: op.id.seq }, base: op.base, patch: op.patch };
  if (op.to !== undefined) m.to = op.to;
  return encode(m);
}

/** Shared with the store (js/src/utf8.ts); the frame size limit counts UTF-8 bytes. */
export { utf8Length };

/** What was wrong with a frame's shape. */
class Malformed extends Error {}

type Obj = Record<string, unknown>;
const has = (o: Obj, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function value(o: Obj, k: string): unknown {
  return has(o, k) ? o[k] : undefined;
}
function isU64(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
function u64(o: Obj, k: string, dflt?: number): number {
  const v = value(o, k);
  if (v === undefined && dflt !== undefined) return dflt;
  if (v === undefined) throw new Malformed(`missing field \`${k}\``);
  if (!isU64(v)) throw new Malformed(`\`${k}\` must be a non-negative integer`);
  return v;
}
function str(o: Obj, k: string): string {
  const v = value(o, k);
  if (v === undefined) throw new Malformed(`missing field \`${k}\``);
  if (typeof v !== "string") throw new Malformed(`\`${k}\` must be a string`);
  return v;
}
function optStr(o: Obj, k: string): string | undefined {
  const v = value(o, k);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new Malformed(`\`${k}\` must be a string`);
  return v;
}
function bool(o: Obj, k: string): boolean {
  const v = value(o, k);
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new Malformed(`\`${k}\` must be a boolean`);
  return v;
}
function json(o: Obj, k: string): Json {
  if (!has(o, k)) throw new Malformed(`missing field \`${k}\``);
  return o[k] as Json;
}
function obj(o: Obj, k: string): Obj {
  const v = value(o, k);
  if (v === undefined) throw new Malformed(`missing field \`${k}\``);
  if (!isObject(v)) throw new Malformed(`\`${k}\` must be an object`);
  return v;
}
function opId(o: Obj, k: string): OpId {
  const id = obj(o, k);
  return { client: str(id, "client"), seq: u64(id, "seq") };
}
function loggedPatch(o: Obj): LoggedPatch {
  const p: LoggedPatch = { version: u64(o, "version"), patch: json(o, "patch") };
  const status = optStr(o, "status");
  if (status !== undefined) p.status = status;
  const op = value(o, "op");
  if (op !== undefined && op !== null) p.op = opId(o, "op");
  return p;
}
function catchUp(o: Obj): CatchUp {
  const c = obj(o, "catchUp");
  const kind = str(c, "kind");
  switch (kind) {
    case "upToDate":
      return { kind };
    case "patches": {
      const list = value(c, "patches");
      if (list === undefined) throw new Malformed("missing field `patches`");
      if (!Array.isArray(list)) throw new Malformed("`patches` must be an array");
      return {
        kind,
        patches: list.map((p) => {
          if (!isObject(p)) throw new Malformed("a catch-up patch must be an object");
          return loggedPatch(p);
        }),
      };
    }
    case "snapshot":
      return { kind, state: json(c, "state") };
    default:
      throw new Malformed(`unknown catch-up kind \`${kind}\``);
  }
}

/** The message in an object already parsed; throws Malformed. */
function message(o: Obj): Message {
  const type = str(o, "type");
  switch (type) {
    case "hello":
      return {
        type,
        protocol: u64(o, "protocol"),
        session: str(o, "session"),
        token: str(o, "token"),
        client: str(o, "client"),
        haveVersion: u64(o, "haveVersion", 0),
      };
    case "welcome": {
      const protocol = u64(o, "protocol");
      if (protocol > 0xffffffff) throw new Malformed("`protocol` is out of range");
      return {
        type,
        protocol,
        version: u64(o, "version"),
        status: str(o, "status"),
        expiresAt: u64(o, "expiresAt"),
        heartbeatMs: u64(o, "heartbeatMs"),
        appliedSeq: u64(o, "appliedSeq"),
        serverTime: u64(o, "serverTime"),
        catchUp: catchUp(o),
      };
    }
    case "op": {
      const m: Message = { type, id: opId(o, "id"), base: u64(o, "base"), patch: json(o, "patch") };
      const to = optStr(o, "to");
      if (to !== undefined) m.to = to;
      return m;
    }
    case "ack":
      return { type, id: opId(o, "id"), version: u64(o, "version"), duplicate: bool(o, "duplicate"), rebased: bool(o, "rebased") };
    case "reject": {
      const m: Message = { type, id: opId(o, "id"), code: str(o, "code"), message: str(o, "message") };
      const cur = value(o, "current");
      if (cur !== undefined && cur !== null) {
        const c = obj(o, "current");
        m.current = { version: u64(c, "version"), status: str(c, "status"), state: json(c, "state") };
      }
      return m;
    }
    case "patch":
      return { type, ...loggedPatch(o) };
    case "ping":
      return { type, ts: u64(o, "ts") };
    case "pong":
      return { type, ts: u64(o, "ts"), serverTs: u64(o, "serverTs") };
    case "extend":
      return { type, seconds: u64(o, "seconds") };
    case "extended":
      return { type, expiresAt: u64(o, "expiresAt") };
    case "error":
      return { type, code: str(o, "code"), message: str(o, "message"), retryable: bool(o, "retryable") };
    case "bye": {
      const reason = optStr(o, "reason");
      return reason === undefined ? { type } : { type, reason };
    }
    case "ended":
      return { type, status: str(o, "status"), code: str(o, "code"), version: u64(o, "version"), message: str(o, "message") };
    default:
      throw new Malformed(`unknown message type \`${type}\``);
  }
}

function protocolError(reason: string): SessileError {
  return new SessileError("PROTOCOL_ERROR", `protocol error: ${reason}`);
}

function unsupported(found: number): SessileError {
  return new SessileError(
    "UNSUPPORTED_PROTOCOL_VERSION",
    `protocol version ${found} is not supported (this build speaks ${PROTOCOL_VERSION})`,
  );
}

/** Deepest nesting of arrays and objects a frame may have (the server's JSON decoder has the same). */
export const MAX_DEPTH = 128;

/** Whether `root` nests arrays and objects more than MAX_DEPTH levels deep; iterative, so any depth is safe to check. */
function tooDeep(root: unknown): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (depth > MAX_DEPTH) return true;
    const children = Array.isArray(v) ? v : typeof v === "object" && v !== null ? Object.values(v) : undefined;
    if (children === undefined) continue;
    for (const c of children) if (typeof c === "object" && c !== null) stack.push([c, depth + 1]);
  }
  return false;
}

/**
 * Decodes one text frame of at most `maxFrameBytes` (UTF-8). Throws a
 * SessileError: `FRAME_TOO_LARGE` (not parsed), `UNSUPPORTED_PROTOCOL_VERSION`
 * (a `hello`/`welcome` of another version, or any frame that does not parse
 * but names another `protocol`), `PROTOCOL_ERROR` (malformed or truncated
 * JSON, not an object, nested deeper than MAX_DEPTH, unknown type, missing
 * or mistyped field, a `hello`
 * id or op client that is not 32 lowercase hex digits, an op sequence of 0).
 */
export function decode(frame: string, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): Message {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most frames need no count.
  if (frame.length * 3 > maxFrameBytes) {
    const size = utf8Length(frame);
    if (size > maxFrameBytes) {
      throw new SessileError("FRAME_TOO_LARGE", `frame is ${size} bytes, above the limit of ${maxFrameBytes} bytes`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    // Engines word it differently: "Unexpected end of JSON input", "end of
    // data", or a position at the end of the text.
    const at = /position (\d+)/.exec(why);
    const eof =
      /end of (json )?(input|data)|unterminated|unexpected end/i.test(why) ||
      (at !== null && Number(at[1]) >= frame.trimEnd().length) ||
      frame.trim() === "";
    throw protocolError(`${eof ? "truncated" : "malformed"} frame (${why})`);
  }
  if (!isObject(parsed)) throw protocolError("malformed frame (a message is a JSON object)");
  // Applying and cloning patches recurses: a frame nested deeper than the
  // server's decoder takes is refused here, not by a stack overflow later.
  if (tooDeep(parsed)) throw protocolError(`malformed frame (nested deeper than ${MAX_DEPTH} levels)`);
  let msg: Message;
  try {
    msg = message(parsed);
  } catch (e) {
    // A frame that does not parse but announces another version (whose
    // messages may look different) gets the version error, not a parse one.
    const found = value(parsed, "protocol");
    if (isU64(found) && found !== PROTOCOL_VERSION) throw unsupported(found);
    throw protocolError(`malformed frame (${e instanceof Error ? e.message : String(e)})`);
  }
  if ((msg.type === "hello" || msg.type === "welcome") && msg.protocol !== PROTOCOL_VERSION) throw unsupported(msg.protocol);
  if (msg.type === "hello") {
    if (!isId(msg.session)) throw protocolError(`session id must be ${ID_HEX_LEN} lowercase hex digits`);
    if (!isId(msg.client)) throw protocolError(`client id must be ${ID_HEX_LEN} lowercase hex digits`);
  }
  if (msg.type === "op") {
    if (!isId(msg.id.client)) throw protocolError(`client id must be ${ID_HEX_LEN} lowercase hex digits`);
    if (msg.id.seq === 0) throw protocolError("op sequence numbers start at 1");
  }
  return msg;
}
