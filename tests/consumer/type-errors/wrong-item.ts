// Must not compile (consumer.test.mjs expects TS2322 on the `qty` line):
// sessile's types carry the state type from openSession<T> to update().
import { openSession } from "sessile";
import type { Checkout } from "../src/checkout";

const session = await openSession<Checkout>({ name: "typed", initial: { step: "cart", items: [] } });
session.update({ items: [{ sku: "SKU-1", qty: "2" }] });
