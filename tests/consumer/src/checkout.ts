// The page's checkout state and the one place that opens it: a session
// synced with the sessile-server that serves the page.
import * as sessile from "sessile";
import type { SessionDiagnostics } from "sessile";

export interface LineItem {
  sku: string;
  qty: number;
}

export interface Checkout {
  step: "cart" | "address" | "payment" | "done";
  items: LineItem[];
}

export const EMPTY: Checkout = { step: "cart", items: [] };

/** What the page uses of the session: its typed state and writes. */
export interface CheckoutState {
  readonly state: Checkout;
  set(state: Checkout): unknown;
  flush(): Promise<void>;
  close(): Promise<void>;
  diagnostics(): SessionDiagnostics;
}

/** Opens the shopper's checkout, restoring what the browser kept. */
export async function openCheckout(name: string): Promise<CheckoutState> {
  return sessile.openSession<Checkout>({ name, initial: EMPTY, server: { http: location.origin } });
}
