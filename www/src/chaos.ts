// The buttons that provoke what sessile survives. Each does to the page what
// the real world does: the browser's offline/online events, a WebSocket
// closed from under the SDK, a flipped byte in the stored copy, a second tab.
import type { Session } from "sessile";
import type { Checkout } from "./checkout";
import { byId } from "./dom";
import type { EventLog } from "./log";

const NAMESPACE = "demo-checkout";

/** The page's WebSockets, so #kill can cut them (see trackSockets). */
const sockets = new Set<WebSocket>();

/**
 * Makes every WebSocket the page opens from now on known to #kill. Call it
 * before the session opens; sessile itself is not told anything.
 */
export function trackSockets(): void {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      sockets.add(this);
      this.addEventListener("close", () => sockets.delete(this));
    }
  };
}

/** Wires #go-offline, #kill, #corrupt and #second-tab. */
export function wireChaos(session: Session<Checkout>, log: EventLog): void {
  const offline = byId<HTMLButtonElement>("go-offline");
  offline.onclick = () => {
    // The same events the browser fires when the network goes; navigator.onLine is not changed.
    const going = offline.dataset.offline !== "true";
    offline.dataset.offline = String(going);
    offline.textContent = going ? "Go online" : "Go offline";
    log.add("demo", going ? "the page went offline (offline event)" : "the page is back online (online event)");
    dispatchEvent(new Event(going ? "offline" : "online"));
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
