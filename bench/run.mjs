// `make bench` after the build: assembles the bench page (bench/page, the
// state generator, fflate and idb-keyval) in bench/out/www, serves it with the
// real sessile-server, runs it once in headless Chromium, checks that every
// restored state equals the saved one, adds the bundle sizes, writes
// bench/out/results.json and prints the table. Exits non-zero on any mismatch.
//
//   node bench/run.mjs            BENCH_RUNS / BENCH_WARMUP override 300 / 50;
//                                 BENCH_ONLY=<part of a case name> runs only those
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser, startServer } from "../js/test/harness.mjs";
import { bundleSizes } from "./bundle-size.mjs";
import { runLinkBench } from "./link.mjs";
import { runReadyBench } from "./ready.mjs";
import { printTable, shapeResults } from "./results.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(ROOT, "bench/out");
const WWW = path.join(OUT, "www");
const config = {
  sizes: { "100kb": 100 * 1024, "10kb": 10 * 1024 },
  runs: Number(process.env.BENCH_RUNS ?? 300),
  warmup: Number(process.env.BENCH_WARMUP ?? 50),
  seed: 42,
  // BENCH_ONLY=session: only the cases whose name contains it (and no link
  // or ready benches), for a look at a few figures on a shared machine.
  only: process.env.BENCH_ONLY ?? "",
};

function assemblePage() {
  rmSync(WWW, { recursive: true, force: true });
  mkdirSync(path.join(WWW, "vendor"), { recursive: true });
  cpSync(path.join(ROOT, "bench/page"), WWW, { recursive: true });
  cpSync(path.join(ROOT, "bench/generate-state.mjs"), path.join(WWW, "generate-state.mjs"));
  cpSync(path.join(ROOT, "node_modules/fflate/esm/browser.js"), path.join(WWW, "vendor/fflate.js"));
  cpSync(path.join(ROOT, "node_modules/idb-keyval/dist/index.js"), path.join(WWW, "vendor/idb-keyval.js"));
}

// The server sets no COOP/COEP headers; the browser context adds them to every
// response it fetches from it, so the page is cross-origin isolated (5 µs timers).
async function isolate(context) {
  await context.route("**/*", async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers(), "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
    await route.fulfill({ response, headers });
  });
}

async function runPage() {
  const server = await startServer(["--www", WWW]);
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    await isolate(context);
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${server.url}index.html`);
    await page.waitForFunction(() => document.title === "sessile bench: ready", null, { timeout: 30_000 });
    const out = await page.evaluate((cfg) => window.runBench(cfg), config);
    assert.deepEqual(errors, [], "the bench page logged errors");
    return { out, chromium: `Chromium ${browser.version()}` };
  } finally {
    await browser.close();
    await server.stop();
  }
}

/** The guard: nothing was measured unless every state came back intact. */
function checkRoundTrips(out) {
  for (const [label, s] of Object.entries(out.sizes)) {
    for (const [name, n] of Object.entries(s.mismatches)) assert.equal(n, 0, `${label} ${name}: ${n} restores differed`);
    for (const [name, restored] of Object.entries(s.restored)) assert.deepStrictEqual(restored, s.saved, `${label} ${name}`);
    assert.ok(Math.abs(s.rawBytes - config.sizes[label]) <= config.sizes[label] * 0.01, `${label} state is ${s.rawBytes} B`);
  }
}

assemblePage();
const started = Date.now();
const { out, chromium } = await runPage();
try {
  checkRoundTrips(out);
} catch (e) {
  console.error(`bench: round-trip check failed, figures discarded: ${e.message}`);
  process.exit(1);
}
const meta = {
  date: new Date().toISOString(), chromium, cores: os.cpus().length, cpu: os.cpus()[0]?.model,
  runs: config.runs, warmup: config.warmup, seconds: Math.round((Date.now() - started) / 1000),
};
const results = shapeResults(out, await bundleSizes(ROOT), meta);
if (config.only) {
  console.log(JSON.stringify(Object.fromEntries(Object.entries(out.sizes).map(([k, s]) => [k, s.medians])), null, 2));
  process.exit(0);
}
results.link = await runLinkBench();
results.ready = await runReadyBench(WWW);
// Written by scripts/bench from the link simulation just before this run.
const simReport = path.join(OUT, "link_sim.json");
if (existsSync(simReport)) {
  const sim = JSON.parse(readFileSync(simReport, "utf8"));
  results.link.dead_detect_intervals = { worst: sim.deadDetectIntervals, heartbeat_ms: sim.heartbeatMs, seeds: sim.seeds, dead_links: sim.deadNoticed };
}
results.targets.reconnect_after_restart_median_max_ms = 1500;
results.targets.reconnect_after_restart_met = results.link.reconnect_after_restart_ms.median_ms <= 1500;
results.targets.dead_detect_intervals_max = 2;
results.targets.dead_detect_met = (results.link.dead_detect_intervals?.worst ?? Infinity) <= 2;
mkdirSync(OUT, { recursive: true });
writeFileSync(path.join(OUT, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
printTable(results);
console.log(`written: bench/out/results.json (${meta.seconds} s in the browser)`);
