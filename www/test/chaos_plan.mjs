// The chaos driver's plans: from a seed, the same list of actions every
// time (a small PRNG, no Math.random). A plan is what a shopper and their
// network do to the demo, in order: clicks (add or remove a product, go to
// checkout, type a field), tabs (open a second one, switch, reload, crash),
// and faults (the page's "Go offline" button, the browser offline, the
// WebSocket blocked or killed, the server SIGKILLed and restarted, the
// storage quota exceeded). Running it is chaos.mjs's job; what the page shows
// can make an action moot there (a remove of a line the tab shows at 0), and
// the run's record says so, but the plan itself depends on the seed only.

/** The products a plan clicks on: few, so that two tabs often touch the same line. */
export const SKUS = ["SK-101", "SK-117", "SK-125"];
/** How often each product is picked (the first one most). */
const SKU_WEIGHTS = [5, 3, 2];
/** The checkout fields a plan types into. */
export const FIELDS = ["email", "name", "city"];
/** Tabs open at once, at most. */
export const MAX_TABS = 3;
/** Actions per run: at least MIN_ACTIONS, fewer than MIN_ACTIONS + SPREAD. */
const MIN_ACTIONS = 6;
const SPREAD = 8;

/** mulberry32: a 32-bit seeded generator, uniform in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks a key of `weights` ({ key: weight }, weights ≥ 0) with `random`. */
function pick(random, weights) {
  const entries = Object.entries(weights).filter(([, w]) => w > 0);
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let r = random() * total;
  for (const [key, w] of entries) {
    r -= w;
    if (r < 0) return key;
  }
  return entries[entries.length - 1][0];
}

const pickSku = (random) => SKUS[Number(pick(random, Object.fromEntries(SKU_WEIGHTS.map((w, i) => [i, w]))))];

/**
 * The plan of run `seed`: `{ seed, actions }`. Each action is `{ kind, ... }`:
 *   add {sku} · remove {sku} · checkout · type {field, value}   clicks in the active tab
 *   open {via: "button" | "url"} · switch {to} · reload · crash   tabs
 *   page-offline (the active tab's "Go offline" button, a toggle) · offline {on} (the browser)
 *   block-ws {on} · kill-ws · server-kill · server-start · quota {on} · wait {ms}   faults
 * The generator keeps its own picture of tabs and faults, so every action
 * makes sense when it comes (no remove of a line never added, no second
 * server-kill while it is down, a new tab after the last one crashed).
 * Its weights favour what loses clicks when sessile is wrong: a tab with
 * changes it cannot send while another tab opens and clicks the same line.
 */
export function planFor(seed) {
  const random = prng(seed);
  const count = MIN_ACTIONS + Math.floor(random() * SPREAD);
  const s = {
    tabs: [{ offline: false, unsent: new Set() }],
    active: 0,
    offline: false,
    blocked: false,
    quota: false,
    down: false,
    cart: Object.fromEntries(SKUS.map((k) => [k, 0])),
    phase: "cart",
    typed: 0,
  };
  const actions = [];
  const push = (a) => actions.push(a);
  while (actions.length < count) {
    if (s.tabs.length === 0) {
      // The last tab crashed: the shopper comes back to the shop.
      push({ kind: "open", via: "url" });
      s.tabs.push({ offline: false, unsent: new Set() });
      s.active = 0;
      continue;
    }
    const tab = s.tabs[s.active];
    const cannotSend = tab.offline || s.offline || s.down;
    // Lines other tabs changed but could not send yet.
    const elsewhere = [...new Set(s.tabs.filter((t) => t !== tab).flatMap((t) => [...t.unsent]))];
    const waiting = s.tabs.some((t) => t.unsent.size > 0);
    const items = Object.values(s.cart).reduce((a, b) => a + b, 0);
    const weights = {
      add: s.phase === "cart" ? 30 : 3,
      remove: s.phase === "cart" && items > 0 ? 7 : 0,
      checkout: s.phase === "cart" && items > 0 && actions.length > count / 2 ? 4 : 0,
      type: s.phase === "checkout" ? 25 : 0,
      // A tab with unsent changes makes a second tab the interesting move.
      open: s.tabs.length < MAX_TABS ? (waiting ? 40 : 7) : 0,
      switch: s.tabs.length > 1 ? (waiting ? 14 : 8) : 0,
      reload: 6,
      crash: 3,
      "page-offline": tab.offline ? 5 : 12,
      offline: s.offline ? 8 : 3,
      "block-ws": s.blocked ? 6 : 3,
      "kill-ws": 2,
      "server-kill": s.down ? 0 : 3,
      "server-start": s.down ? 12 : 0,
      quota: s.quota ? 8 : 3,
      wait: 4,
    };
    const kind = pick(random, weights);
    switch (kind) {
      case "add": {
        // Often the very line another tab has not sent yet.
        const sku = elsewhere.length && random() < 0.75 ? elsewhere[Math.floor(random() * elsewhere.length)] : pickSku(random);
        push({ kind, sku });
        s.cart[sku] += 1;
        if (cannotSend) tab.unsent.add(sku);
        break;
      }
      case "remove": {
        const held = SKUS.filter((k) => s.cart[k] > 0);
        const sku = held[Math.floor(random() * held.length)];
        push({ kind, sku });
        s.cart[sku] -= 1;
        if (cannotSend) tab.unsent.add(sku);
        break;
      }
      case "checkout":
        push({ kind });
        s.phase = "checkout";
        break;
      case "type": {
        const field = FIELDS[Math.floor(random() * FIELDS.length)];
        s.typed += 1;
        const value = field === "email" ? `shopper${seed}.${s.typed}@example.org` : `${field} ${seed}.${s.typed}`;
        push({ kind, field, value });
        if (cannotSend) tab.unsent.add(field);
        break;
      }
      case "open": {
        push({ kind, via: random() < 0.6 ? "button" : "url" });
        s.tabs.push({ offline: false, unsent: new Set() });
        s.active = s.tabs.length - 1;
        break;
      }
      case "switch": {
        const others = s.tabs.map((_, i) => i).filter((i) => i !== s.active);
        s.active = others[Math.floor(random() * others.length)];
        push({ kind, to: s.active });
        break;
      }
      case "reload":
        push({ kind });
        // A reload forgets the page's own "offline" (the button is a page toggle).
        tab.offline = false;
        break;
      case "crash":
        push({ kind });
        s.tabs.splice(s.active, 1);
        s.active = Math.max(0, s.active - 1);
        break;
      case "page-offline":
        push({ kind });
        tab.offline = !tab.offline;
        if (!tab.offline && !s.offline && !s.down) tab.unsent.clear();
        break;
      case "offline":
        s.offline = !s.offline;
        push({ kind, on: s.offline });
        if (!s.offline && !s.down) s.tabs.filter((t) => !t.offline).forEach((t) => t.unsent.clear());
        break;
      case "block-ws":
        s.blocked = !s.blocked;
        push({ kind, on: s.blocked });
        break;
      case "kill-ws":
        push({ kind });
        break;
      case "server-kill":
        push({ kind });
        s.down = true;
        break;
      case "server-start":
        push({ kind });
        s.down = false;
        if (!s.offline) s.tabs.filter((t) => !t.offline).forEach((t) => t.unsent.clear());
        break;
      case "quota":
        s.quota = !s.quota;
        push({ kind, on: s.quota });
        break;
      case "wait":
        push({ kind, ms: 200 + Math.floor(random() * 1300) });
        break;
    }
  }
  return { seed, actions };
}

/** The kinds that are faults (a run with one of them and an exact end counts as "recovered"). */
export const FAULTS = new Set(["reload", "crash", "page-offline", "offline", "block-ws", "kill-ws", "server-kill", "quota"]);

/** One line per action, for logs and reports: "3 add SK-101", "7 offline on". */
export function describe(action) {
  const { kind, ...rest } = action;
  const args = Object.values(rest).map((v) => (typeof v === "boolean" ? (v ? "on" : "off") : String(v)));
  return [kind, ...args].join(" ");
}

/**
 * Whether a plan contains the two-tab case: a tab adds a line while
 * it cannot send (its "Go offline" pressed), then a tab opened after that
 * adds the same line. A static check on the plan, for the driver's summary.
 */
export function hasTwoTabCase({ actions }) {
  let tabs = [{ offline: false, pending: new Set() }];
  let active = 0;
  for (const a of actions) {
    const tab = tabs[active];
    if (a.kind === "page-offline" && tab) {
      tab.offline = !tab.offline;
      if (!tab.offline) tab.pending.clear();
    } else if (a.kind === "add" && tab) {
      if (tab.offline) tab.pending.add(a.sku);
      if (tab.openedAfter?.has(a.sku)) return true;
    } else if (a.kind === "open") {
      const waiting = new Set(tabs.flatMap((t) => [...t.pending]));
      tabs.push({ offline: false, pending: new Set(), openedAfter: waiting });
      active = tabs.length - 1;
    } else if (a.kind === "switch") active = a.to;
    else if (a.kind === "reload" && tab) {
      // A reloaded tab restores and fetches anew, as an opened one does.
      tab.offline = false;
      tab.openedAfter = new Set(tabs.filter((t) => t !== tab).flatMap((t) => [...t.pending]));
    }
    else if (a.kind === "crash") {
      tabs.splice(active, 1);
      active = Math.max(0, active - 1);
    }
  }
  return false;
}
