// openSession's `encryption` option in real Chromium: a CryptoKey and raw
// bytes, the stored bytes sealed (no state, no key in IndexedDB), a reload
// with the key, KEY_REQUIRED and DECRYPT_FAILED as SessileErrors with the
// copy kept, discardLocal (the option and the session's method), rotateKey,
// and a raw key of the wrong length.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { serverAndBrowser } from "./harness.mjs";

const env = serverAndBrowser({ before, after });

describe("encrypted local copies", () => {
  test("sealed at rest, read back with the key, refused without it, rotated", async () => {
    const page = await env.blankPage();
    const out = await page.evaluate(async () => {
      const { loadSessile, SessileError } = await import("/js/index.js");
      const sessile = await loadSessile();
      const raw = new Uint8Array(32).fill(7);
      const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
      const other = new Uint8Array(32).fill(9);
      const base = { name: "enc", initial: { step: "cart" }, storage: "indexeddb", debounceMs: 0, persist: false };
      const codeOf = async (options) => {
        try {
          const s = await sessile.openSession(options);
          await s.close();
          return "opened";
        } catch (e) {
          return `${e instanceof SessileError}:${e.code}`;
        }
      };
      const slots = () =>
        new Promise((resolve) => {
          const req = indexedDB.open("sessile:enc");
          req.onsuccess = () => {
            const tx = req.result.transaction("slots");
            const a = tx.objectStore("slots").get("a");
            const b = tx.objectStore("slots").get("b");
            tx.oncomplete = () => {
              req.result.close();
              resolve([a.result, b.result].filter(Boolean).map((x) => Array.from(x)));
            };
          };
        });
      const has = (bytes, needle) => {
        const text = String.fromCharCode(...bytes);
        return text.includes(needle);
      };
      const r = {};
      let s = await sessile.openSession({ ...base, encryption: { key } });
      s.update({ email: "shopper@example.com" });
      await s.flush();
      await s.close();
      const stored = await slots();
      r.flags = stored.map((b) => b[5]);
      r.plain = stored.some((b) => has(b, "shopper@example.com"));
      r.key = stored.some((b) => has(b, String.fromCharCode(...raw)));
      s = await sessile.openSession({ ...base, encryption: { key: raw } });
      r.reloaded = s.state;
      await s.rotateKey(other);
      try {
        await s.rotateKey(new Uint8Array(16));
      } catch (e) {
        r.shortRotate = e.code;
      }
      await s.close();
      r.oldKey = await codeOf({ ...base, encryption: { key } });
      r.noKey = await codeOf(base);
      r.kept = JSON.stringify(await slots()) === JSON.stringify(await slots()) && (await slots()).length;
      s = await sessile.openSession({ ...base, encryption: { key: other } });
      r.rotated = s.state;
      r.discardLocal = typeof s.discardLocal;
      // On an open session with a key: the stored copies are written again.
      r.discardedWithKey = await s.discardLocal();
      await s.close();
      r.afterDiscard = await codeOf({ ...base, encryption: { key: other } });
      r.short = await codeOf({ ...base, name: "enc-short", encryption: { key: new Uint8Array(16) } });
      r.notAKey = await codeOf({ ...base, name: "enc-bad", encryption: { key: "secret" } });
      s = await sessile.openSession({ ...base, discardLocal: true });
      r.discarded = s.state;
      // Without a key nothing is refused: it resolves at once.
      r.discardedWithoutKey = await s.discardLocal();
      await s.close();
      return r;
    });
    assert.deepEqual(out.flags.map((f) => f & 2), out.flags.map(() => 2), "every slot has the encrypted flag");
    assert.equal(out.plain, false);
    assert.equal(out.key, false);
    assert.deepEqual(out.reloaded, { step: "cart", email: "shopper@example.com" });
    assert.equal(out.shortRotate, "INVALID_OPTIONS");
    assert.equal(out.oldKey, "true:DECRYPT_FAILED");
    assert.equal(out.noKey, "true:KEY_REQUIRED");
    assert.ok(out.kept >= 1);
    assert.deepEqual(out.rotated, { step: "cart", email: "shopper@example.com" });
    assert.equal(out.discardLocal, "function");
    assert.equal(out.discardedWithKey, undefined);
    assert.equal(out.afterDiscard, "opened");
    assert.equal(out.discardedWithoutKey, undefined);
    assert.equal(out.short, "true:INVALID_OPTIONS");
    assert.equal(out.notAKey, "true:INVALID_OPTIONS");
    assert.deepEqual(out.discarded, { step: "cart" });
  });
});
