// The buttons that provoke what sessile survives. Each does to the page what
// the real world does: this tab's network to the session API cut (requests
// fail, WebSockets do not open, navigator.onLine false, the offline event),
// a WebSocket closed from under the SDK, a flipped byte in the stored copy,
// a second tab.
import type { Session } from "sessile";
import type { Checkout } from "./checkout";
import { byId } from "./dom";
import type { EventLog } from "./log";

const NAMESPACE = "demo-checkout";

/** The page's WebSockets, so #kill and #go-offline can cut them (see trackSockets). */
const sockets = new Set<WebSocket>();

/**
 * The demo's own network switch for this tab (#go-offline): while it is on,
 * the page's requests to the session API (`/v1/`) fail as they do with no
 * network, its WebSockets close before they open, and `navigator.onLine`
 * reads false, so sessile and the page see the same thing. A reload turns
 * it off; other tabs are not affected.
 */
const network = { cut: false, dropped: new Set<() => void>() };

const isApi = (input: RequestInfo | URL): boolean => {
  const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, location.href);
  return url.origin === location.origin && url.pathname.startsWith("/v1/");
};

/** The error a request gets from a network that is gone (what `fetch` rejects with offline). */
const noNetwork = () => new TypeError("Failed to fetch: this tab is offline (the demo's Go offline)");

/**
 * Makes every WebSocket the page opens from now on known to #kill and
 * #go-offline, and puts the page's session API requests and
 * `navigator.onLine` behind the demo's network switch. Call it before the
 * session opens; sessile itself is not told anything.
 */
export function trackSockets(): void {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      // No network: it fails to open (error, then close 1006), as it would offline.
      if (network.cut) this.close();
      sockets.add(this);
      this.addEventListener("close", () => sockets.delete(this));
    }
  };
  const nativeFetch = window.fetch.bind(window);
  window.fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    if (!isApi(input)) return nativeFetch(input, init);
    if (network.cut) return Promise.reject(noNetwork());
    return new Promise<Response>((resolve, reject) => {
      // Going offline fails the requests under way (a long poll, an op in flight): their answers are lost.
      const drop = () => reject(noNetwork());
      network.dropped.add(drop);
      nativeFetch(input, init)
        .then(resolve, reject)
        .finally(() => network.dropped.delete(drop));
    });
  };
  const onLine = Object.getOwnPropertyDescriptor(Navigator.prototype, "onLine");
  Object.defineProperty(Navigator.prototype, "onLine", {
    configurable: true,
    enumerable: true,
    get(this: Navigator): boolean {
      return !network.cut && (onLine?.get?.call(this) ?? true);
    },
  });
}

/** Turns the demo's network switch for this tab: offline cuts the session API, then the browser's event says so. */
function setOffline(offline: boolean): void {
  network.cut = offline;
  dispatchEvent(new Event(offline ? "offline" : "online"));
  if (!offline) return;
  for (const drop of [...network.dropped]) drop();
  network.dropped.clear();
  // What sessile did not close on the event goes as a lost network takes it.
  for (const s of sockets) if (s.readyState === WebSocket.OPEN || s.readyState === WebSocket.CONNECTING) s.close();
}

/** Wires #go-offline, #kill, #corrupt and #second-tab. */
export function wireChaos(session: Session<Checkout>, log: EventLog): void {
  const offline = byId<HTMLButtonElement>("go-offline");
  offline.onclick = () => {
    // This tab loses the session API (requests fail, WebSockets do not open,
    // navigator.onLine reads false), and the browser's event says so.
    const going = offline.dataset.offline !== "true";
    offline.dataset.offline = String(going);
    offline.textContent = going ? "Go online" : "Go offline";
    document.body.dataset.offline = String(going);
    log.add("demo", going ? "this tab went offline: the session API is cut (offline event)" : "this tab is back online (online event)");
    setOffline(going);
  };
  byId("kill").onclick = () => {
    // Closed from under sessile, as a proxy or a load balancer would: it has to notice and reconnect.
    const open = [...sockets].filter((s) => s.readyState === WebSocket.OPEN);
    for (const s of open) s.close(4000, "killed by the demo");
    log.add("demo", open.length ? `killed the WebSocket (${open.length} open)` : "no WebSocket is open (the link is on HTTP or down)");
  };
  byId("corrupt").onclick = () => {
    void corruptNewest(session).then(
      (what) => {
        log.add("demo", `${what}; reloading`);
        location.reload();
      },
      (e: unknown) => log.add("demo", `could not corrupt the stored copy: ${String(e)}`),
    );
  };
  byId("second-tab").onclick = () => {
    log.add("demo", "opened a second tab");
    // noopener: a new tab as a shopper opens one, without a copy of this tab's sessionStorage.
    window.open(location.pathname + location.search, "_blank", "noopener");
  };
}

/** Flips one byte in the middle of the newest slot, in whichever backend holds it. */
async function corruptNewest(session: Session<Checkout>): Promise<string> {
  await session.flush();
  const d = session.diagnostics();
  const slot = d.lastWrite?.slot;
  if (!slot) throw new Error("nothing is stored yet");
  if (d.backend === "localstorage") {
    const key = `sessile:${NAMESPACE}:${slot}`;
    const text = localStorage.getItem(key) ?? "";
    const i = Math.floor(text.length / 2);
    localStorage.setItem(key, text.slice(0, i) + (text[i] === "A" ? "B" : "A") + text.slice(i + 1));
    return `flipped a character of slot ${slot} in localStorage (v${d.storedVersion})`;
  }
  if (d.backend !== "indexeddb") throw new Error(`the ${d.backend} backend keeps nothing across a reload`);
  const db = await request(indexedDB.open(`sessile:${NAMESPACE}`));
  try {
    const tx = db.transaction("slots", "readwrite");
    const slots = tx.objectStore("slots");
    const committed = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error);
    });
    const bytes = new Uint8Array((await request(slots.get(slot))) as Uint8Array);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
    slots.put(bytes, slot);
    // The reload that follows must find the flipped bit on disk.
    await committed;
    return `flipped a bit of slot ${slot} in IndexedDB (v${d.storedVersion})`;
  } finally {
    db.close();
  }
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
