// A loopback HTTP proxy in front of sessile-server for the browser tests:
// pages load from the proxy's origin and reach the session API through it,
// while the test switches what the network does to that API at run time.
// The Host header goes through unchanged, so the server's same-origin check
// sees the proxy's origin on both sides and needs no --allow-origin.
//
// Modes act on the session API (paths under /v1/, WebSocket upgrades); the
// page's own files (/, /js/, /pkg/) always go through, as a shop's pages
// come from its own server, so a page can be reloaded while the API is away.
//   pass             forwards requests and WebSocket upgrades;
//   block-websocket  answers every Upgrade with 403, as a corporate proxy
//                    does, and drops the WebSockets open when it is set;
//                    plain HTTP still goes through;
//   down             drops the open WebSockets and API requests, and every
//                    new API request or upgrade loses its connection (the
//                    server unreachable);
//   stall            requests and frames still reach the server but its
//                    answers never come back (an ack lost on the way); what
//                    was stalled is dropped when the mode changes again;
//   slow-websocket   holds every Upgrade for SLOW_UPGRADE_MS before passing
//                    it on (a WebSocket slow to open); plain HTTP goes
//                    through at once.
// killWebSockets() drops the open WebSockets without a close frame.
// freezeWebSockets() leaves the open WebSockets open but silent both ways,
// forever (a socket that died while the page was in the back/forward
// cache, with no close reaching the page); new ones pass.
import http from "node:http";
import net from "node:net";

/** The modes `setMode` accepts. */
export const MODES = ["pass", "block-websocket", "down", "stall", "slow-websocket"];

/** How long `slow-websocket` holds an Upgrade, ms. */
export const SLOW_UPGRADE_MS = 1200;

/** Headers of one hop that must not be copied to the next. */
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"];

const withoutHopByHop = (headers) => {
  const copy = { ...headers };
  for (const h of HOP_BY_HOP) delete copy[h];
  return copy;
};

const isApi = (url) => url.startsWith("/v1/");

/**
 * Starts a proxy on a free loopback port in front of `target` (the server's
 * URL). Resolves with { url, origin, port, mode, counts, openWebSockets,
 * setMode(mode), killWebSockets(), close() }. `counts` tells how many
 * requests and upgrades went through, upgrades were refused, API requests
 * had their connection dropped and answers were stalled.
 */
export async function startProxy(target) {
  const upstream = new URL(target);
  const upHost = upstream.hostname;
  const upPort = Number(upstream.port);
  const sockets = new Set();
  const webSockets = new Set();
  const apiRequests = new Set();
  const counts = { requests: 0, badGateway: 0, upgrades: 0, refusedUpgrades: 0, slowUpgrades: 0, dropped: 0, stalled: 0 };
  let mode = "pass";

  const web = http.createServer();
  web.on("clientError", (_e, socket) => socket.destroy());

  web.on("request", (req, res) => {
    const api = isApi(req.url);
    if (api && mode === "down") {
      counts.dropped += 1;
      return req.socket.destroy();
    }
    counts.requests += 1;
    const forward = http.request(
      { host: upHost, port: upPort, method: req.method, path: req.url, headers: withoutHopByHop(req.headers), agent: false },
      (answer) => {
        if (api && mode === "stall") {
          counts.stalled += 1;
          return answer.resume();
        }
        res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers));
        answer.pipe(res);
        answer.on("error", () => res.destroy());
      },
    );
    forward.on("error", () => {
      if (res.headersSent) return res.destroy();
      counts.badGateway += 1;
      res.writeHead(502, { "content-type": "text/plain", connection: "close" }).end("bad gateway");
    });
    const entry = { res, forward };
    if (api) apiRequests.add(entry);
    // A request the page gave up on (or dropped by a mode change) is given
    // up upstream too, so a long poll does not linger.
    res.on("close", () => {
      apiRequests.delete(entry);
      forward.destroy();
    });
    req.pipe(forward);
  });

  web.on("upgrade", (req, socket, head) => {
    socket.on("error", () => {});
    if (mode === "down") {
      counts.dropped += 1;
      return socket.destroy();
    }
    if (mode === "block-websocket") {
      counts.refusedUpgrades += 1;
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden");
      return;
    }
    if (mode === "slow-websocket") {
      counts.slowUpgrades += 1;
      setTimeout(() => {
        if (!socket.destroyed) forwardUpgrade(req, socket, head);
      }, SLOW_UPGRADE_MS);
      return;
    }
    forwardUpgrade(req, socket, head);
  });

  /** Passes an Upgrade on to the server and pipes the WebSocket both ways. */
  function forwardUpgrade(req, socket, head) {
    counts.upgrades += 1;
    const server = net.connect(upPort, upHost);
    const pair = { socket, server };
    webSockets.add(pair);
    const drop = () => {
      webSockets.delete(pair);
      socket.destroy();
      server.destroy();
    };
    socket.on("close", drop);
    server.on("error", drop).on("close", drop);
    server.on("connect", () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      server.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) server.write(head);
      socket.on("data", (bytes) => {
        if (!pair.frozen) server.write(bytes);
      });
      server.on("data", (bytes) => {
        if (pair.frozen) return;
        if (mode === "stall") counts.stalled += 1;
        else socket.write(bytes);
      });
    });
  }

  // Connections are accepted here so that all of them can be dropped on close.
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    web.emit("connection", socket);
  });
  tcp.listen(0, "127.0.0.1");
  await new Promise((resolve, reject) => tcp.once("listening", resolve).once("error", reject));
  const port = tcp.address().port;

  const killWebSockets = () => {
    for (const { socket, server } of [...webSockets]) {
      socket.destroy();
      server.destroy();
    }
    webSockets.clear();
  };
  const freezeWebSockets = () => {
    for (const pair of webSockets) pair.frozen = true;
  };
  const dropApiRequests = () => {
    for (const { res, forward } of [...apiRequests]) {
      res.socket?.destroy();
      forward.destroy();
    }
    apiRequests.clear();
  };

  return {
    url: `http://127.0.0.1:${port}/`,
    origin: `http://127.0.0.1:${port}`,
    port,
    counts,
    /** The current mode. */
    get mode() {
      return mode;
    },
    /** How many WebSockets are open through the proxy now. */
    get openWebSockets() {
      return webSockets.size;
    },
    /** Switches to `next` (one of MODES), dropping what it would refuse and what was stalled. */
    setMode(next) {
      if (!MODES.includes(next)) throw new Error(`unknown proxy mode ${next}`);
      const was = mode;
      mode = next;
      if (next === "stall" || next === was) return;
      if (next !== "pass" || was === "stall") killWebSockets();
      if (next === "down" || was === "stall") dropApiRequests();
    },
    /** Drops every open WebSocket without a close frame (both TCP ends closed). */
    killWebSockets,
    /** Silences every open WebSocket both ways without closing it. */
    freezeWebSockets,
    /** Stops listening and drops every connection. */
    async close() {
      killWebSockets();
      for (const s of [...sockets]) s.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    },
  };
}
