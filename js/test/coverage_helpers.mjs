// Shared parts of coverage.test.mjs: what the public API declares, read
// from the sources (so that a new event, code or method fails the test until
// it is covered), and the page-side helpers the scenarios install.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const source = (file) => readFileSync(path.join(ROOT, "js/src", file), "utf8");

/** The text of `export type NAME = ...;` or `export interface NAME... { ... }` in `text`. */
function declaration(text, kind, name) {
  const start = text.search(new RegExp(`^export ${kind} ${name}\\b`, "m"));
  if (start < 0) throw new Error(`no ${kind} ${name} in the sources`);
  // A declaration ends at the first line back at column 0 (a type's `;` may end a nested member).
  const end = text.slice(start).search(kind === "type" ? /;\n(?=\S|\n)/ : /\n\}\n/);
  if (end < 0) throw new Error(`cannot find the end of ${kind} ${name}`);
  return text.slice(start, start + end);
}

/** Every `type` of the public SessionEvent union (its own members and StoreEvent's). */
export function eventTypes() {
  const own = declaration(source("types.ts"), "type", "SessionEvent");
  if (!/\|\s*StoreEvent\b/.test(own)) throw new Error("SessionEvent no longer includes StoreEvent: update this parser");
  const store = declaration(source("store-types.ts"), "type", "StoreEvent");
  const types = [...`${own}\n${store}`.matchAll(/type: "([a-z_]+)"/g)].map((m) => m[1]);
  return [...new Set(types)].sort();
}

/** The members (methods and properties) an interface of the sources declares. */
export function members(file, name) {
  const body = declaration(source(file), "interface", name);
  return [...body.matchAll(/^ {2}(?:readonly )?([a-zA-Z]+)[<(?:]/gm)].map((m) => m[1]).sort();
}

/** The public API whose every member the scenarios must call. */
export const API = {
  Sessile: members("index.ts", "Sessile"),
  Session: members("session.ts", "Session"),
  Store: members("store-types.ts", "Store"),
};

/**
 * Installs `window.C` in a page of the server: the loaded package, what was
 * observed (event types, codes of SessileErrors thrown or carried by events,
 * members of the API used) and the helpers of the scenarios.
 */
export async function install() {
  if (window.C) return;
  const mod = await import("/js/index.js");
  const seen = { events: [], codes: [], calls: [], notSessileError: [] };
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const idb = (db, mode, work) =>
    new Promise((resolve, reject) => {
      const r = indexedDB.open(db);
      r.onsuccess = () => {
        const tx = r.result.transaction("slots", mode);
        const req = work(tx.objectStore("slots"));
        tx.oncomplete = () => {
          r.result.close();
          resolve(req.result);
        };
        tx.onerror = () => reject(tx.error);
      };
      r.onerror = () => reject(r.error);
    });
  const C = {
    mod,
    seen,
    /** A proxy of `obj` recording each member read as `kind.member`. */
    watch(obj, kind) {
      return new Proxy(obj, {
        get(target, prop) {
          if (typeof prop === "string") seen.calls.push(`${kind}.${prop}`);
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    },
    /** Records an event: its type and any error codes it carries. */
    event(e) {
      seen.events.push(e.type);
      if (e.error?.code) seen.codes.push(e.error.code);
      for (const s of e.skipped ?? []) if (s.error?.code) seen.codes.push(s.error.code);
    },
    /** Runs `f` (sync or async): "no error", or what it threw as "SessileError:CODE" (recorded). */
    async failure(f) {
      try {
        await f();
        return "no error";
      } catch (e) {
        if (e instanceof mod.SessileError) seen.codes.push(e.code);
        else seen.notSessileError.push(`${e?.name}:${e?.code}: ${e?.message}`);
        return `${e instanceof mod.SessileError ? "SessileError" : e?.name}:${e?.code}`;
      }
    },
    /** The loaded API, watched. */
    async sessile() {
      return C.watch(await mod.loadSessile(), "Sessile");
    },
    /** openSession (watched) collecting its events in `session.events`. */
    async session(options) {
      const events = [];
      const s = await (await C.sessile()).openSession({
        ...options,
        onEvent: (e) => {
          events.push(e);
          C.event(e);
        },
      });
      window.lastEvents = events;
      return Object.assign(C.watch(s, "Session"), { events });
    },
    /** Waits for the first event of `type` in `events` (or `timeout` ms). */
    async until(events, pred, timeout = 10_000) {
      const end = Date.now() + timeout;
      for (;;) {
        const e = events.find(typeof pred === "string" ? (x) => x.type === pred : pred);
        if (e) return e;
        if (Date.now() > end) throw new Error(`no ${pred} event in ${timeout} ms: ${events.map((x) => x.type)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    crc32(bytes) {
      let c = 0xffffffff;
      for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
      return (c ^ 0xffffffff) >>> 0;
    },
    /** Writes a correct checksum into snapshot bytes (header 0..36 + payload). */
    reseal(bytes) {
      const covered = new Uint8Array(bytes.length - 4);
      covered.set(bytes.subarray(0, 36));
      covered.set(bytes.subarray(40), 36);
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(36, C.crc32(covered), true);
      return bytes;
    },
    idbGet: (db, key) => idb(db, "readonly", (s) => s.get(key)),
    idbSet: (db, key, value) => idb(db, "readwrite", (s) => s.put(value, key)),
    /** What was observed since the last call. */
    take() {
      const out = JSON.parse(JSON.stringify(seen));
      for (const k of Object.keys(seen)) seen[k].length = 0;
      return out;
    },
  };
  window.C = C;
}
