// openStore and the localStorage snapshot functions in real Chromium,
// Firefox and WebKit pages (real IndexedDB and localStorage), each scenario
// in each browser (browsers.mjs KINDS): restore after reopening, each slot corrupted in turn, both
// corrupted, backends unavailable, a real localStorage quota error, oversize
// state, two stores of one namespace racing, clear across tabs, golden old
// schemas migrated or refused, eviction, a closed connection reopened, the
// pagehide rescue copy, debounce and page hide, backoff after a failed
// write, and bytes stored in the format older builds wrote.
// Two stores in one page stand for two tabs: they share storage, the Web
// Lock and the BroadcastChannel as tabs do (over WebDriver a browser runs
// one command at a time, so one tab cannot wait for another).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { KINDS, closeEach, launchEach, scenario } from "./browsers.mjs";
import { blankWww, startServer } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const golden = (n) =>
  readFileSync(path.join(ROOT, `tests/fixtures/v1/schema/checkout-schema${n}.snap`)).toString("base64");
const GOLDEN = { 1: golden(1), 2: golden(2), 4: golden(4) };

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

/**
 * Installs `window.T` in the page: the loaded package and the helpers the
 * scenarios share (raw IndexedDB access, storage switched off the way a
 * browser with storage disabled does it, events collected per store).
 */
async function install() {
  if (window.T) return;
  const { loadSessile } = await import("/js/index.js");
  const sessile = await loadSessile();
  const idb = (db, mode, work) =>
    new Promise((resolve, reject) => {
      const r = indexedDB.open(db, 1);
      r.onupgradeneeded = () => r.result.createObjectStore("slots");
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
  const realIdb = Object.getOwnPropertyDescriptor(window, "indexedDB");
  const realLs = Object.getOwnPropertyDescriptor(window, "localStorage");
  const T = {
    sessile,
    /** Opens a store collecting its events: `store.events`, `store.of(type)`. */
    async open(options) {
      const events = [];
      const store = await sessile.openStore({ ...options, onEvent: (e) => events.push(e) });
      return Object.assign(store, { events, of: (type) => events.filter((e) => e.type === type) });
    },
    /** What `f()` (sync or async) threw: its name and code, or "no error". */
    async failure(f) {
      try {
        await f();
        return "no error";
      } catch (e) {
        return `${e.name}:${e.code}`;
      }
    },
    text: (v) => JSON.stringify(v),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    idbGet: (db, key) => idb(db, "readonly", (s) => s.get(key)),
    idbSet: (db, key, bytes) => idb(db, "readwrite", (s) => s.put(bytes, key)),
    deleteDb: (name) =>
      new Promise((resolve) => {
        const r = indexedDB.deleteDatabase(name);
        r.onsuccess = r.onerror = r.onblocked = () => resolve();
      }),
    /** Deletes namespace `name`'s database and localStorage keys. */
    async fresh(name) {
      await T.deleteDb(`sessile:${name}`);
      for (const k of Object.keys(localStorage)) if (k.startsWith(`sessile:${name}:`)) localStorage.removeItem(k);
      document.cookie = `sessile_${encodeURIComponent(name)}=; Max-Age=0; Path=/`;
      return `sessile:${name}`;
    },
    breakIndexedDb() {
      Object.defineProperty(window, "indexedDB", {
        configurable: true,
        value: {
          open() {
            throw new DOMException("The operation is insecure.", "SecurityError");
          },
        },
      });
    },
    breakLocalStorage() {
      Object.defineProperty(window, "localStorage", {
        configurable: true,
        get() {
          throw new DOMException("Access is denied for this document.", "SecurityError");
        },
      });
    },
    repairStorage() {
      if (realIdb) Object.defineProperty(window, "indexedDB", realIdb);
      else delete window.indexedDB;
      if (realLs) Object.defineProperty(window, "localStorage", realLs);
      else delete window.localStorage;
    },
    rescueKeys: (name) => Object.keys(localStorage).filter((k) => k.startsWith(`sessile:${name}:rescue:`)),
    bytes: (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)),
    base64: (bytes) => btoa(String.fromCharCode(...bytes)),
    checkout: (n) => ({
      step: "checkout",
      items: Array.from({ length: n }, (_, i) => ({ sku: `SKU-${String(i).padStart(5, "0")}`, name: `Item ${i}`, qty: (i % 3) + 1 })),
    }),
    /** Writes two versions to a fresh store of `name` and closes it; returns both states. */
    async savedTwice(name, storage) {
      const store = await T.open({ name, storage, initial: {} });
      const first = T.checkout(3);
      const second = T.checkout(5);
      store.set(first);
      await store.flush();
      store.set(second);
      await store.flush();
      await store.close();
      return { first, second };
    },
    /**
     * Puts golden bytes (base64) in slot a of a fresh namespace and opens it
     * with schema 3 and `migrate` (source text); returns the store (or the
     * error) and whether slot a still holds exactly the golden bytes.
     */
    async openGolden(name, snap, migrate) {
      const db = await T.fresh(name);
      await (await T.open({ name, storage: "indexeddb" })).close();
      await T.idbSet(db, "a", T.bytes(snap));
      const store = await T.open({ name, storage: "indexeddb", schemaVersion: 3, migrate: (0, eval)(`(${migrate})`) }).catch(
        (e) => ({ error: `${e.name}:${e.code}`, message: e.message }),
      );
      return { store, kept: T.base64(new Uint8Array(await T.idbGet(db, "a"))) === snap };
    },
    /** Two stores of a fresh namespace, as two tabs would have; only `flush` writes. */
    async twoTabs(name) {
      await T.fresh(name);
      const options = { name, initial: { step: "cart" }, debounceMs: 60000 };
      return { options, a: await T.open(options), b: await T.open(options) };
    },
  };
  window.T = T;
}

for (const kind of KINDS) {
  describe(`openStore in ${kind}`, () => {
    const b = { browser: undefined };
    before(async () => {
      b.browser = await launching.get(kind);
    });

    /** A new tab of the server's blank page with `window.T` installed. */
    async function page() {
      const tab = await b.browser.newTab(env.server.url);
      await tab.evaluate(install);
      return tab;
    }

    test("the state comes back after reopening, from IndexedDB", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-reopen");
          const { second } = await T.savedTwice("t-reopen", "auto");
          const store = await T.open({ name: "t-reopen", initial: null });
          const r = { same: T.text(store.state) === T.text(second), version: store.version, d: store.diagnostics(), restored: store.of("state_restored")[0] };
          await store.close();
          return r;
        });
        assert.equal(out.same, true);
        assert.equal(out.version, 2);
        assert.equal(out.d.backend, "indexeddb");
        assert.equal(out.d.webLocks, true);
        assert.equal(out.restored.outcome, "restored");
        assert.equal(out.restored.from, "b");
        assert.deepEqual(out.restored.skipped, []);
      }));

    test("each corrupted slot in turn is skipped and reported; the next write goes over it", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        for (const [slot, expectFrom] of [["b", "a"], ["a", "b"]]) {
          const out = await tab.evaluate(
            async ({ slot }) => {
              const name = `t-corrupt-${slot}`;
              const db = await T.fresh(name);
              const { first, second } = await T.savedTwice(name, "indexeddb");
              const bytes = new Uint8Array(await T.idbGet(db, slot));
              bytes[bytes.length >> 1] ^= 0x40;
              await T.idbSet(db, slot, bytes);
              const store = await T.open({ name, initial: null });
              const r = {
                state: T.text(store.state),
                first: T.text(first),
                second: T.text(second),
                version: store.version,
                restored: store.of("state_restored")[0],
                errors: store.of("error_occurred").length,
              };
              store.set({ step: "upsell-1" });
              await store.flush();
              r.lastWrite = store.diagnostics().lastWrite;
              await store.close();
              return r;
            },
            { slot },
          );
          assert.equal(out.state, expectFrom === "a" ? out.first : out.second, `slot ${slot} corrupted`);
          assert.equal(out.version, 2, "the version never falls below the stored head");
          assert.equal(out.restored.from, expectFrom);
          assert.equal(out.restored.skipped.length, 1);
          assert.equal(out.restored.skipped[0].slot, slot);
          assert.equal(out.restored.skipped[0].error.code, "CHECKSUM_MISMATCH");
          assert.equal(out.errors, 0);
          assert.equal(out.lastWrite.slot, slot, "the next write goes to the corrupted slot, never over the good one");
          // Slot a holds generation 1 and slot b generation 2: the write after the good copy is one later.
          assert.equal(out.lastWrite.generation, expectFrom === "a" ? 2 : 3);
          assert.match(out.lastWrite.checksum, /^[0-9a-f]{8}$/);
        }
      }));

    test("both slots corrupted: the initial state, an unreadable restore and a clear error", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          const db = await T.fresh("t-corrupt-both");
          await T.savedTwice("t-corrupt-both", "indexeddb");
          const torn = new TextEncoder().encode("SSNP\x01torn");
          for (const slot of ["a", "b"]) await T.idbSet(db, slot, torn);
          const store = await T.open({ name: "t-corrupt-both", initial: { step: "cart" } });
          const r = { state: store.state, restored: store.of("state_restored")[0], error: store.of("error_occurred")[0] };
          r.next = store.set({ step: "checkout" });
          await store.flush();
          await store.close();
          const again = await T.open({ name: "t-corrupt-both", initial: null });
          r.after = again.state;
          await again.close();
          return r;
        });
        assert.deepEqual(out.state, { step: "cart" });
        assert.equal(out.restored.outcome, "unreadable");
        assert.deepEqual(out.restored.skipped.map((s) => [s.slot, s.error.code]), [["a", "TRUNCATED"], ["b", "TRUNCATED"]]);
        assert.equal(out.error.error.code, "TRUNCATED");
        assert.equal(out.error.during, "restore");
        assert.equal(out.next, 3, "a new write still wins over the stored head (version 2)");
        assert.deepEqual(out.after, { step: "checkout" });
      }));

    test("IndexedDB unavailable: localStorage with storage_degraded; naming IndexedDB fails", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-no-idb");
          T.breakIndexedDb();
          let store;
          let explicit;
          try {
            store = await T.open({ name: "t-no-idb", initial: { n: 1 } });
            explicit = await T.failure(() => T.sessile.openStore({ name: "t-no-idb2", storage: "indexeddb" }));
          } finally {
            T.repairStorage();
          }
          store.set({ n: 2 });
          await store.flush();
          const r = { explicit, d: store.diagnostics(), degraded: store.of("storage_degraded"), stored: localStorage.getItem("sessile:t-no-idb:head") };
          await store.close();
          return r;
        });
        assert.equal(out.explicit, "SessileError:STORAGE_UNAVAILABLE");
        assert.equal(out.d.backend, "localstorage");
        assert.equal(out.degraded.length, 1);
        assert.equal(out.degraded[0].backend, "indexeddb");
        assert.equal(out.degraded[0].using, "localstorage");
        assert.equal(out.degraded[0].error.code, "STORAGE_UNAVAILABLE");
        assert.match(out.degraded[0].error.message, /SecurityError/);
        assert.deepEqual(out.d.degraded.map((d) => d.backend), ["indexeddb"]);
        assert.equal(out.stored, "1");
      }));

    test("no storage at all: memory, with two storage_degraded events", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          T.breakIndexedDb();
          T.breakLocalStorage();
          try {
            const store = await T.open({ name: "t-no-storage", initial: { n: 1 } });
            store.set({ n: 2 });
            await store.flush();
            const r = { d: store.diagnostics(), degraded: store.of("storage_degraded").map((e) => [e.backend, e.using]), restored: store.of("state_restored")[0] };
            await store.close();
            return r;
          } finally {
            T.repairStorage();
          }
        });
        assert.equal(out.d.backend, "memory");
        assert.equal(out.d.unsaved, false);
        assert.equal(out.d.lastWrite.slot, "a");
        assert.deepEqual(out.degraded, [["indexeddb", "memory"], ["localstorage", "memory"]]);
        assert.equal(out.restored.outcome, "fresh");
      }));

    test("a real localStorage quota error keeps the previous state stored", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-quota-store");
          const options = { name: "t-quota-store", storage: "localstorage", compressAbove: 1e8, maxBytes: 1e7 };
          const store = await T.open(options);
          store.set({ step: "cart" });
          await store.flush();
          // 6 MB of JSON stored uncompressed: 8 M base64 characters, over every browser's quota.
          store.set("x".repeat(6 * 1024 * 1024));
          const r = { failure: await T.failure(() => store.flush()), lastError: store.diagnostics().lastError, unsaved: store.diagnostics().unsaved };
          const again = await T.open(options);
          r.stored = again.state;
          await again.close();
          store.set({ step: "checkout" });
          await store.flush();
          const last = await T.open(options);
          r.after = last.state;
          await last.close();
          await store.close();
          return r;
        });
        assert.equal(out.failure, "SessileError:QUOTA_EXCEEDED");
        assert.equal(out.lastError.code, "QUOTA_EXCEEDED");
        assert.match(out.lastError.message, /while writing \d{7,} bytes/);
        assert.equal(out.unsaved, true, "the failed change is kept to be tried again");
        assert.deepEqual(out.stored, { step: "cart" });
        assert.deepEqual(out.after, { step: "checkout" });
      }));

    test("an oversize state is refused and the state is unchanged", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          const store = await T.open({ name: "t-oversize", storage: "memory", maxBytes: 1000, initial: { a: 1 } });
          const r = {
            big: await T.failure(() => store.set("y".repeat(2000))),
            // 400 characters of 3 UTF-8 bytes each: 1202 bytes of JSON.
            wide: await T.failure(() => store.set("€".repeat(400))),
            undef: await T.failure(() => store.set(undefined)),
            cycle: await T.failure(() => {
              const o = {};
              o.o = o;
              store.set(o);
            }),
            bad: await T.failure(() => T.sessile.openStore({ name: "", storage: "memory" })),
            badDebounce: await T.failure(() => T.sessile.openStore({ name: "x", debounceMs: -1 })),
            state: store.state,
            version: store.version,
          };
          await store.close();
          r.closed = await T.failure(() => store.set({ a: 2 }));
          r.closedFlush = await T.failure(() => store.flush());
          return r;
        });
        assert.equal(out.big, "SessileError:STATE_TOO_LARGE");
        assert.equal(out.wide, "SessileError:STATE_TOO_LARGE");
        assert.equal(out.undef, "SessileError:INVALID_STATE");
        assert.equal(out.cycle, "SessileError:INVALID_STATE");
        assert.equal(out.bad, "SessileError:INVALID_OPTIONS");
        assert.equal(out.badDebounce, "SessileError:INVALID_OPTIONS");
        assert.deepEqual(out.state, { a: 1 });
        assert.equal(out.version, 0);
        assert.equal(out.closed, "SessileError:STORE_CLOSED");
        assert.equal(out.closedFlush, "SessileError:STORE_CLOSED");
      }));

    test("two stores of one namespace never let an older version win", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-tabs");
          const options = { name: "t-tabs", initial: { step: "cart" } };
          const a = await T.open(options);
          const b = await T.open(options);
          const r = {};
          // Broadcast: b follows a's stored write.
          a.set({ step: "checkout" });
          await a.flush();
          await T.sleep(100);
          r.followed = { state: b.state, version: b.version, updates: b.of("session_updated") };
          // A stale write: b changes before it hears of a's next write.
          a.set({ step: "upsell-1" });
          await a.flush();
          b.set({ step: "success" });
          r.stale = await T.failure(() => b.flush());
          await T.sleep(100);
          r.b = b.state;
          r.conflict = b.of("conflict")[0];
          const reopened = await T.open(options);
          r.reopened = reopened.state;
          for (const s of [a, b, reopened]) await s.close();
          return r;
        });
        assert.deepEqual(out.followed.state, { step: "checkout" });
        assert.equal(out.followed.version, 1);
        assert.deepEqual(out.followed.updates, [{ type: "session_updated", origin: "tab", version: 1 }]);
        assert.ok(["no error", "SessileError:STALE_WRITE"].includes(out.stale), out.stale);
        // Whichever way the race went, b holds a's stored version and reported both values.
        assert.deepEqual(out.b, { step: "upsell-1" });
        assert.deepEqual(out.conflict.local, { step: "success" });
        assert.deepEqual(out.conflict.remote, { step: "upsell-1" });
        assert.equal(out.conflict.winner, "remote");
        assert.deepEqual(out.reopened, { step: "upsell-1" });
      }));

    test("a tab with more unsaved edits cannot overwrite a newer stored state", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          // Both start from the same head. a makes two edits (its counter runs
          // ahead), b makes one and stores it first: a's write is based on the
          // old head and must be refused, not win by its counter.
          const { options, a, b } = await T.twoTabs("t-race");
          a.set({ step: "checkout", by: "a" });
          const r = { a2: a.set({ step: "upsell-1", by: "a" }), b1: b.set({ step: "success", by: "b" }) };
          await b.flush();
          r.flushed = await T.failure(() => a.flush());
          await T.sleep(50);
          r.a = a.state;
          r.conflict = a.of("conflict")[0];
          const reopened = await T.open(options);
          r.reopened = reopened.state;
          for (const s of [a, b, reopened]) await s.close();
          return r;
        });
        assert.equal(out.a2, 2);
        assert.equal(out.b1, 1);
        assert.ok(["no error", "SessileError:STALE_WRITE"].includes(out.flushed), out.flushed);
        assert.deepEqual(out.a, { step: "success", by: "b" });
        assert.deepEqual(out.conflict.local, { step: "upsell-1", by: "a" });
        assert.equal(out.conflict.winner, "remote");
        assert.deepEqual(out.reopened, { step: "success", by: "b" });
      }));

    test("clear in one tab resets the others and blocks a stale write-back", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          const { options, a, b } = await T.twoTabs("t-clear-tabs");
          a.set({ step: "success" });
          await a.flush();
          await T.sleep(50);
          const r = { before: b.state };
          await a.clear();
          await T.sleep(50);
          r.a = a.state;
          r.b = b.state;
          r.cleared = b.of("session_updated").some((e) => e.cleared === true);
          r.marker = localStorage.getItem("sessile:t-clear-tabs:marker");
          b.set({ step: "checkout" });
          await b.flush();
          const reopened = await T.open(options);
          r.reopened = { state: reopened.state, restored: reopened.of("state_restored")[0].outcome };
          for (const s of [a, b, reopened]) await s.close();
          return r;
        });
        assert.deepEqual(out.before, { step: "success" });
        assert.deepEqual(out.a, { step: "cart" });
        assert.deepEqual(out.b, { step: "cart" }, "b heard of the clear");
        assert.equal(out.cleared, true);
        assert.equal(out.marker, null);
        assert.deepEqual(out.reopened, { state: { step: "checkout" }, restored: "restored" });
      }));

    const MIGRATE = `{ 1: (s) => ({ ...s, step: "checkout" }), 2: ({ mail, ...rest }) => ({ ...rest, email: mail }) }`;

    test("golden snapshots of schemas 1 and 2 are migrated on restore and written back", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        for (const n of [1, 2]) {
          const name = `t-schema${n}`;
          const out = await tab.evaluate(
            async (arg) => {
              const { store } = await T.openGolden(arg.name, arg.snap, arg.migrate);
              const r = { state: store.state, version: store.version, restored: store.of("state_restored")[0] };
              await store.flush();
              const written = T.sessile.decodeSnapshot(new Uint8Array(await T.idbGet(`sessile:${arg.name}`, "b")));
              r.written = { schemaVersion: written.schemaVersion, stateVersion: written.stateVersion, state: written.state };
              await store.close();
              return r;
            },
            { name, snap: GOLDEN[n], migrate: MIGRATE },
          );
          const expected = { step: "checkout", items: [{ sku: "TEE-1", qty: 2 }], email: "a@example.com" };
          assert.deepEqual(out.state, expected, name);
          assert.equal(out.restored.migrated, true);
          assert.equal(out.restored.schemaVersion, n);
          assert.equal(out.version, 5, "a migrated state is a new version");
          assert.deepEqual(out.written, { schemaVersion: 3, stateVersion: 5, state: expected });
        }
      }));

    test("a newer schema or a failing migration is refused and the stored bytes are left untouched", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const run = (name, snap, migrate) =>
          tab.evaluate(
            async (arg) => {
              const { store, kept } = await T.openGolden(arg.name, arg.snap, arg.migrate);
              return { error: store.error, message: store.message, kept };
            },
            { name, snap, migrate },
          );
        const newer = await run("t-schema4", GOLDEN[4], MIGRATE);
        assert.equal(newer.error, "SessileError:SCHEMA_TOO_NEW");
        assert.equal(newer.kept, true);
        const throwing = await run("t-schema-throw", GOLDEN[1], `{ 1: () => { throw new Error("bad data") }, 2: (s) => s }`);
        assert.equal(throwing.error, "SessileError:MIGRATION_FAILED");
        assert.match(throwing.message, /bad data/);
        assert.equal(throwing.kept, true);
        const missing = await run("t-schema-missing", GOLDEN[1], `{ 1: (s) => s }`);
        assert.equal(missing.error, "SessileError:MIGRATION_FAILED");
        assert.match(missing.message, /migrate\[2\]/);
        assert.equal(missing.kept, true);
      }));

    test("an evicted namespace is reported, not treated as new; clear() ends it", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          const db = await T.fresh("t-evicted");
          await T.savedTwice("t-evicted", "indexeddb");
          const r = { cookie: document.cookie.includes("sessile_t-evicted=2") };
          // What eviction or "clear site data" does to IndexedDB.
          await T.deleteDb(db);
          const store = await T.open({ name: "t-evicted", initial: null });
          r.evicted = store.of("state_restored")[0];
          await store.clear();
          await store.close();
          const again = await T.open({ name: "t-evicted", initial: null });
          r.after = again.of("state_restored")[0].outcome;
          r.cookieAfter = document.cookie.includes("sessile_t-evicted=");
          await again.close();
          return r;
        });
        assert.equal(out.cookie, true, "the marker cookie holds the last version");
        assert.equal(out.evicted.outcome, "evicted");
        assert.equal(out.evicted.lastVersion, "2");
        assert.match(out.evicted.reason, /evicted/);
        assert.equal(out.after, "fresh", "clear() ends the session");
        assert.equal(out.cookieAfter, false);
      }));

    test("a connection the browser closed is reopened for the next write", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          const db = await T.fresh("t-reopen-conn");
          const store = await T.open({ name: "t-reopen-conn", storage: "indexeddb" });
          store.set({ n: 1 });
          await store.flush();
          // Deleting the database makes the browser close this store's connection.
          await T.deleteDb(db);
          store.set({ n: 2 });
          await store.flush();
          const stored = T.sessile.decodeSnapshot(new Uint8Array(await T.idbGet(db, "b")));
          await store.close();
          return stored.state;
        });
        assert.deepEqual(out, { n: 2 });
      }));

    test("pagehide with a pending write leaves a rescue copy at once", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-pagehide");
          const store = await T.open({ name: "t-pagehide", debounceMs: 60000 });
          store.set({ step: "success" });
          window.dispatchEvent(new PageTransitionEvent("pagehide"));
          // Written synchronously: no await between the event and this read.
          const r = { keys: T.rescueKeys("t-pagehide").length };
          // A new store (the reloaded page) restores it even if the async write had not finished.
          const again = await T.open({ name: "t-pagehide" });
          r.state = again.state;
          r.from = again.of("state_restored")[0].from;
          if (r.from === "rescue") {
            // The first store's write may land meanwhile: the second then takes
            // it (from the broadcast, or from a refused write of its own).
            r.flush = await T.failure(() => again.flush());
            r.slot = again.diagnostics().lastWrite?.slot ?? null;
          }
          await store.flush();
          r.final = again.state;
          r.after = T.rescueKeys("t-pagehide").length;
          await store.close();
          await again.close();
          const third = await T.open({ name: "t-pagehide" });
          r.stored = third.state;
          await third.close();
          return r;
        });
        assert.equal(out.keys, 1, "one rescue copy, this tab's");
        assert.deepEqual(out.state, { step: "success" });
        // Either the asynchronous write finished first (restored from a slot,
        // the rescue copy already removed), or the rescue copy was restored and
        // written back to a slot (or met the first store's write of the same
        // state), then removed.
        if (out.from === "rescue") {
          assert.ok(["no error", "SessileError:STALE_WRITE"].includes(out.flush), out.flush);
        } else {
          assert.ok(["a", "b"].includes(out.from), out.from);
        }
        assert.deepEqual(out.final, { step: "success" });
        assert.deepEqual(out.stored, { step: "success" });
        assert.equal(out.after, 0);
      }));

    test("a rescue copy alone is restored and written back to a slot", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-rescue-only");
          const bytes = T.sessile.encodeSnapshot({ step: "upsell-2" }, { generation: 3, schemaVersion: 1, stateVersion: 5, modifiedAt: 1 });
          localStorage.setItem("sessile:t-rescue-only:rescue:closedtab", `0:${T.base64(bytes)}`);
          // A broken copy of another tab is reported and removed.
          localStorage.setItem("sessile:t-rescue-only:rescue:broken", "0:not base64!");
          const store = await T.open({ name: "t-rescue-only", storage: "indexeddb" });
          const r = { restored: store.of("state_restored")[0], state: store.state, version: store.version, unsaved: store.diagnostics().unsaved };
          await store.flush();
          r.lastWrite = store.diagnostics().lastWrite;
          r.keys = T.rescueKeys("t-rescue-only");
          await store.close();
          return r;
        });
        assert.equal(out.restored.from, "rescue");
        assert.deepEqual(out.restored.skipped.map((s) => [s.slot, s.error.code]), [["rescue", "CORRUPT_PAYLOAD"]]);
        assert.deepEqual(out.state, { step: "upsell-2" });
        assert.equal(out.version, 5, "continues the (empty) stored head");
        assert.equal(out.unsaved, true, "not stored while the quota refuses it");
        assert.equal(out.lastWrite.slot, "a");
        assert.deepEqual(out.keys, [], "removed once written back");
      }));

    test("writes are debounced, written within four delays under a stream of changes, and at once when hidden", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-debounce");
          const store = await T.open({ name: "t-debounce", storage: "localstorage", debounceMs: 200 });
          const start = performance.now();
          let firstWrite;
          // A change every 50 ms for 1.5 s: the trailing delay never elapses.
          for (let i = 1; i <= 30; i++) {
            store.set({ n: i });
            await T.sleep(50);
            if (firstWrite === undefined && store.diagnostics().lastWrite) firstWrite = performance.now() - start;
          }
          await store.flush();
          const r = { firstWrite, stored: localStorage.getItem("sessile:t-debounce:head") };
          await store.close();
          // With a long delay, hiding the page writes at once.
          const slow = await T.open({ name: "t-debounce", storage: "localstorage", debounceMs: 60000 });
          // Restored from the first store's write: the hidden page's write is the next generation.
          const restored = slow.diagnostics().lastWrite?.generation ?? -1;
          slow.set({ n: "hidden" });
          r.before = slow.diagnostics().unsaved;
          Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
          document.dispatchEvent(new Event("visibilitychange"));
          await T.sleep(100);
          delete document.visibilityState;
          r.after = slow.diagnostics().unsaved;
          r.written = (slow.diagnostics().lastWrite?.generation ?? -1) > restored && restored > 0;
          await slow.close();
          return r;
        });
        assert.ok(out.firstWrite !== undefined && out.firstWrite <= 1100, `first write after ${out.firstWrite} ms`);
        assert.equal(out.stored, "30");
        assert.equal(out.before, true);
        assert.equal(out.after, false, "written when the page was hidden, not 60 s later");
        assert.equal(out.written, true);
      }));

    test("a failed write is tried again after a backoff, without another change, and nothing is dropped", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(async () => {
          await T.fresh("t-backoff");
          const store = await T.open({ name: "t-backoff", storage: "localstorage", debounceMs: 20, compressAbove: 1e8 });
          // Fill localStorage until it refuses, then ask for a write that cannot fit.
          const junk = [];
          for (let size = 1 << 20; size >= 1024; ) {
            try {
              localStorage.setItem(`t-junk-${junk.length}`, "j".repeat(size));
              junk.push(`t-junk-${junk.length}`);
            } catch {
              size >>= 1;
            }
          }
          store.set({ blob: "b".repeat(64 * 1024) });
          await T.sleep(300);
          // Not stored yet: unsaved, or a retry under way (a retry after the
          // short first backoff may already be writing).
          const notStored = () => store.diagnostics().storedVersion < store.diagnostics().version;
          const r = { errors: store.of("error_occurred").map((e) => [e.during, e.error.code]), unsaved: notStored() };
          for (const k of junk) localStorage.removeItem(k);
          // Backoff after the failures so far is well under a second here,
          // longer on a loaded machine.
          const end = Date.now() + 15000;
          // Done when nothing is unsaved and no write is under way (a retry
          // that has taken the state but not finished is neither).
          const busy = () => notStored() || store.diagnostics().writing;
          while (busy() && Date.now() < end) await T.sleep(50);
          r.d = store.diagnostics();
          r.written = r.d.storedVersion === r.d.version && r.d.lastError === null;
          r.reportedOnce = store.of("error_occurred").length;
          await store.close();
          const again = await T.open({ name: "t-backoff", storage: "localstorage" });
          r.restored = again.state.blob.length;
          await again.close();
          return r;
        });
        assert.deepEqual(out.errors, [["write", "QUOTA_EXCEEDED"]]);
        assert.equal(out.unsaved, true);
        assert.equal(out.written, true, `the timer wrote it once space was free: ${JSON.stringify(out.d)}`);
        assert.equal(out.reportedOnce, 1, "a run of failures is reported once");
        assert.equal(out.restored, 64 * 1024);
      }));

    test("bytes stored the way earlier builds stored them restore (IndexedDB and localStorage)", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await page();
        const out = await tab.evaluate(
          async ({ snap }) => {
            // IndexedDB: database sessile:<ns>, store "slots", keys a / b / head {version}.
            const db = await T.fresh("t-compat-idb");
            await T.idbSet(db, "b", T.bytes(snap));
            await T.idbSet(db, "head", { version: 4 });
            const idb = await T.open({ name: "t-compat-idb", schemaVersion: 1 });
            // localStorage: sessile:<ns>:a / :b as base64, :head as a decimal version.
            await T.fresh("t-compat-ls");
            localStorage.setItem("sessile:t-compat-ls:a", snap);
            localStorage.setItem("sessile:t-compat-ls:head", "4");
            const ls = await T.open({ name: "t-compat-ls", storage: "localstorage", schemaVersion: 1 });
            const r = {
              idb: { state: idb.state, restored: idb.of("state_restored")[0], version: idb.version, backend: idb.diagnostics().backend },
              ls: { state: ls.state, restored: ls.of("state_restored")[0], version: ls.version, backend: ls.diagnostics().backend },
            };
            // The next write continues the stored head in the other slot.
            ls.set({ ...ls.state, step: "cart" });
            await ls.flush();
            r.lsHead = localStorage.getItem("sessile:t-compat-ls:head");
            r.lsB = T.sessile.decodeSnapshot(T.bytes(localStorage.getItem("sessile:t-compat-ls:b"))).state;
            await idb.close();
            await ls.close();
            return r;
          },
          { snap: GOLDEN[1] },
        );
        for (const kind of ["idb", "ls"]) {
          assert.equal(out[kind].restored.outcome, "restored", kind);
          assert.equal(out[kind].restored.schemaVersion, 1, kind);
          assert.equal(out[kind].state.mail, "a@example.com", kind);
          assert.equal(out[kind].version, 4, kind);
        }
        assert.equal(out.idb.restored.from, "b");
        assert.equal(out.idb.backend, "indexeddb");
        assert.equal(out.ls.restored.from, "a");
        assert.equal(out.ls.backend, "localstorage");
        assert.equal(out.lsHead, "5");
        assert.equal(out.lsB.step, "cart");
      }));
  });

  describe(`saveSnapshot / loadSnapshot in ${kind}`, () => {
    const b = { browser: undefined };
    before(async () => {
      b.browser = await launching.get(kind);
    });

    test("a round trip through localStorage, compressed", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await b.browser.newTab(env.server.url);
        await tab.evaluate(install);
        const out = await tab.evaluate(async () => {
          const state = T.checkout(400);
          const info = T.sessile.saveSnapshot("t-roundtrip", state, { stateVersion: 12 });
          const stored = localStorage.getItem("sessile:t-roundtrip");
          const loaded = T.sessile.loadSnapshot("t-roundtrip");
          return {
            info,
            smaller: stored.length < JSON.stringify(state).length,
            decodedHere: T.sessile.decodeSnapshot(T.bytes(stored)).checksum,
            loaded: { ...loaded, state: undefined },
            same: T.text(loaded.state) === T.text(state),
            missing: T.sessile.loadSnapshot("t-missing") === undefined,
          };
        });
        assert.equal(out.info.compressed, true);
        assert.equal(out.info.stateVersion, 12);
        assert.match(out.info.checksum, /^[0-9a-f]{8}$/);
        assert.equal(out.smaller, true, "base64 of the deflated snapshot is smaller than the JSON");
        assert.equal(out.decodedHere, out.info.checksum);
        assert.equal(out.loaded.stateVersion, 12);
        assert.equal(out.loaded.checksum, out.info.checksum);
        assert.equal(out.loaded.rawBytes, out.info.rawBytes);
        assert.equal(out.loaded.storedBytes, out.info.storedBytes);
        assert.equal(out.same, true);
        assert.equal(out.missing, true);
      }));

    test("a corrupted stored value is reported, not returned", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await b.browser.newTab(env.server.url);
        await tab.evaluate(install);
        const out = await tab.evaluate(async () => {
          T.sessile.saveSnapshot("t-corrupt", T.checkout(20));
          const good = localStorage.getItem("sessile:t-corrupt");
          // One base64 character of the payload changed: a different but valid byte.
          const i = good.length >> 1;
          localStorage.setItem("sessile:t-corrupt", good.slice(0, i) + (good[i] === "A" ? "B" : "A") + good.slice(i + 1));
          const r = { flipped: await T.failure(() => T.sessile.loadSnapshot("t-corrupt")) };
          localStorage.setItem("sessile:t-corrupt", "not base64!");
          r.text = await T.failure(() => T.sessile.loadSnapshot("t-corrupt"));
          localStorage.setItem("sessile:t-corrupt", good.slice(0, -8));
          r.cut = await T.failure(() => T.sessile.loadSnapshot("t-corrupt"));
          r.left = localStorage.getItem("sessile:t-corrupt") === good.slice(0, -8);
          r.notSnapshot = await T.failure(() => T.sessile.decodeSnapshot(new TextEncoder().encode('{"step":"cart"}')));
          r.badOption = await T.failure(() => T.sessile.encodeSnapshot({}, { stateVersion: -1 }));
          r.badState = await T.failure(() => T.sessile.encodeSnapshot(10n));
          return r;
        });
        assert.equal(out.flipped, "SessileError:CHECKSUM_MISMATCH");
        assert.equal(out.text, "SessileError:CORRUPT_PAYLOAD");
        assert.equal(out.cut, "SessileError:TRUNCATED");
        assert.equal(out.left, true, "left in place for inspection");
        assert.equal(out.notSnapshot, "SessileError:BAD_MAGIC");
        assert.equal(out.badOption, "SessileError:INVALID_OPTIONS");
        assert.equal(out.badState, "SessileError:INVALID_STATE");
      }));

    test("a quota error keeps the previous value", (t) =>
      scenario(t, b.browser, async () => {
        const tab = await b.browser.newTab(env.server.url);
        await tab.evaluate(install);
        const out = await tab.evaluate(async () => {
          T.sessile.saveSnapshot("t-quota", { step: "cart" }, { stateVersion: 1 });
          let error;
          try {
            // 6 MB stored uncompressed: 8 M base64 characters, over every browser's quota.
            T.sessile.saveSnapshot("t-quota", "x".repeat(6 * 1024 * 1024), { stateVersion: 2, compressAbove: 1e8, maxBytes: 1e7 });
          } catch (e) {
            error = { name: e.name, code: e.code, retryable: e.retryable, isClass: e instanceof Error };
          }
          return { error, kept: T.sessile.loadSnapshot("t-quota").stateVersion };
        });
        assert.deepEqual(out.error, { name: "SessileError", code: "QUOTA_EXCEEDED", retryable: true, isClass: true });
        assert.equal(out.kept, 1);
      }));
  });
}
