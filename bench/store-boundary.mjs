// What `openStore`'s JS boundary costs a page, after `scripts/build`: in
// headless Chromium (cross-origin isolated, 5 µs timers) against the real
// server, a store of the 100 KB checkout fixture (tests/fixtures/v1/
// checkout-100k.json) in memory, so only the boundary and the engine are
// timed, not storage: `set` (the state to JSON text and into the module, the
// engine's size check), `state` right after (the object set, kept), and the
// first `state` of a store that restored a 100 KB copy from localStorage
// (JSON text out of the module, `JSON.parse`). Prints medians
// (docs/PERFORMANCE.md, "The JS boundary").
//
//   node bench/store-boundary.mjs        RUNS overrides 101
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { blankWww, launchBrowser, startServer } from "../js/test/harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixture = readFileSync(path.join(ROOT, "tests/fixtures/v1/checkout-100k.json"), "utf8");
const runs = Number(process.env.RUNS ?? 101);

const server = await startServer(["--www", blankWww()]);
const browser = await launchBrowser();
try {
  const context = await browser.newContext();
  await context.route("**/*", async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers(), "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    await route.fulfill({ response, headers });
  });
  const page = await context.newPage();
  await page.goto(`${server.url}index.html`);
  const out = await page.evaluate(
    async ({ fixture, runs }) => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const base = JSON.parse(fixture);
      const store = await sessile.openStore({ name: "bench-boundary", storage: "memory", initial: null, debounceMs: 60000 });
      const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
      const set = [];
      const cachedRead = [];
      for (let i = 0; i < runs; i++) {
        // A new object each time, as a page's update makes one.
        const state = { ...base, n: i };
        let t = performance.now();
        store.set(state);
        set.push(performance.now() - t);
        t = performance.now();
        const same = store.state;
        cachedRead.push(performance.now() - t);
        if (same !== state) throw new Error("state is not the object set");
      }
      // A restored 100 KB state read once: open a second store over a copy in localStorage.
      const ls = await sessile.openStore({ name: "bench-boundary-ls", storage: "localstorage", initial: null });
      ls.set(base);
      await ls.flush();
      await ls.close();
      const restoreRead = [];
      for (let i = 0; i < Math.min(runs, 31); i++) {
        const again = await sessile.openStore({ name: "bench-boundary-ls", storage: "localstorage", initial: null });
        const t = performance.now();
        const s = again.state;
        restoreRead.push(performance.now() - t);
        if (JSON.stringify(s) !== JSON.stringify(base)) throw new Error("restored state differs");
        await again.close();
      }
      await store.close();
      return { set: median(set), cachedRead: median(cachedRead), restoreRead: median(restoreRead), bytes: fixture.length };
    },
    { fixture, runs },
  );
  assert.ok(out.set > 0);
  console.log(`store boundary, ${out.bytes} B state, Chromium ${browser.version()}, medians of ${runs}:`);
  console.log(`  set(state)                         ${out.set.toFixed(3)} ms`);
  console.log(`  state, the object set (cached)     ${out.cachedRead.toFixed(3)} ms`);
  console.log(`  state of a restored 100 KB copy    ${out.restoreRead.toFixed(3)} ms`);
} finally {
  await browser.close();
  await server.stop();
}
