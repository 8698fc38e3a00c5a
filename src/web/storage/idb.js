// IndexedDB driver for sessile's slots, called from storage/indexeddb.rs.
// Kept in JS because an IndexedDB compare-and-set must issue its put inside
// the success callback of the read in the same transaction; awaiting across
// the wasm boundary could let the transaction commit in between.
// One database per sessile namespace, one object store "slots" whose keys
// are "a", "b" (Uint8Array snapshots) and "head" ({version} of the last write).

const STORE = "slots";

function fail(reject, what, err) {
  const e = err || new DOMException(`${what} failed`, "UnknownError");
  reject(e);
}

/** Opens (creating if needed) the namespace's database. */
export function idbOpen(name) {
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = indexedDB.open(name, 1);
    } catch (e) {
      reject(e);
      return;
    }
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => fail(reject, "indexedDB.open", req.error);
    req.onblocked = () => fail(reject, "indexedDB.open (blocked by another tab)", null);
  });
}

/** Calls `onclose` when the browser closes the connection (eviction, deletion). */
export function idbWatchClose(db, onclose) {
  let open = true;
  const closed = () => {
    if (open) {
      open = false;
      onclose();
    }
  };
  db.onclose = closed;
  db.onversionchange = () => {
    db.close();
    closed();
  };
}

/** Closes the connection and detaches the handlers (the store let go of it). */
export function idbRelease(db) {
  db.onclose = null;
  db.onversionchange = null;
  db.close();
}

/** Reads the slots and the head: resolves [a, b, headVersion] (undefined when absent). */
export function idbReadAll(db) {
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(STORE, "readonly");
    } catch (e) {
      reject(e);
      return;
    }
    const store = tx.objectStore(STORE);
    const out = [undefined, undefined, undefined];
    ["a", "b", "head"].forEach((key, i) => {
      const r = store.get(key);
      r.onsuccess = () => {
        const v = r.result;
        if (i === 2) out[i] = v && typeof v.version === "number" ? v.version : undefined;
        else out[i] = v instanceof Uint8Array ? v : v instanceof ArrayBuffer ? new Uint8Array(v) : undefined;
      };
    });
    tx.oncomplete = () => resolve(out);
    tx.onerror = () => fail(reject, "IndexedDB read", tx.error);
    tx.onabort = () => fail(reject, "IndexedDB read", tx.error);
  });
}

/**
 * Writes `bytes` under `slot` and the head {version} in one transaction, only
 * if the stored head (0 when absent) is still `expected`: the version this
 * write is based on. Resolves -1 when written and committed, or the stored
 * head when the write was refused. A failed request aborts the transaction,
 * so nothing is half-written, and rejects.
 */
export function idbWriteIfHead(db, slot, bytes, expected, version) {
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(STORE, "readwrite", { durability: "strict" });
    } catch (e) {
      reject(e);
      return;
    }
    const store = tx.objectStore(STORE);
    let refusedBy = -1;
    const head = store.get("head");
    head.onsuccess = () => {
      const stored = head.result && typeof head.result.version === "number" ? head.result.version : 0;
      if (stored !== expected) {
        refusedBy = stored;
        tx.abort();
        return;
      }
      store.put(bytes, slot);
      store.put({ version }, "head");
    };
    tx.oncomplete = () => resolve(-1);
    tx.onabort = () => (refusedBy >= 0 ? resolve(refusedBy) : fail(reject, "IndexedDB write", tx.error));
  });
}

/**
 * Removes both slots and leaves the head at `tombstone`, so a write based on
 * the cleared state (a tab that has not heard of the clear) is refused.
 */
export function idbClear(db, tombstone) {
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(STORE, "readwrite");
    } catch (e) {
      reject(e);
      return;
    }
    const store = tx.objectStore(STORE);
    store.delete("a");
    store.delete("b");
    store.put({ version: tombstone }, "head");
    tx.oncomplete = () => resolve();
    tx.onabort = () => fail(reject, "IndexedDB clear", tx.error);
  });
}
