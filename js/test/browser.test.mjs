// The JS package in a real browser, against the real server (a blank page
// of its origin): errors arrive as SessileError with stable codes, a wasm
// file that cannot load is reported and retried, and a snapshot encoded in
// the browser is verified by the server with the same Rust decoder.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { blankWww, launchBrowser, openPage, startServer } from "./harness.mjs";

const env = { server: undefined, browser: undefined };

before(async () => {
  env.server = await startServer(["--www", blankWww()]);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
});

/** A blank page of the server's origin, where /js/index.js is the package. */
const blank = () => openPage(env.browser, env.server.url);

describe("snapshots between the browser and the server", () => {
  test("a large state encoded in the browser is compressed, and the server verifies it with the same figures", async () => {
    const { page, errors } = await blank();
    const out = await page.evaluate(async () => {
      const { loadSessile } = await import("/js/index.js");
      const s = await loadSessile();
      const items = Array.from({ length: 200 }, (_, i) => ({ sku: `SKU-${i}`, qty: 1 + (i % 3), note: "gift wrap, no invoice in the box" }));
      const small = s.encodeSnapshot({ step: "cart" });
      const large = s.encodeSnapshot({ step: "checkout", items }, { stateVersion: 7 });
      const res = await fetch("/v1/snapshots/verify", { method: "POST", body: large });
      return {
        small: s.decodeSnapshot(small),
        large: s.decodeSnapshot(large),
        sameItems: JSON.stringify(s.decodeSnapshot(large).state.items) === JSON.stringify(items),
        http: res.status,
        server: await res.json(),
      };
    });
    assert.equal(out.small.compressed, false);
    assert.equal(out.small.storedBytes, out.small.rawBytes + 40, "a 40-byte header on the raw JSON");
    assert.equal(out.large.compressed, true);
    assert.ok(out.large.rawBytes > 10 * 1024, `${out.large.rawBytes} B is above the threshold`);
    assert.ok(out.large.storedBytes < out.large.rawBytes / 2, `${out.large.storedBytes} B stored of ${out.large.rawBytes}`);
    assert.equal(out.sameItems, true);
    assert.equal(out.http, 200);
    assert.equal(out.server.ok, true);
    assert.equal(out.server.stateVersion, 7);
    assert.equal(out.server.rawBytes, out.large.rawBytes);
    assert.equal(out.server.storedBytes, out.large.storedBytes);
    assert.equal(out.server.checksum, out.large.checksum);
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe("package API in the browser", () => {
  test("errors are SessileError instances with stable codes", async () => {
    const { page } = await blank();
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
    // A page that has not loaded sessile yet.
    const { page } = await blank();
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
