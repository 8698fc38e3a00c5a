// openSession to ready (`make bench`, issue 16's new figure): from navigation
// start to the first state of a page whose stored copy holds 100 KB. For
// sessile: the package and its wasm module fetched and instantiated, the
// session opened, the copy restored from IndexedDB (no server). For the JS
// stack: idb-keyval, fflate and the stack's codec fetched, the bytes read,
// checked, inflated and parsed. Each READY_RUNS times (default 15):
//   cold: the HTTP cache (and with it the compiled wasm) cleared before each load
//   warm: loaded again with the cache kept (the server's Last-Modified revalidates)
// The page is served by the real sessile-server; no request is intercepted
// (Playwright's routing would turn the HTTP cache off).
import { launchBrowser, startServer } from "../js/test/harness.mjs";

const RUNS = Number(process.env.READY_RUNS ?? 15);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)] * 10) / 10;
};

async function load(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.readyResult !== undefined, null, { timeout: 30_000 });
  const r = await page.evaluate(() => window.readyResult);
  if (r.error) throw new Error(`${url}: ${r.error}`);
  return r;
}

/** Cold and warm medians for one page; `expectBytes` guards that the state came back whole. */
async function measurePage(context, base, file, expectBytes) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await load(page, `${base}${file}?seed`);
  const cold = [];
  const warm = [];
  let bytes;
  for (let i = 0; i < RUNS; i++) {
    await cdp.send("Network.clearBrowserCache");
    const c = await load(page, `${base}${file}`);
    const w = await load(page, `${base}${file}`);
    cold.push(c.ms);
    warm.push(w.ms);
    bytes ??= c.bytes;
    if (c.bytes !== bytes || w.bytes !== bytes) throw new Error(`${file}: the restored state changed size`);
  }
  if (expectBytes !== undefined && bytes !== expectBytes) throw new Error(`${file}: ${bytes} B restored, ${expectBytes} B stored by the other page`);
  await page.close();
  return { cold_ms: median(cold), warm_ms: median(warm), state_bytes: bytes, runs: RUNS };
}

/** { sessile, js_stack, ratio_cold, ratio_warm } (medians, ms from navigation start). */
export async function runReadyBench(www) {
  const server = await startServer(["--www", www]);
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    const jsStack = await measurePage(context, server.url, "ready-js.html");
    const sessile = await measurePage(context, server.url, "ready-sessile.html", jsStack.state_bytes);
    const r = (a, b) => Math.round((a / b) * 1000) / 1000;
    return { sessile, js_stack: jsStack, ratio_cold: r(sessile.cold_ms, jsStack.cold_ms), ratio_warm: r(sessile.warm_ms, jsStack.warm_ms) };
  } finally {
    await browser.close();
    await server.stop();
  }
}
