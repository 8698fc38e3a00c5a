/**
 * The link's outbox: every local change as an op (id, base version, merge
 * patch), kept in order until the server answers it, coalesced when over its
 * limit (never dropped), and written as a plain JSON object (format 1) for
 * the driver to persist.
 */
import { SessileError } from "../../errors.js";
import { isId, type Op, type OpId } from "./frames.js";
import { compose, isObject, type Json } from "./merge-patch.js";

/** Format version written by {@link Outbox.encode}. */
export const OUTBOX_FORMAT = 1;

/** The persisted form of an outbox. */
export interface OutboxRecord {
  format: number;
  client: string;
  nextSeq: number;
  sentUpto: number;
  ops: Op[];
}

/** An `OUTBOX_CORRUPT` error. */
export function corrupt(reason: string): SessileError {
  return new SessileError("OUTBOX_CORRUPT", `outbox is corrupt: ${reason}`);
}

function copyOp(op: Op): Op {
  const out: Op = { id: { client: op.id.client, seq: op.id.seq }, base: op.base, patch: op.patch };
  if (op.to !== undefined) out.to = op.to;
  return out;
}

const isU64 = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Ops not yet answered by the server, oldest first, numbered 1, 2, ... per client without gaps. */
export class Outbox {
  private nextSeqValue = 1;
  /** Highest sequence ever handed to a transport: ops at or below it may have been applied, so they are never coalesced or renumbered. */
  private sentUpto = 0;
  private ops: Op[] = [];

  private constructor(readonly client: string) {}

  /** An empty outbox for `client` (32 lowercase hex digits, chosen at random by the caller); its first op gets sequence 1. */
  static create(client: string): Outbox {
    if (!isId(client)) throw corrupt("client id must be 32 lowercase hex digits");
    return new Outbox(client);
  }

  /** Number of ops waiting for an answer. */
  get length(): number {
    return this.ops.length;
  }

  /** Whether every op has been answered. */
  isEmpty(): boolean {
    return this.ops.length === 0;
  }

  /** The ops, oldest first (do not change them). */
  all(): readonly Op[] {
    return this.ops;
  }

  /** The sequence the next op will get. */
  get nextSeq(): number {
    return this.nextSeqValue;
  }

  /**
   * Adds an op made on server version `base`; when the outbox then holds
   * more than `limit` ops, consecutive ops never sent are coalesced
   * (`compose`) until it fits or nothing more composes (it then stays over
   * the limit: nothing is dropped). Returns the new op's id as it stands
   * after coalescing.
   */
  push(base: number, patch: Json, to: string | undefined, limit: number): OpId {
    const op: Op = { id: { client: this.client, seq: this.nextSeqValue }, base, patch };
    if (to !== undefined) op.to = to;
    this.nextSeqValue += 1;
    this.ops.push(op);
    while (this.ops.length > Math.max(limit, 1) && this.coalesceOne());
    const last = this.ops[this.ops.length - 1];
    return { client: this.client, seq: last ? last.id.seq : 0 };
  }

  /** Merges the first pair of consecutive unsent ops that compose into one op, renumbering the (unsent) ops after it. */
  private coalesceOne(): boolean {
    const start = this.ops.findIndex((op) => op.id.seq > this.sentUpto);
    if (start < 0) return false;
    for (let i = start; i < this.ops.length - 1; i++) {
      const a = this.ops[i] as Op;
      const b = this.ops[i + 1] as Op;
      if (a.to !== undefined && b.to !== undefined) continue;
      const patch = compose(a.patch, b.patch);
      if (patch === undefined) continue;
      const to = a.to ?? b.to;
      const merged: Op = { id: a.id, base: a.base, patch };
      if (to !== undefined) merged.to = to;
      this.ops[i] = merged;
      this.ops.splice(i + 1, 1);
      for (let j = i + 1; j < this.ops.length; j++) {
        const op = this.ops[j] as Op;
        this.ops[j] = { ...op, id: { client: op.id.client, seq: op.id.seq - 1 } };
      }
      this.nextSeqValue -= 1;
      return true;
    }
    return false;
  }

  /** Ops never handed to a transport, oldest first. */
  unsent(): Op[] {
    return this.ops.filter((op) => op.id.seq > this.sentUpto);
  }

  /** Records that ops up to `seq` were handed to a transport. */
  markSent(seq: number): void {
    this.sentUpto = Math.max(this.sentUpto, seq);
  }

  /** Whether ops up to `seq` were handed to a transport at some point. */
  wasSent(seq: number): boolean {
    return seq <= this.sentUpto;
  }

  /** Removes every op with a sequence up to `seq` (the server processed them); returns how many. */
  removeUpto(seq: number): number {
    let n = 0;
    while (n < this.ops.length && (this.ops[n] as Op).id.seq <= seq) n++;
    this.ops.splice(0, n);
    // A server that processed more than this outbox ever numbered (an outbox
    // restored from an old copy): new ops must not reuse numbers the server
    // would take for repeats.
    this.nextSeqValue = Math.max(this.nextSeqValue, seq + 1);
    this.markSent(seq);
    return n;
  }

  /** The oldest op, if any. */
  front(): Op | undefined {
    return this.ops[0];
  }

  /** Removes and returns the oldest op. */
  popFront(): Op | undefined {
    return this.ops.shift();
  }

  /** The outbox as a plain object (copies of the ops), for the driver's crash-safe slots. */
  encode(): OutboxRecord {
    return {
      format: OUTBOX_FORMAT,
      client: this.client,
      nextSeq: this.nextSeqValue,
      sentUpto: this.sentUpto,
      ops: this.ops.map(copyOp),
    };
  }

  /**
   * Reads what {@link encode} wrote (the object, or its JSON text). Every op
   * is treated as possibly sent (the copy may predate a send), so none of
   * them is ever coalesced or renumbered. Throws `OUTBOX_CORRUPT` when it is
   * not a consistent outbox.
   */
  static decode(record: unknown): Outbox {
    let v = record;
    if (typeof v === "string") {
      try {
        v = JSON.parse(v);
      } catch (e) {
        throw corrupt(`not an outbox (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    if (!isObject(v)) throw corrupt("not an outbox (not an object)");
    const { format, client, nextSeq, sentUpto, ops } = v as Record<string, unknown>;
    if (!isU64(format) || typeof client !== "string" || !isU64(nextSeq) || !isU64(sentUpto) || !Array.isArray(ops)) {
      throw corrupt("not an outbox (a field is missing or of the wrong type)");
    }
    const read: Op[] = ops.map((raw) => {
      const o = raw as Record<string, unknown>;
      const id = isObject(raw) ? (o.id as Record<string, unknown>) : undefined;
      const has = (k: string) => isObject(raw) && Object.prototype.hasOwnProperty.call(raw, k);
      if (!id || !isObject(id) || typeof id.client !== "string" || !isU64(id.seq) || !isU64(o.base) || !has("patch")) {
        throw corrupt("not an outbox (an op is missing a field or has one of the wrong type)");
      }
      if (o.to !== undefined && o.to !== null && typeof o.to !== "string") throw corrupt("not an outbox (an op's `to` is not a string)");
      const op: Op = { id: { client: id.client, seq: id.seq }, base: o.base, patch: o.patch as Json };
      if (typeof o.to === "string") op.to = o.to;
      return op;
    });
    if (format !== OUTBOX_FORMAT) throw corrupt("unknown outbox format version");
    if (!isId(client) || nextSeq === 0) throw corrupt("bad client id or sequence");
    let expect: number | undefined = read[0]?.id.seq;
    for (const op of read) {
      if (op.id.client !== client || op.id.seq !== expect || op.id.seq === 0) {
        throw corrupt("op ids are not consecutive ids of this client");
      }
      expect = op.id.seq + 1;
    }
    if (expect !== undefined && expect !== nextSeq) throw corrupt("next sequence does not follow the last op");
    const out = new Outbox(client);
    out.nextSeqValue = nextSeq;
    out.sentUpto = nextSeq - 1;
    out.ops = read;
    return out;
  }
}
