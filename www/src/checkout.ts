// The checkout's state, its steps and the one place the session is opened.
import { openSession, type Session } from "sessile";
import { PRODUCTS, OFFERS, type Product } from "./catalog";

/** The funnel's steps, in order: the built-in "checkout" flow of sessile. */
export const STEPS = ["cart", "checkout", "processing", "upsell-1", "upsell-2", "success"] as const;
export type Step = (typeof STEPS)[number];

/** Who pays and where it goes. */
export interface Customer {
  email: string;
  name: string;
  address: string;
  city: string;
  postcode: string;
}

/** The shopper's checkout, as sessile keeps it. */
export interface Checkout {
  step: Step;
  /** Quantity per SKU (a map, so changes to different lines merge). */
  cart: Record<string, number>;
  customer: Customer;
  /** The answer to each offer once given. */
  upsells: Partial<Record<keyof typeof OFFERS, "accepted" | "declined">>;
  /** Set when the (simulated) payment went through. */
  order: { id: string; total: number; paidAt: number } | null;
  /** The prices and texts shown, kept so the shopper pays what they saw. */
  quote: { currency: "EUR"; products: Product[] };
}

export const INITIAL: Checkout = {
  step: "cart",
  cart: {},
  customer: { email: "", name: "", address: "", city: "", postcode: "" },
  upsells: {},
  order: null,
  quote: { currency: "EUR", products: PRODUCTS },
};

/**
 * The page's settings from its URL: `?ttl=60` shortens the session
 * (seconds). Any value is passed on, so a wrong one is refused by sessile
 * (INVALID_OPTIONS, shown on the page) rather than ignored.
 */
export function ttlFromUrl(): number | undefined {
  const ttl = new URLSearchParams(location.search).get("ttl");
  return ttl === null ? undefined : Number(ttl);
}

/**
 * `?wsProbeMs=2000`: after a fallback to HTTP, how soon the WebSocket is
 * tried again (sessile's `wsProbeMs`, 60 s by default), to watch a probe.
 * Passed on as it is, like `ttl`.
 */
export function probeFromUrl(): number | undefined {
  const ms = new URLSearchParams(location.search).get("wsProbeMs");
  return ms === null ? undefined : Number(ms);
}

/** Opens (or restores) the checkout, synced with the server that serves the page. */
export function openCheckout(onEvent: Parameters<typeof openSession<Checkout>>[0]["onEvent"]): Promise<Session<Checkout>> {
  const ttlSeconds = ttlFromUrl();
  const wsProbeMs = probeFromUrl();
  return openSession<Checkout>({
    name: "demo-checkout",
    initial: INITIAL,
    server: { http: location.origin },
    flow: "checkout",
    ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
    ...(wsProbeMs === undefined ? {} : { wsProbeMs }),
    onEvent,
  });
}

/** The total of the cart plus accepted offers, in cents. */
export function total(state: Checkout): number {
  const prices = new Map(state.quote.products.map((p) => [p.sku, p.price]));
  let sum = 0;
  for (const [sku, qty] of Object.entries(state.cart)) sum += (prices.get(sku) ?? 0) * qty;
  for (const [step, answer] of Object.entries(state.upsells)) {
    if (answer === "accepted") sum += OFFERS[step as keyof typeof OFFERS].price;
  }
  return sum;
}

/** Items in the cart. */
export const itemCount = (state: Checkout): number => Object.values(state.cart).reduce((a, b) => a + b, 0);
