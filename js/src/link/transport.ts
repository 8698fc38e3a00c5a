/**
 * The two transports the link drives: one WebSocket carrying protocol frames
 * both ways, and the HTTP fallback, which maps the same frames onto the
 * server's HTTP API (docs/PROTOCOL.md): `hello` and pushes through the
 * `changes` long-poll, ops through POST, `ping` answered when the next
 * request completes. Both report to the same three callbacks and go silent
 * after `close()`, so nothing leaks from one connection to the next.
 */

/** What a transport reports. */
export interface TransportSink {
  /** The transport is open: the link may send `hello`. */
  connected(): void;
  /** One inbound protocol frame (JSON text). */
  frame(text: string): void;
  /** The transport closed or failed to open (reported once). */
  closed(): void;
}

/** One connection of either kind. */
export interface Transport {
  /** Sends one outbound protocol frame. */
  send(frame: string): void;
  /** Closes and drops every listener; reports nothing after this. */
  close(): void;
}

/** Where the server is and who the client is. */
export interface Endpoint {
  /** Base URL of the HTTP API, e.g. `https://shop.example/sessile`. */
  http: string;
  /** URL of the WebSocket endpoint, e.g. `wss://shop.example/sessile/v1/ws`. */
  ws: string;
  /** Server session id. */
  session: string;
  /** Server session token (`Authorization: Bearer`). */
  token: string;
  /** This tab's client id. */
  client: string;
}

/** Opens a WebSocket to `endpoint.ws`. */
export function openWebSocket(endpoint: Endpoint, sink: TransportSink): Transport {
  let done = false;
  const ws = new WebSocket(endpoint.ws);
  const finish = () => {
    if (done) return;
    done = true;
    detach();
    sink.closed();
  };
  const onOpen = () => !done && sink.connected();
  const onMessage = (e: MessageEvent) => !done && typeof e.data === "string" && sink.frame(e.data);
  const detach = () => {
    ws.removeEventListener("open", onOpen);
    ws.removeEventListener("message", onMessage);
    ws.removeEventListener("close", finish);
    ws.removeEventListener("error", finish);
  };
  ws.addEventListener("open", onOpen);
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", finish);
  ws.addEventListener("error", finish);
  return {
    send(frame) {
      if (!done && ws.readyState === WebSocket.OPEN) ws.send(frame);
    },
    close() {
      if (done) return;
      done = true;
      detach();
      try {
        ws.close(1000, "bye");
      } catch {
        // Closing a socket that never opened can throw in old engines; it is gone either way.
      }
    },
  };
}

/**
 * The HTTP fallback. Ops are POSTed one at a time in order (requests that
 * overtake each other would reach the server out of sequence); the long-poll
 * runs after `hello` until `close()`; a network failure of any request
 * closes the transport so the link backs off and retries.
 */
export function openHttp(endpoint: Endpoint, sink: TransportSink, longPollMs: number): Transport {
  let done = false;
  const abort = new AbortController();
  const posts: string[] = [];
  let posting = false;
  let pendingPing: number | undefined;
  let polling = false;
  let since = 0;
  const base = endpoint.http.replace(/\/+$/, "");
  const sessionUrl = `${base}/v1/sessions/${endpoint.session}`;

  const fail = () => {
    if (done) return;
    done = true;
    abort.abort();
    sink.closed();
  };

  /** One request; the body of its answer (an error frame on 4xx/5xx), or undefined when the network failed. */
  const request = async (url: string, init: RequestInit = {}): Promise<string | undefined> => {
    try {
      const res = await fetch(url, {
        ...init,
        signal: abort.signal,
        cache: "no-store",
        headers: { authorization: `Bearer ${endpoint.token}`, "content-type": "application/json" },
      });
      const text = await res.text();
      if (done) return undefined;
      if (res.status >= 500 && !text.startsWith("{")) {
        fail();
        return undefined;
      }
      answerPing();
      return text;
    } catch {
      fail();
      return undefined;
    }
  };

  const answerPing = () => {
    if (pendingPing === undefined || done) return;
    const ts = pendingPing;
    pendingPing = undefined;
    sink.frame(JSON.stringify({ type: "pong", ts, serverTs: Date.now() }));
  };

  /** A long-poll's `welcome` fed to a connected link as the `patch` frames it carries. */
  const deliverChanges = (text: string) => {
    let msg: { type?: string; version?: number; catchUp?: { kind: string; patches?: object[] } };
    try {
      msg = JSON.parse(text);
    } catch {
      sink.frame(text); // the link reports PROTOCOL_ERROR
      return;
    }
    if (msg.type !== "welcome") {
      sink.frame(text); // an error frame: the link decides (auth, terminal, retry)
      return;
    }
    const kind = msg.catchUp?.kind;
    if (kind === "patches") {
      for (const p of msg.catchUp?.patches ?? []) sink.frame(JSON.stringify({ type: "patch", ...p }));
    } else if (kind === "snapshot") {
      // The log no longer reaches back: a new handshake fetches the snapshot.
      fail();
      return;
    }
    if (typeof msg.version === "number") since = Math.max(since, msg.version);
  };

  const poll = async () => {
    if (polling) return;
    polling = true;
    while (!done) {
      const url = `${sessionUrl}/changes?since=${since}&waitMs=${longPollMs}&client=${endpoint.client}`;
      const text = await request(url);
      if (text === undefined || done) break;
      deliverChanges(text);
    }
    polling = false;
  };

  const pump = async () => {
    if (posting) return;
    posting = true;
    while (!done && posts.length > 0) {
      const frame = posts.shift() as string;
      const text = await request(`${sessionUrl}/ops`, { method: "POST", body: frame });
      if (text === undefined) break;
      sink.frame(text);
    }
    posting = false;
  };

  const hello = async (frame: string) => {
    const h = JSON.parse(frame) as { haveVersion: number };
    since = h.haveVersion;
    const text = await request(`${sessionUrl}/changes?since=${since}&waitMs=0&client=${endpoint.client}`);
    if (text === undefined) return;
    try {
      const w = JSON.parse(text) as { type?: string; version?: number };
      if (w.type === "welcome" && typeof w.version === "number") since = w.version;
    } catch {
      // Fed to the link as it is: it reports the malformed frame.
    }
    sink.frame(text);
    if (!done) void poll();
  };

  queueMicrotask(() => !done && sink.connected());
  return {
    send(frame) {
      if (done) return;
      const type = /"type"\s*:\s*"([a-z]+)"/.exec(frame)?.[1];
      switch (type) {
        case "hello":
          void hello(frame);
          break;
        case "op":
          posts.push(frame);
          void pump();
          break;
        case "ping":
          pendingPing = (JSON.parse(frame) as { ts: number }).ts;
          break;
        default:
          // pong and bye have no HTTP counterpart; nothing else is sent on a link.
          break;
      }
    },
    close() {
      if (done) return;
      done = true;
      abort.abort();
    },
  };
}
