/**
 * Memory backend: slots in a table shared by every store of this page (so
 * two stores of one namespace see each other, as two tabs would through
 * real storage). Lost on reload; the last resort of the `auto` chain.
 */
import type { Backend } from "./backend.js";

interface Entry {
  a?: Uint8Array;
  b?: Uint8Array;
  /** Version of the last successful write (the compare-and-set head), 0 when none. */
  head: number;
}

const table = new Map<string, Entry>();

export function openMemory(ns: string): Backend {
  const entry = () => {
    let e = table.get(ns);
    if (!e) table.set(ns, (e = { head: 0 }));
    return e;
  };
  return {
    kind: "memory",
    closed: false,
    async readAll() {
      const e = entry();
      return { a: e.a, b: e.b, head: e.head };
    },
    async writeIfHead(slot, bytes, base, version) {
      const e = entry();
      if (e.head !== base) return e.head;
      e[slot] = bytes.slice();
      e.head = version;
      return undefined;
    },
    async clear(tombstone) {
      table.set(ns, { head: tombstone });
    },
    release() {},
  };
}
