// openStore in real Chromium pages against the real server: a change made
// right before the tab closes survives (pagehide rescue copy), a reload
// restores the same version, two tabs follow each other, and a real
// IndexedDB quota error (quota lowered through the DevTools protocol) keeps
// the previous state.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { serverAndBrowser } from "./harness.mjs";

const env = serverAndBrowser({ before, after });

/** A page of the server's origin that has not loaded sessile yet. */
async function blankPage(context) {
  const page = await context.newPage();
  await page.goto(`${env.server.url}healthz`);
  return page;
}

/** Opens a store in `page` and keeps it as window.store; returns its first events. */
function openStore(page, options) {
  return page.evaluate(async (options) => {
    const { loadSessile } = await import("/js/index.js");
    const sessile = await loadSessile();
    window.events = [];
    window.store = await sessile.openStore({ ...options, onEvent: (e) => window.events.push(e) });
    return { state: window.store.state, version: window.store.version, events: window.events };
  }, options);
}

describe("openStore in real pages", () => {
  test("a change made just before the tab closes is restored by the next page", async () => {
    const context = await env.browser.newContext();
    const page = await blankPage(context);
    await openStore(page, { name: "e2e-close", initial: { step: "cart" }, debounceMs: 60000 });
    await page.evaluate(() => window.store.set({ step: "success", paid: true }));
    await page.close({ runBeforeUnload: true });
    const next = await blankPage(context);
    const { state, events } = await openStore(next, { name: "e2e-close", initial: { step: "cart" } });
    assert.deepEqual(state, { step: "success", paid: true });
    assert.equal(events[0].outcome, "restored");
    await context.close();
  });

  test("a reload in the middle of checkout restores the same state and version", async () => {
    const context = await env.browser.newContext();
    const page = await blankPage(context);
    await openStore(page, { name: "e2e-reload", initial: { step: "cart", items: [] } });
    const written = await page.evaluate(async () => {
      window.store.set({ step: "cart", items: [{ sku: "A", qty: 1 }] });
      const v = window.store.set({ step: "checkout", items: [{ sku: "A", qty: 2 }] });
      await window.store.flush();
      return { v, d: window.store.diagnostics() };
    });
    assert.equal(written.d.backend, "indexeddb");
    assert.equal(written.d.unsaved, false);
    await page.reload();
    const { state, version } = await openStore(page, { name: "e2e-reload", initial: null });
    assert.deepEqual(state, { step: "checkout", items: [{ sku: "A", qty: 2 }] });
    assert.equal(version, written.v);
    await context.close();
  });

  test("two tabs: a change in one appears in the other, and no older version wins", async () => {
    const context = await env.browser.newContext();
    const [one, two] = [await blankPage(context), await blankPage(context)];
    await openStore(one, { name: "e2e-tabs", initial: { step: "cart" }, debounceMs: 50 });
    await openStore(two, { name: "e2e-tabs", initial: { step: "cart" }, debounceMs: 50 });
    await one.evaluate(() => window.store.set({ step: "checkout" }));
    await two.waitForFunction(() => window.store.state.step === "checkout", null, { timeout: 2000 });
    const seen = await two.evaluate(() => ({ v: window.store.version, ev: window.events.map((e) => e.type) }));
    assert.equal(seen.v, 1);
    assert.ok(seen.ev.includes("session_updated"), JSON.stringify(seen.ev));
    // A third page opened now restores the newest version.
    const three = await blankPage(context);
    const { state } = await openStore(three, { name: "e2e-tabs", initial: null });
    assert.deepEqual(state, { step: "checkout" });
    await context.close();
  });

  test("an IndexedDB quota error keeps the previous slot; the unsaved state survives in the rescue copy", async () => {
    const context = await env.browser.newContext();
    const page = await blankPage(context);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Storage.overrideQuotaForOrigin", {
      origin: new URL(env.server.url).origin,
      quotaSize: 256 * 1024,
    });
    const opts = { name: "e2e-quota", storage: "indexeddb", initial: null, compressAbove: 1e8, maxBytes: 1e7 };
    await openStore(page, opts);
    const result = await page.evaluate(async () => {
      window.store.set({ step: "cart" });
      await window.store.flush();
      // 2 MB that cannot be compressed (compressAbove is huge): over the quota.
      window.store.set({ blob: "q".repeat(2 * 1024 * 1024) });
      let code = "no error";
      try {
        await window.store.flush();
      } catch (e) {
        code = `${e.name}:${e.code}`;
      }
      // What IndexedDB holds now: the slot written before the failure.
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const db = await new Promise((ok) => { const r = indexedDB.open("sessile:e2e-quota"); r.onsuccess = () => ok(r.result); });
      const read = (key) => new Promise((ok) => { const g = db.transaction("slots").objectStore("slots").get(key); g.onsuccess = () => ok(g.result); });
      const [a, b] = [await read("a"), await read("b")];
      db.close();
      return {
        code,
        slotA: a ? sessile.decodeSnapshot(a).state : null,
        slotB: b ? sessile.decodeSnapshot(b).state : null,
        lastError: window.store.diagnostics().lastError?.code,
      };
    });
    assert.equal(result.code, "SessileError:QUOTA_EXCEEDED");
    assert.equal(result.lastError, "QUOTA_EXCEEDED");
    assert.deepEqual(result.slotA, { step: "cart" });
    assert.equal(result.slotB, null, "the failed write left nothing behind");
    // Leaving the page with the state unsaved writes the rescue copy, so the
    // shopper's latest state is not lost either.
    await page.reload();
    const { state, events } = await openStore(page, opts);
    assert.equal(events[0].from, "rescue");
    assert.equal(state.blob.length, 2 * 1024 * 1024);
    await context.close();
  });
});
