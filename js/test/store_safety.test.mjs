// What the store promises when another tab gets in the way, in real
// Chromium, Firefox and WebKit tabs (real IndexedDB, localStorage, Web Locks and
// BroadcastChannel): a refused write never lets a stale copy overwrite the
// newer one, a clear in another tab stays cleared, a storage read that fails
// is not taken for corrupt bytes, a failed write is retried, and a store
// that is closing takes no more changes.
// The races are made deterministic: a second tab holds the namespace's Web
// Lock `sessile:<ns>` so the first tab's write waits for it, and writes its
// own bytes directly meanwhile, as a tab writing under that lock does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KINDS, closeEach, launchEach, scenario, waitFor } from "./browsers.mjs";
import { blankWww, startServer } from "./harness.mjs";

const env = { server: undefined };
let launching;

before(async () => {
  launching = launchEach();
  env.server = await startServer(["--www", blankWww()]);
});

after(async () => {
  await closeEach(launching);
  await env.server?.stop();
});

/** Installs `window.T`: the package and the helpers both tabs of a scenario use. */
async function install() {
  if (window.T) return;
  const { loadSessile } = await import("/js/index.js");
  const sessile = await loadSessile();
  const idb = (name, work) =>
    new Promise((resolve, reject) => {
      const r = indexedDB.open(`sessile:${name}`, 1);
      r.onupgradeneeded = () => r.result.createObjectStore("slots");
      r.onsuccess = () => {
        const tx = r.result.transaction("slots", "readwrite");
        const req = work(tx.objectStore("slots"));
        tx.oncomplete = () => {
          r.result.close();
          resolve(req?.result);
        };
        tx.onerror = () => reject(tx.error);
      };
      r.onerror = () => reject(r.error);
    });
  const base64 = (bytes) => btoa(String.fromCharCode(...bytes));
  const T = {
    sessile,
    /** Opens a store collecting its events: `store.events`, `store.of(type)`. */
    async open(options) {
      const events = [];
      const store = await sessile.openStore({ ...options, onEvent: (e) => events.push(e) });
      return Object.assign(store, { events, of: (type) => events.filter((e) => e.type === type) });
    },
    /** Runs `promise` in the background; `T.settled[key]` says how it ended. */
    settled: {},
    track(key, promise) {
      T.settled[key] = undefined;
      promise.then(
        () => (T.settled[key] = "no error"),
        (e) => (T.settled[key] = `${e.name}:${e.code}`),
      );
    },
    async failure(f) {
      try {
        await f();
        return "no error";
      } catch (e) {
        return `${e.name}:${e.code}`;
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async fresh(name) {
      await new Promise((resolve) => {
        const r = indexedDB.deleteDatabase(`sessile:${name}`);
        r.onsuccess = r.onerror = r.onblocked = () => resolve();
      });
      for (const k of Object.keys(localStorage)) if (k.startsWith(`sessile:${name}:`)) localStorage.removeItem(k);
      document.cookie = `sessile_${encodeURIComponent(name)}=; Max-Age=0; Path=/`;
    },
    /** Takes the namespace's write lock and keeps it until `T.release()`; resolves once held. */
    holdLock(name) {
      return new Promise((held) => {
        navigator.locks.request(`sessile:${name}`, { mode: "exclusive" }, () => {
          held();
          return new Promise((release) => (T.release = release));
        });
      });
    },
    snapshot: (state, stateVersion, generation) =>
      sessile.encodeSnapshot(state, { generation, schemaVersion: 1, stateVersion, modifiedAt: 1 }),
    /** Stores `state` as version `version` in `slot` of the IndexedDB backend and moves the head, as a write does. */
    idbWrite: (name, slot, state, version, generation) =>
      idb(name, (s) => {
        s.put(T.snapshot(state, version, generation), slot);
        return s.put({ version }, "head");
      }),
    /** Removes both slots and leaves head `tombstone`, as clear() does. */
    idbClear: (name, tombstone) =>
      idb(name, (s) => {
        s.delete("a");
        s.delete("b");
        return s.put({ version: tombstone }, "head");
      }),
    idbRead: (name) =>
      new Promise((resolve, reject) => {
        const r = indexedDB.open(`sessile:${name}`, 1);
        r.onsuccess = () => {
          const tx = r.result.transaction("slots", "readonly");
          const [a, b, head] = ["a", "b", "head"].map((k) => tx.objectStore("slots").get(k));
          tx.oncomplete = () => {
            r.result.close();
            const decoded = (req) => (req.result === undefined ? null : sessile.decodeSnapshot(new Uint8Array(req.result)).state);
            resolve({ a: decoded(a), b: decoded(b), head: head.result?.version ?? 0 });
          };
          tx.onerror = () => reject(tx.error);
        };
        r.onerror = () => reject(r.error);
      }),
    /** Stores `state` in `slot` of the localStorage backend and moves the head. */
    lsWrite(name, slot, state, version, generation) {
      localStorage.setItem(`sessile:${name}:${slot}`, base64(T.snapshot(state, version, generation)));
      localStorage.setItem(`sessile:${name}:head`, String(version));
    },
    /** A rescue copy as a tab leaving with unsaved changes writes it. */
    writeRescue(name, tab, base, state, version) {
      localStorage.setItem(`sessile:${name}:rescue:${tab}`, `${base}:${base64(T.snapshot(state, version, 1))}`);
    },
    rescueKeys: (name) => Object.keys(localStorage).filter((k) => k.startsWith(`sessile:${name}:rescue:`)),
    /** Fills localStorage until it refuses; returns the keys to remove. */
    fillLocalStorage() {
      const junk = [];
      for (let size = 1 << 20; size >= 1024; ) {
        try {
          localStorage.setItem(`t-junk-${junk.length}`, "j".repeat(size));
          junk.push(`t-junk-${junk.length}`);
        } catch {
          size >>= 1;
        }
      }
      return junk;
    },
  };
  window.T = T;
}

for (const kind of KINDS) {
  describe(`store safety in ${kind}`, () => {
    const b = { browser: undefined };
    before(async () => {
      b.browser = await launching.get(kind);
    });

    async function tab() {
      const t = await b.browser.newTab(env.server.url);
      await t.evaluate(install);
      return t;
    }

    /** Waits until the write of tab `x` is waiting for the lock `y` holds. */
    const writing = (x) =>
      waitFor(() => x.evaluate(() => window.store.diagnostics().writing), { what: "the write under way" });

    /** Waits until tab `x` sees `value` under localStorage `key` (written by another tab). */
    const visible = (x, key, value) =>
      waitFor(
        () =>
          x.evaluate(
            ({ key, value }) => (T.realGet ?? Storage.prototype.getItem).call(localStorage, key) === value,
            { key, value },
          ),
        { what: `${key} visible in the tab` },
      );

    /** Waits until every background promise `keys` of tab `x` settled; returns how. */
    const settled = (x, keys) =>
      waitFor(
        () => x.evaluate((keys) => (keys.every((k) => T.settled[k] !== undefined) ? T.settled : null), keys),
        { what: `${keys.join(", ")} settled` },
      );
    test("a refused write keeps the other tab's newer copy: no write plans from the stale slot meanwhile", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-stale-plan";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" }, debounceMs: 60000 });
          store.set({ step: "checkout", by: "x" });
          await store.flush(); // head 1, slot a
        }, ns);
        await y.evaluate((ns) => T.holdLock(ns), ns);
        await x.evaluate(() => {
          store.set({ step: "payment", by: "x" });
          T.track("first", store.flush());
        });
        await writing(x);
        // A change while that write waits, and a flush that waits for it.
        await x.evaluate(() => {
          store.set({ step: "payment-2", by: "x" });
          T.track("second", store.flush());
        });
        // The other tab stores its newer state (version 2, slot b) under the lock.
        await y.evaluate(async (ns) => {
          await T.idbWrite(ns, "b", { step: "success", by: "y" }, 2, 2);
          T.release();
        }, ns);
        const how = await settled(x, ["first", "second"]);
        const out = await x.evaluate(async (ns) => {
          const r = { state: store.state, conflicts: store.of("conflict"), stored: await T.idbRead(ns) };
          await store.close();
          const again = await T.open({ name: ns, initial: null });
          r.reopened = again.state;
          await again.close();
          return r;
        }, ns);
        assert.equal(how.first, "SessileError:STALE_WRITE");
        assert.equal(how.second, "no error");
        assert.deepEqual(out.stored.b, { step: "success", by: "y" }, "the other tab's copy is still stored");
        assert.equal(out.stored.head, 2);
        assert.deepEqual(out.reopened, { step: "success", by: "y" });
        assert.deepEqual(out.state, { step: "success", by: "y" });
        assert.equal(out.conflicts.length, 1);
        assert.equal(out.conflicts[0].winner, "remote");
        assert.deepEqual(out.conflicts[0].local, { step: "payment-2", by: "x" });
      }));

    test("a clear in another tab while a write waits stays cleared: the old state is not written back", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-stale-clear";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" }, debounceMs: 60000 });
          store.set({ step: "checkout", by: "x" });
          await store.flush(); // head 1
        }, ns);
        await y.evaluate((ns) => T.holdLock(ns), ns);
        await x.evaluate(() => {
          store.set({ step: "payment", by: "x" });
          T.track("flush", store.flush());
        });
        await writing(x);
        // The other tab clears under the lock (tombstone head 2) and says so, as clear() does.
        await y.evaluate(async (ns) => {
          await T.idbClear(ns, 2);
          const channel = new BroadcastChannel(`sessile:${ns}`);
          channel.postMessage({ tab: "other-tab", version: 2, cleared: true });
          channel.close();
          await T.sleep(200); // delivered while x's write still waits
          T.release();
        }, ns);
        const how = await settled(x, ["flush"]);
        await x.evaluate(() => T.sleep(100));
        const out = await x.evaluate(async (ns) => {
          const r = {
            state: store.state,
            d: store.diagnostics(),
            cleared: store.of("session_updated").filter((e) => e.cleared === true),
            conflicts: store.of("conflict"),
            stored: await T.idbRead(ns),
          };
          await store.close();
          r.afterClose = await T.idbRead(ns);
          return r;
        }, ns);
        assert.equal(how.flush, "SessileError:STALE_WRITE");
        assert.deepEqual(out.stored, { a: null, b: null, head: 2 }, "still cleared");
        assert.deepEqual(out.afterClose, { a: null, b: null, head: 2 }, "close wrote nothing back");
        assert.deepEqual(out.state, { step: "cart" }, "reset to initial");
        assert.equal(out.d.unsaved, false);
        assert.equal(out.d.storedVersion, 2);
        assert.equal(out.cleared.length, 1, "the page is told once that the session was cleared");
        assert.equal(out.conflicts.length, 1);
        assert.equal(out.conflicts[0].winner, "remote");
        assert.deepEqual(out.conflicts[0].local, { step: "payment", by: "x" });
        assert.deepEqual(out.conflicts[0].remote, { step: "cart" });
      }));

    test("after clear() no tab's rescue copy brings the ended session back", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-clear-rescue";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" }, debounceMs: 60000 });
          store.set({ step: "checkout", by: "x" });
          await store.flush(); // head 1
        }, ns);
        // The other tab went away with an unsaved change based on head 1.
        await y.evaluate((ns) => T.writeRescue(ns, "tab-y", 1, { step: "success", card: "4242" }, 2), ns);
        await visible(x, `sessile:${ns}:rescue:tab-y`, await y.evaluate((ns) => localStorage.getItem(`sessile:${ns}:rescue:tab-y`), ns));
        const cleared = await x.evaluate(async (ns) => {
          await store.clear();
          const keys = T.rescueKeys(ns);
          await store.close();
          return { keys, head: (await T.idbRead(ns)).head };
        }, ns);
        const z = await tab();
        const first = await z.evaluate(async (ns) => {
          const s = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" } });
          const r = { state: s.state, outcome: s.of("state_restored")[0].outcome };
          await s.close();
          return r;
        }, ns);
        // A tab that had not heard of the clear leaves a rescue copy based on the old head.
        await y.evaluate((ns) => T.writeRescue(ns, "tab-y", 1, { step: "success", card: "4242" }, 2), ns);
        await visible(z, `sessile:${ns}:rescue:tab-y`, await y.evaluate((ns) => localStorage.getItem(`sessile:${ns}:rescue:tab-y`), ns));
        const second = await z.evaluate(async (ns) => {
          const s = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" } });
          const r = { state: s.state, outcome: s.of("state_restored")[0].outcome, conflicts: s.of("conflict"), keys: T.rescueKeys(ns) };
          await s.close();
          return r;
        }, ns);
        assert.equal(cleared.head, 2);
        assert.deepEqual(cleared.keys, [], "clear() removed every tab's rescue copy");
        assert.deepEqual(first, { state: { step: "cart" }, outcome: "fresh" });
        assert.deepEqual(second.state, { step: "cart" }, "a copy based on a head before the tombstone is not restored");
        assert.equal(second.outcome, "fresh");
        assert.equal(second.conflicts.length, 1);
        assert.deepEqual(second.conflicts[0].local, { step: "success", card: "4242" });
        assert.deepEqual(second.keys, []);
      }));

    test("a failed read after a refused write keeps the state unsaved and never overwrites the newer copy", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-stale-read";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "localstorage", initial: { step: "cart" }, debounceMs: 60000 });
          store.set({ step: "checkout", by: "x" });
          await store.flush(); // head 1, slot a
        }, ns);
        await y.evaluate((ns) => T.holdLock(ns), ns);
        await x.evaluate((ns) => {
          // Storage becomes unreachable (as when site data is blocked) right
          // after this tab's write read the other tab's head: the read of the
          // stored state that follows fails.
          const realGet = Storage.prototype.getItem;
          const realLs = Object.getOwnPropertyDescriptor(window, "localStorage");
          T.realGet = realGet;
          T.repair = () => {
            Storage.prototype.getItem = realGet;
            Object.defineProperty(window, "localStorage", realLs);
          };
          Storage.prototype.getItem = function (key) {
            const value = realGet.call(this, key);
            if (key === `sessile:${ns}:head` && value === "2") {
              Object.defineProperty(window, "localStorage", {
                configurable: true,
                get() {
                  throw new DOMException("Access is denied for this document.", "SecurityError");
                },
              });
            }
            return value;
          };
          store.set({ step: "payment", by: "x" });
          T.track("flush", store.flush());
        }, ns);
        await writing(x);
        await y.evaluate((ns) => T.lsWrite(ns, "b", { step: "success", by: "y" }, 2, 2), ns);
        // Chromium hands another tab's localStorage writes over asynchronously:
        // release the lock once this tab sees them, as it would after a real write.
        await visible(x, `sessile:${ns}:head`, "2");
        await y.evaluate(() => T.release());
        const how = await settled(x, ["flush"]);
        const out = await x.evaluate(async (ns) => {
          T.repair();
          const r = { d: store.diagnostics(), conflictsBefore: store.of("conflict").length };
          r.retry = await T.failure(() => store.flush());
          r.state = store.state;
          r.conflicts = store.of("conflict");
          r.storedB = localStorage.getItem(`sessile:${ns}:b`);
          await store.close();
          const again = await T.open({ name: ns, storage: "localstorage", initial: null });
          r.reopened = again.state;
          await again.close();
          return r;
        }, ns);
        assert.equal(how.flush, "SessileError:STORAGE_UNAVAILABLE", "a retryable read error, not a write over the copy");
        assert.equal(out.d.unsaved, true, "the state stays unsaved");
        assert.equal(out.d.storedVersion, 1, "the head it knows did not move");
        assert.equal(out.conflictsBefore, 0, "no winner declared while nothing could be read");
        assert.equal(out.retry, "SessileError:STALE_WRITE");
        assert.deepEqual(out.reopened, { step: "success", by: "y" }, "the other tab's newer copy survived");
        assert.deepEqual(out.state, { step: "success", by: "y" });
        assert.equal(out.conflicts.length, 1);
        assert.equal(out.conflicts[0].winner, "remote");
        assert.deepEqual(out.conflicts[0].local, { step: "payment", by: "x" });
      }));

    test("a write that fails after its debounce timer already fired is still retried", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-retry";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "localstorage", debounceMs: 20, compressAbove: 1e8 });
          T.junk = T.fillLocalStorage();
        }, ns);
        await y.evaluate((ns) => T.holdLock(ns), ns);
        await x.evaluate(async () => {
          store.set({ blob: "b".repeat(64 * 1024) });
          T.track("flush", store.flush());
          // The debounce timer comes due while the write waits for the lock.
          await T.sleep(300);
        });
        await writing(x);
        await y.evaluate(() => T.release());
        const how = await settled(x, ["flush"]);
        const out = await x.evaluate(async (ns) => {
          const r = { unsaved: store.diagnostics().unsaved };
          for (const k of T.junk) localStorage.removeItem(k);
          // No change, flush or page hide from here: only the retry timer can write it.
          const end = Date.now() + 8000;
          const busy = () => store.diagnostics().unsaved || store.diagnostics().writing;
          while (busy() && Date.now() < end) await T.sleep(50);
          r.d = store.diagnostics();
          r.head = localStorage.getItem(`sessile:${ns}:head`);
          await store.close();
          return r;
        }, ns);
        assert.equal(how.flush, "SessileError:QUOTA_EXCEEDED");
        assert.equal(out.unsaved, true);
        assert.equal(out.d.unsaved, false, `retried once space was free: ${JSON.stringify(out.d)}`);
        assert.equal(out.d.lastError, null);
        assert.equal(out.head, "1");
      }));

    test("a store that is closing refuses changes instead of dropping them", (t) =>
      scenario(t, b.browser, async () => {
        const x = await tab();
        const y = await tab();
        const ns = "s-closing";
        await x.evaluate(async (ns) => {
          await T.fresh(ns);
          window.store = await T.open({ name: ns, storage: "indexeddb", initial: { step: "cart" }, debounceMs: 60000 });
          store.set({ step: "checkout" });
        }, ns);
        await y.evaluate((ns) => T.holdLock(ns), ns);
        await x.evaluate(() => T.track("close", store.close()));
        await writing(x);
        const during = await x.evaluate(() => T.failure(() => store.set({ step: "payment" })));
        await y.evaluate(() => T.release());
        const how = await settled(x, ["close"]);
        const out = await x.evaluate(async (ns) => {
          const again = await T.open({ name: ns, initial: null });
          const r = { reopened: again.state, version: again.version };
          await again.close();
          return r;
        }, ns);
        assert.equal(during, "SessileError:STORE_CLOSED", "a change while closing is refused, not dropped");
        assert.equal(how.close, "no error");
        assert.deepEqual(out.reopened, { step: "checkout" });
        assert.equal(out.version, 1);
      }));

  });
}
