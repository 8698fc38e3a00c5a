// Must not compile (consumer.test.mjs expects TS2322 on the `qty` line):
// sessile's types carry the state type from openStore<T> to set().
import { loadSessile } from "sessile";
import type { Checkout } from "../src/checkout";

const sessile = await loadSessile();
const store = await sessile.openStore<Checkout>({ name: "typed", initial: { step: "cart", items: [] } });
store.set({ step: "cart", items: [{ sku: "SKU-1", qty: "2" }] });
