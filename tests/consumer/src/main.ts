// Renders the checkout and adds an item per click; body[data-ready] tells
// the test the page is up ("true") or failed ("false", with #status).
import { SessileError } from "sessile";
import { openCheckout, type Checkout } from "./checkout";

const byId = (id: string): HTMLElement => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return element;
};

async function main(): Promise<void> {
  const checkout = await openCheckout("consumer-checkout");
  const render = (): void => {
    byId("state").textContent = JSON.stringify(checkout.state);
    byId("status").textContent = `stored in ${checkout.diagnostics().backend}`;
  };
  byId("add").addEventListener("click", () => {
    const current: Checkout = checkout.state;
    checkout.set({ step: "address", items: [...current.items, { sku: `SKU-${current.items.length + 1}`, qty: 1 }] });
    void checkout.flush().then(render);
  });
  render();
  document.body.dataset.ready = "true";
}

main().catch((e: unknown) => {
  byId("status").textContent = e instanceof SessileError ? `${e.code}: ${e.message}` : String(e);
  document.body.dataset.ready = "false";
});
