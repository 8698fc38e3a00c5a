/**
 * IndexedDB backend: one database `sessile:<ns>` with one object store
 * `slots` whose keys are "a", "b" (Uint8Array snapshots) and "head"
 * (`{ version }` of the last write). A write is a compare-and-set in one
 * transaction: the put is issued in the success callback of the head's read,
 * so the transaction cannot commit in between, and a failed request aborts
 * the whole transaction (nothing half-written). When the browser closes the
 * connection (eviction, "clear site data", a version change from another
 * tab, or Safari's InvalidStateError without an event) `closed` turns true
 * and the store reopens it.
 */
import { unavailable } from "../errors.js";
import { quota } from "../page.js";
import { storageError, type Backend, type SlotsRead } from "./backend.js";

const STORE = "slots";

/** The request's or transaction's error, or a generic one. */
const failure = (what: string, err: DOMException | null | undefined) =>
  err ?? new DOMException(`${what} failed`, "UnknownError");

function openDb(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = window.indexedDB.open(name, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(failure("indexedDB.open", req.error));
    req.onblocked = () => reject(failure("indexedDB.open (blocked by another tab)", null));
  });
}

/** Runs `body` in a transaction; resolves what `done` returns on completion. */
function transaction<T>(
  db: IDBDatabase,
  mode: IDBTransactionMode,
  what: string,
  body: (store: IDBObjectStore, tx: IDBTransaction) => () => T,
  onAbort?: () => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode, mode === "readwrite" ? { durability: "strict" } : undefined);
    const done = body(tx.objectStore(STORE), tx);
    tx.oncomplete = () => resolve(done());
    tx.onabort = () => {
      const refused = onAbort?.();
      if (refused !== undefined) resolve(refused);
      else reject(failure(what, tx.error));
    };
  });
}

const asBytes = (v: unknown) =>
  v instanceof Uint8Array ? v : v instanceof ArrayBuffer ? new Uint8Array(v) : undefined;
const headOf = (v: unknown) => {
  const version = (v as { version?: unknown } | undefined)?.version;
  return typeof version === "number" ? version : 0;
};

export async function openIndexedDb(ns: string): Promise<Backend> {
  if (typeof window === "undefined" || !("indexedDB" in window)) {
    throw unavailable("IndexedDB is not available (no window or no indexedDB)");
  }
  // The quota estimate runs while the database opens.
  const estimate = quota();
  let db: IDBDatabase;
  try {
    db = await openDb(`sessile:${ns}`);
  } catch (e) {
    throw storageError(e, 0);
  }
  if ((await estimate) === 0) {
    db.close();
    throw unavailable("the browser grants this origin no storage quota");
  }
  let closed = false;
  db.onclose = () => (closed = true);
  db.onversionchange = () => {
    db.close();
    closed = true;
  };
  /** Maps a failure; an InvalidStateError means the browser closed the connection. */
  const settle = async <T>(run: () => Promise<T>, bytes: number): Promise<T> => {
    try {
      return await run();
    } catch (e) {
      if ((e as { name?: string } | null)?.name === "InvalidStateError") closed = true;
      throw storageError(e, bytes);
    }
  };
  const backend: Backend = {
    kind: "indexeddb",
    get closed() {
      return closed;
    },
    readAll: () =>
      settle(
        () =>
          transaction<SlotsRead>(db, "readonly", "IndexedDB read", (store) => {
            const [a, b, head] = ["a", "b", "head"].map((key) => store.get(key));
            return () => ({ a: asBytes(a!.result), b: asBytes(b!.result), head: headOf(head!.result) });
          }),
        0,
      ),
    writeIfHead: (slot, bytes, base, version) => {
      let refusedBy: number | undefined;
      return settle(
        () =>
          transaction<number | undefined>(
            db,
            "readwrite",
            "IndexedDB write",
            (store, tx) => {
              const head = store.get("head");
              head.onsuccess = () => {
                const stored = headOf(head.result);
                if (stored !== base) {
                  refusedBy = stored;
                  tx.abort();
                  return;
                }
                store.put(bytes, slot);
                store.put({ version }, "head");
              };
              return () => undefined;
            },
            () => refusedBy,
          ),
        bytes.length,
      );
    },
    clear: (tombstone) =>
      settle(
        () =>
          transaction<void>(db, "readwrite", "IndexedDB clear", (store) => {
            store.delete("a");
            store.delete("b");
            store.put({ version: tombstone }, "head");
            return () => undefined;
          }),
        0,
      ),
    release() {
      db.onclose = null;
      db.onversionchange = null;
      db.close();
    },
  };
  // A read proves the database is usable (private modes that expose
  // indexedDB but fail every transaction are caught here).
  try {
    await backend.readAll();
  } catch (e) {
    backend.release();
    throw e;
  }
  return backend;
}
