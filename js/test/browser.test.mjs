// The JS package in a real browser, against the real server: the demo page
// renders the round-trip figures, errors arrive as SessileError with codes,
// and a snapshot survives a reload in localStorage.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openPage, serverAndBrowser } from "./harness.mjs";

const env = serverAndBrowser({ before, after });

async function demo() {
  const { page, errors } = await openPage(env.browser, env.server.url);
  await page.waitForSelector("body[data-ready]");
  assert.equal(await page.getAttribute("body", "data-ready"), "true", await page.textContent("#status"));
  return { page, errors };
}

const text = (page, id) => page.textContent(`[data-testid="${id}"]`);

describe("demo page", () => {
  test("shows the round-trip figures for a small and a large state", async () => {
    const { page, errors } = await demo();
    assert.equal(await text(page, "small-compressed"), "no");
    assert.match(await text(page, "large-compressed"), /^yes/);
    const raw = Number(await text(page, "large-raw"));
    const stored = Number(await text(page, "large-stored"));
    assert.ok(raw > 10 * 1024, `large state is ${raw} B, above the threshold`);
    assert.ok(stored < raw / 2, `stored ${stored} B is well under raw ${raw} B`);
    assert.equal(Number(await text(page, "small-stored")), Number(await text(page, "small-raw")) + 40);
    assert.match(await text(page, "large-checksum"), /^[0-9a-f]{8}$/);
    assert.equal(await text(page, "large-roundtrip"), "identical");
    assert.equal(await text(page, "large-server"), `ok (${await text(page, "large-checksum")})`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("restores the checkout from localStorage after a reload", async () => {
    const { page } = await demo();
    await page.click("#add-item");
    await page.waitForFunction(() => document.querySelector('[data-testid="large-version"]').textContent !== "1");
    const version = await text(page, "large-version");
    const checksum = await text(page, "large-checksum");
    await page.reload();
    await page.waitForSelector("body[data-ready]");
    assert.equal(await text(page, "large-version"), version);
    assert.equal(await text(page, "large-checksum"), checksum);
    assert.match(await page.textContent("#log"), /restored the checkout from localStorage/);
    await page.close();
  });

  test("a corrupted stored checkout is reported by code and replaced", async () => {
    const { page } = await demo();
    await page.evaluate(() => {
      const key = "sessile:demo-checkout";
      const v = localStorage.getItem(key);
      const i = Math.floor(v.length / 2);
      localStorage.setItem(key, v.slice(0, i) + (v[i] === "A" ? "B" : "A") + v.slice(i + 1));
    });
    await page.reload();
    await page.waitForSelector("body[data-ready]");
    assert.match(await page.textContent("#log"), /stored checkout unreadable: CHECKSUM_MISMATCH/);
    assert.equal(await text(page, "large-roundtrip"), "identical");
    await page.close();
  });
});

describe("package API in the browser", () => {
  test("errors are SessileError instances with stable codes", async () => {
    const { page } = await demo();
    const codes = await page.evaluate(async () => {
      const { loadSessile, SessileError } = await import("/js/index.js");
      const s = await loadSessile();
      const codeOf = (f) => {
        try {
          f();
          return "no error";
        } catch (e) {
          return e instanceof SessileError ? e.code : `not a SessileError: ${e}`;
        }
      };
      const bytes = s.encodeSnapshot({ step: "cart" });
      const flipped = bytes.slice();
      flipped[flipped.length - 1] ^= 1;
      return {
        checksum: codeOf(() => s.decodeSnapshot(flipped)),
        truncated: codeOf(() => s.decodeSnapshot(bytes.slice(0, 20))),
        magic: codeOf(() => s.decodeSnapshot(new TextEncoder().encode('{"step":"cart"}'))),
        tooLarge: codeOf(() => s.encodeSnapshot({ big: "x".repeat(2000) }, { maxBytes: 1000 })),
        invalidState: codeOf(() => s.encodeSnapshot(undefined)),
        invalidOptions: codeOf(() => s.encodeSnapshot({}, { compressionLevel: 99 })),
        decodedStep: s.decodeSnapshot(bytes).state.step,
      };
    });
    assert.deepEqual(codes, {
      checksum: "CHECKSUM_MISMATCH",
      truncated: "TRUNCATED",
      magic: "BAD_MAGIC",
      tooLarge: "STATE_TOO_LARGE",
      invalidState: "INVALID_STATE",
      invalidOptions: "INVALID_OPTIONS",
      decodedStep: "cart",
    });
    await page.close();
  });

  test("a wasm file that cannot load rejects with WASM_LOAD_FAILED, then recovers", async () => {
    // A page that has not loaded sessile yet (same origin, no demo script).
    const { page } = await openPage(env.browser, `${env.server.url}healthz`);
    const result = await page.evaluate(async () => {
      const { loadSessile, SessileError } = await import("/js/index.js");
      let code;
      try {
        await loadSessile("/pkg/missing.wasm");
      } catch (e) {
        code = e instanceof SessileError ? e.code : String(e);
      }
      const s = await loadSessile();
      return { code, works: s.decodeSnapshot(s.encodeSnapshot([1])).state[0] };
    });
    assert.deepEqual(result, { code: "WASM_LOAD_FAILED", works: 1 });
    await page.close();
  });
});
