// The page's checkout state and the one place that opens it. It is a store
// today; a synced session replaces the `return` line with
//   return sessile.openSession<Checkout>({ name, initial: EMPTY, server: { http: location.origin } });
import * as sessile from "sessile";
import type { StoreDiagnostics } from "sessile";

export interface LineItem {
  sku: string;
  qty: number;
}

export interface Checkout {
  step: "cart" | "address" | "payment" | "done";
  items: LineItem[];
}

export const EMPTY: Checkout = { step: "cart", items: [] };

/** What the page uses of a store (or a session): its typed state and writes. */
export interface CheckoutState {
  readonly state: Checkout;
  set(state: Checkout): unknown;
  flush(): Promise<void>;
  close(): Promise<void>;
  diagnostics(): StoreDiagnostics;
}

/** Opens the shopper's checkout, restoring what the browser kept. */
export async function openCheckout(name: string): Promise<CheckoutState> {
  return (await sessile.loadSessile()).openStore<Checkout>({ name, initial: EMPTY });
}
