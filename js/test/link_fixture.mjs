// The network the Rust link's browser tests (tests/web_link.rs, run by
// wasm-pack test) run against: the real sessile-server on a loopback port
// with its own temporary SQLite file (harness.mjs), loopback proxies in
// front of it whose faults a test switches (proxy.mjs: refuse WebSocket
// upgrades, cut sockets, stall answers, the API down), and a small control
// API with CORS so the test page can drive all of it:
//
//   GET    /                          {server}
//   POST   /proxies                   a new proxy: {id, url}
//   GET    /proxies/:id               {mode, openWebSockets, counts}
//   POST   /proxies/:id/mode/:mode    pass | block-websocket | down | stall
//   POST   /proxies/:id/kill-websockets
//   POST   /proxies/:id/freeze-websockets  open ones silent both ways, not closed
//   DELETE /proxies/:id
//   POST   /server/kill               SIGKILL, as a crash
//   POST   /server/start              again on the same port and file
//   GET    /sessions/:id/audit        the session's audit log (admin token)
//
// Run: node js/test/link_fixture.mjs [--url-file PATH]. It prints
// "link fixture: URL" once ready (and writes URL to PATH), and stops the
// server and every proxy on SIGTERM or SIGINT.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { blankWww, startServer } from "./harness.mjs";
import { MODES, startProxy } from "./proxy.mjs";

const ADMIN_TOKEN = randomBytes(16).toString("hex");

const server = await startServer(
  ["--www", blankWww(), "--heartbeat-ms", "1000", "--creates-per-minute-per-ip", "0"],
  { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } },
);
const proxies = new Map();
let nextId = 1;

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, DELETE",
  "access-control-allow-headers": "content-type",
  "access-control-max-age": "600",
};

function answer(res, status, body) {
  res.writeHead(status, { ...CORS, "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** The proxy named in the path, or an answered 404. */
function proxyOf(id, res) {
  const p = proxies.get(id);
  if (!p) answer(res, 404, { error: `no proxy ${id}` });
  return p;
}

async function route(req, res) {
  const { pathname } = new URL(req.url, "http://fixture");
  const parts = pathname.split("/").filter(Boolean);
  const [, b, , d] = parts;
  const is = (method, ...shape) =>
    req.method === method && shape.length === parts.length && shape.every((s, i) => s === "*" || s === parts[i]);
  if (req.method === "OPTIONS") {
    res.writeHead(204, CORS);
    return res.end();
  }
  if (is("GET")) return answer(res, 200, { server: server.url });
  if (is("POST", "proxies")) {
    const proxy = await startProxy(server.url);
    const id = String(nextId++);
    proxies.set(id, proxy);
    return answer(res, 200, { id, url: proxy.url });
  }
  if (is("GET", "proxies", "*")) {
    const p = proxyOf(b, res);
    return p && answer(res, 200, { mode: p.mode, openWebSockets: p.openWebSockets, counts: p.counts });
  }
  if (is("POST", "proxies", "*", "mode", "*")) {
    const p = proxyOf(b, res);
    if (!p) return;
    if (!MODES.includes(d)) return answer(res, 400, { error: `unknown mode ${d}` });
    p.setMode(d);
    return answer(res, 200, { mode: p.mode });
  }
  if (is("POST", "proxies", "*", "kill-websockets")) {
    const p = proxyOf(b, res);
    if (!p) return;
    p.killWebSockets();
    return answer(res, 200, {});
  }
  if (is("POST", "proxies", "*", "freeze-websockets")) {
    const p = proxyOf(b, res);
    if (!p) return;
    p.freezeWebSockets();
    return answer(res, 200, {});
  }
  if (is("DELETE", "proxies", "*")) {
    const p = proxyOf(b, res);
    if (!p) return;
    proxies.delete(b);
    await p.close();
    return answer(res, 200, {});
  }
  if (is("POST", "server", "kill")) {
    await server.stop("SIGKILL");
    return answer(res, 200, { running: server.running });
  }
  if (is("POST", "server", "start")) {
    if (!server.running) await server.start();
    return answer(res, 200, { running: server.running });
  }
  if (is("GET", "sessions", "*", "audit")) {
    const r = await fetch(new URL(`/v1/admin/sessions/${b}/audit`, server.url), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return answer(res, r.status, await r.json());
  }
  return answer(res, 404, { error: `no route ${req.method} ${pathname}` });
}

const control = http.createServer((req, res) => {
  route(req, res).catch((e) => answer(res, 500, { error: String(e?.stack ?? e) }));
});
control.listen(0, "127.0.0.1");
await new Promise((resolve, reject) => control.once("listening", resolve).once("error", reject));
const url = `http://127.0.0.1:${control.address().port}/`;

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  control.close();
  for (const p of proxies.values()) await p.close().catch(() => {});
  await server.stop().catch(() => {});
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const at = process.argv.indexOf("--url-file");
if (at > 0) writeFileSync(process.argv[at + 1], url);
console.log(`link fixture: ${url}`);
