/**
 * The pending register: which parts of the state each client of this
 * browser still has to send to the server. Every tab of a synced session
 * lists its unanswered ops (sequence and the paths each touches) in
 * localStorage (`sessile:<ns>:pending:<client>`, with the server session's
 * id), and a tab that takes the server's copy into the page keeps the
 * page's own values at every path of an op another client (live, or closed
 * with ops left for the tab that adopts its id) still has to send and this
 * tab's link has not seen applied: the server's copy is older there.
 * docs/PROTOCOL.md, "Tabs of a synced session", has the rule.
 */
import { isObject, type Json, type JsonObject } from "./core/merge-patch.js";

/** A key chain from the root of the state. */
export type Path = string[];

/** What the other clients still have to send: some paths, or (`all`) anything. */
export interface Pending {
  all: boolean;
  paths: Path[];
}

/** Most paths one client lists before it says "anything" instead. */
const MAX_PATHS = 256;
/** Largest entry, in UTF-16 units of its JSON text, before it says "anything" instead. */
const MAX_ENTRY_CHARS = 16 * 1024;
/** Deepest path listed; a deeper change lists its first keys (a prefix covers it). */
const MAX_DEPTH = 16;

/** One client's entry: its ops' sequences and paths, or (`all`, over the limits) only its last sequence. */
interface Entry {
  session: string;
  ops?: { seq: number; paths: Path[] }[];
  all?: boolean;
  last?: number;
}

const entryKey = (ns: string, client: string) => `sessile:${ns}:pending:${client}`;

function local(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined;
  }
}

/** The paths a merge patch changes: each key down to a value that is not a non-empty object. */
export function pathsOf(patch: Json, into: Path[] = [], prefix: Path = []): Path[] {
  if (!isObject(patch) || prefix.length >= MAX_DEPTH) {
    into.push(prefix);
    return into;
  }
  for (const k of Object.keys(patch)) {
    const v = patch[k] as Json;
    if (isObject(v) && Object.keys(v).length > 0) pathsOf(v, into, [...prefix, k]);
    else into.push([...prefix, k]);
  }
  return into;
}

/**
 * Lists the paths of `patches` (this client's unanswered ops) for session
 * `session`; removes the entry when there are none. Over the limits the
 * entry says "anything". `last` is what the previous call returned: an
 * unchanged entry is not written again. Returns the entry's text ("" for
 * none). Throws the storage's error when not even the short form can be
 * written.
 */
export function publishPending(
  ns: string,
  client: string,
  session: string,
  ops: readonly { seq: number; patch: Json }[],
  last: string,
): string {
  const storage = local();
  if (!storage) return "";
  const key = entryKey(ns, client);
  const newest = ops[ops.length - 1];
  if (!newest) {
    if (last !== "") storage.removeItem(key);
    return "";
  }
  let count = 0;
  const listed = ops.map((op) => {
    const paths = pathsOf(op.patch);
    count += paths.length;
    return { seq: op.seq, paths };
  });
  const short = JSON.stringify({ session, all: true, last: newest.seq } satisfies Entry);
  let text = count <= MAX_PATHS ? JSON.stringify({ session, ops: listed } satisfies Entry) : short;
  if (text.length > MAX_ENTRY_CHARS) text = short;
  if (text === last) return text;
  try {
    storage.setItem(key, text);
  } catch {
    // Over the quota: the short form, which other tabs read as "anything".
    text = short;
    storage.setItem(key, text);
  }
  return text;
}

/** Removes this client's entry (its ops were all answered, or the session ended). */
export function forgetPending(ns: string, client: string): void {
  try {
    local()?.removeItem(entryKey(ns, client));
  } catch {
    // No storage: nothing was listed.
  }
}

/**
 * What the clients `others` list for session `session` and have not had
 * applied as far as this tab knows: `applied(client)` is the highest
 * sequence of that client this tab's link holds. Entries of other sessions,
 * and ones that do not read, are left out.
 */
export function pendingOf(
  ns: string,
  others: readonly string[],
  session: string,
  applied: (client: string) => number,
): Pending {
  const out: Pending = { all: false, paths: [] };
  const storage = local();
  if (!storage) return out;
  for (const client of others) {
    let entry: unknown;
    try {
      const text = storage.getItem(entryKey(ns, client));
      if (text === null) continue;
      entry = JSON.parse(text);
    } catch {
      continue;
    }
    if (!isObject(entry) || entry.session !== session) continue;
    const e = entry as unknown as Entry;
    const seen = applied(client);
    if (e.all === true) {
      if (!(typeof e.last === "number" && e.last <= seen)) out.all = true;
      continue;
    }
    if (!Array.isArray(e.ops)) continue;
    for (const op of e.ops) {
      if (!isObject(op) || typeof op.seq !== "number" || op.seq <= seen || !Array.isArray(op.paths)) continue;
      for (const p of op.paths) if (Array.isArray(p) && p.every((k) => typeof k === "string")) out.paths.push(p);
    }
  }
  return out;
}

/**
 * `view` (the server's copy plus this client's ops) with `page`'s values at
 * every path in `pending` (`page` itself when anything is pending). A path
 * absent from `page` is removed from the result.
 */
export function keepPending(view: Json, page: Json, pending: Pending): Json {
  if (pending.all) return page;
  let out = view;
  for (const path of pending.paths) out = setAt(out, path, getAt(page, path));
  return out;
}

/** Whether one path is a prefix of the other (a change at one touches the other). */
export function overlaps(a: Path, b: Path): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The value at `path` in `v`, undefined when absent. */
export function getAt(v: Json, path: Path): Json | undefined {
  let cur: Json | undefined = v;
  for (const k of path) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** A copy of `v` with `value` at `path` (undefined: the key removed), objects made on the way as a merge patch would. */
function setAt(v: Json, path: Path, value: Json | undefined): Json {
  if (path.length === 0) return value === undefined ? {} : value;
  const [k, ...rest] = path as [string, ...string[]];
  const obj: JsonObject = isObject(v) ? { ...v } : {};
  const had = Object.prototype.hasOwnProperty.call(obj, k);
  if (rest.length === 0 && value === undefined) {
    delete obj[k];
    return obj;
  }
  const next = setAt(had ? (obj[k] as Json) : {}, rest, value);
  Object.defineProperty(obj, k, { value: next, writable: true, enumerable: true, configurable: true });
  return obj;
}
