// What it costs to pass a session's state across the JavaScript/wasm
// boundary of WasmSession (src/web/session_api/values.rs), in headless
// Chromium after `scripts/build`: a 100 KB checkout state (bench's
// generator, seed 42) read as `session.state` (Rust to JS) and given to
// `session.set` (JS to Rust: the state is checked, compared, stored and
// diffed too, so the difference between two builds is the crossing), on a
// local session in memory. Prints the medians of RUNS (default 200) after 20
// warm-up runs, in ms. docs/PERFORMANCE.md has the figures of each way to
// cross (JSON text, serde-wasm-bindgen).
//
//   node bench/state_crossing.mjs
import path from "node:path";
import { fileURLToPath } from "node:url";
import { blankWww, launchBrowser, startServer } from "../js/test/harness.mjs";
import { generateState } from "./generate-state.mjs";

const RUNS = Number(process.env.RUNS ?? 200);
const state = generateState(100 * 1024, 42);
const server = await startServer(["--www", blankWww()]);
const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}index.html`);
  const out = await page.evaluate(
    async ([state, runs]) => {
      const { openSession } = await import("/js/index.js");
      const s = await openSession({ name: "crossing", initial: {}, storage: "memory", debounceMs: 60_000, maxBytes: 1 << 20 });
      const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
      const time = (f) => {
        for (let i = 0; i < 20; i++) f(i);
        const xs = [];
        for (let i = 0; i < runs; i++) {
          const t = performance.now();
          f(i);
          xs.push(performance.now() - t);
        }
        return median(xs);
      };
      const variants = [0, 1].map((n) => ({ ...state, n }));
      const set = time((i) => s.set(variants[i & 1]));
      const get = time(() => s.state);
      const bytes = new TextEncoder().encode(JSON.stringify(s.state)).length;
      await s.close();
      return { bytes, getMs: get, setMs: set };
    },
    [state, RUNS],
  );
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
  await server.stop();
}
