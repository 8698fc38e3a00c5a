// The client link's figures from real runs (`make bench`): openSession in
// headless Chromium against the real sessile-server on loopback.
//   ws_connect_ms                 openSession() to connection_established over WebSocket
//   http_fallback_ms              the same with WebSocket refused (default backoff): on HTTP
//   reconnect_after_restart_ms    server killed (SIGKILL) and started again on the same port
//                                 and SQLite file: kill to connection_restored in the page
// Each is measured LINK_RUNS times (default 15); medians and p95 are reported.
// The dead-link detection comes from the simulation (server/tests/link_sim.rs).
import net from "node:net";
import { once } from "node:events";
import { launchBrowser, startServer } from "../js/test/harness.mjs";

const RUNS = Number(process.env.LINK_RUNS ?? 15);

/** A loopback port nobody listens on (bound, then released). */
async function freePort() {
  const srv = net.createServer().listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const summary = (xs) => ({
  median_ms: Math.round(quantile(xs, 0.5) * 10) / 10,
  p95_ms: Math.round(quantile(xs, 0.95) * 10) / 10,
  runs: xs.length,
});

/** In the page: opens a session and resolves with ms from the call to the first `type` event. */
function timeToEvent(page, options, type) {
  return page.evaluate(
    async ({ options, type }) => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const t0 = performance.now();
      let session;
      const at = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${type} in 30 s`)), 30_000);
        sessile
          .openSession({
            ...options,
            onEvent: (e) => {
              if (e.type === type) {
                clearTimeout(timer);
                resolve(performance.now());
              }
            },
          })
          .then((s) => (session = s), reject);
      });
      while (!session) await new Promise((r) => setTimeout(r, 5));
      await session.close();
      return at - t0;
    },
    { options, type },
  );
}

export async function runLinkBench() {
  const server = await startServer();
  const refused = await freePort();
  const origin = server.origin;
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${origin}/healthz`);
    const ws = [];
    const http = [];
    for (let i = 0; i < RUNS; i++) {
      ws.push(await timeToEvent(page, { name: `bench-ws-${i}`, initial: { step: "cart" }, server: { http: origin } }, "connection_established"));
      const fallback = { name: `bench-http-${i}`, initial: { step: "cart" }, server: { http: origin, ws: `ws://127.0.0.1:${refused}/v1/ws` } };
      http.push(await timeToEvent(page, fallback, "connection_established"));
      await page.evaluate(() => sessionStorage.clear());
    }
    // Reconnect after a restart: each run is a shopper whose session is connected (its
    // own link, so backoff left over from the previous restart does not count); the
    // server is killed and started again, and an update made meanwhile must arrive.
    const restart = [];
    for (let i = 0; i < RUNS; i++) {
      await page.evaluate(
        async ({ origin, i }) => {
          const { loadSessile } = await import("/js/index.js");
          const sessile = await loadSessile();
          window.restoredAt = undefined;
          window.benchSession = await sessile.openSession({
            name: `bench-restart-${i}`,
            initial: { step: "cart" },
            server: { http: origin },
            onEvent: (e) => e.type === "connection_restored" && (window.restoredAt ??= Date.now()),
          });
          await new Promise((resolve) => window.benchSession.on("connection_established", resolve));
        },
        { origin, i },
      );
      const killedAt = Date.now();
      await server.restart("SIGKILL");
      await page.evaluate(() => window.benchSession.update({ paid: true }));
      await page.waitForFunction(() => window.restoredAt !== undefined, null, { timeout: 30_000 });
      restart.push((await page.evaluate(() => window.restoredAt)) - killedAt);
      const synced = await page.evaluate(async () => {
        await window.benchSession.flush();
        const d = window.benchSession.diagnostics().link;
        await window.benchSession.close();
        return d.outbox === 0 && d.serverVersion === 2;
      });
      if (!synced) throw new Error("the update made during the restart did not reach the server");
    }
    return {
      ws_connect_ms: summary(ws),
      http_fallback_ms: summary(http),
      reconnect_after_restart_ms: summary(restart),
    };
  } finally {
    await browser.close();
    await server.stop();
  }
}
