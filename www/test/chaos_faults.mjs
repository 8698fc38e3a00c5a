// The chaos driver's faults that act inside the page, and how a tab is
// crashed. One init script, installed in every page of a run's browser
// context before the demo's own code, reads two cookies of the context on
// every call, so a fault holds for every tab, across reloads and new tabs,
// from the moment the driver sets the cookie:
//   chaos_quota=1    every localStorage.setItem throws QuotaExceededError,
//                    and every IndexedDB put/add aborts its transaction with
//                    a QuotaExceededError (as Chromium does when the origin is
//                    over its quota); sessionStorage is left alone (its quota
//                    is separate);
//   chaos_ws=blocked every new WebSocket goes to a path that is no WebSocket
//                    endpoint, so its upgrade is refused (an HTTP answer, not
//                    101) as a proxy that blocks WebSockets does; the ones
//                    open when the block starts are closed by closeSockets.
// A crash is CDP's Page.crash: the renderer dies, no pagehide, no unload,
// no last write (page.close() and Target.closeTarget both run pagehide).

/** The cookie names of the faults. */
export const QUOTA_COOKIE = "chaos_quota";
export const WS_COOKIE = "chaos_ws";

/** The init script's source: runs first in every page of the context. */
export const INIT_SCRIPT = `(() => {
  const on = (name, value) => document.cookie.split("; ").includes(name + "=" + value);
  const quotaError = () => new DOMException("The quota has been exceeded (chaos driver).", "QuotaExceededError");
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    if (this === window.localStorage && on("${QUOTA_COOKIE}", "1")) throw quotaError();
    return setItem.call(this, key, value);
  };
  const refused = new WeakSet();
  for (const method of ["put", "add"]) {
    const original = IDBObjectStore.prototype[method];
    IDBObjectStore.prototype[method] = function (...args) {
      if (!on("${QUOTA_COOKIE}", "1")) return original.apply(this, args);
      const tx = this.transaction;
      if (!refused.has(tx)) {
        refused.add(tx);
        Object.defineProperty(tx, "error", { value: quotaError(), configurable: true });
        tx.abort();
      }
      return {};
    };
  }
  const Native = window.WebSocket;
  const open = new Set();
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      const blocked = on("${WS_COOKIE}", "blocked");
      super(blocked ? new URL("/chaos-blocked-websocket", url).toString() : url, protocols);
      open.add(this);
      this.addEventListener("close", () => open.delete(this));
    }
  };
  window.__chaos = {
    closeSockets() {
      let n = 0;
      for (const s of open) if (s.readyState <= 1) { s.close(4001, "blocked (chaos driver)"); n += 1; }
      return n;
    },
  };
})();`;

/** Sets (`on`) or clears a fault cookie for every page of `context` at `origin`. */
export async function setFaultCookie(context, origin, name, value, on) {
  if (on) await context.addCookies([{ name, value, url: origin }]);
  else await context.clearCookies({ name });
}

/**
 * Crashes `page`'s renderer (CDP Page.crash): no pagehide, no unload, no
 * last write. Resolves with the pages of `context` that crashed with it
 * (tabs that shared its process), `page` included.
 */
export async function crashTab(context, page) {
  const crashed = new Set();
  const watchers = context.pages().map(
    (p) => new Promise((resolve) => p.once("crash", () => resolve(crashed.add(p)))),
  );
  const cdp = await context.newCDPSession(page);
  // The answer never comes: the renderer is gone.
  cdp.send("Page.crash").catch(() => {});
  await Promise.race([watchers[context.pages().indexOf(page)], new Promise((r) => setTimeout(r, 5_000))]);
  // Others that shared the process report theirs at about the same time.
  await new Promise((r) => setTimeout(r, 200));
  void watchers;
  return [...crashed];
}
