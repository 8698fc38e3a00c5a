// The shopper's side: cart → checkout (email, address) → processing →
// upsell 1 → upsell 2 → success. Each step moves the session's status along
// sessile's built-in "checkout" flow, with the state change in the same op.
import type { Session } from "sessile";
import { OFFERS, euros } from "./catalog";
import { itemCount, total, type Checkout, type Customer, type Step } from "./checkout";
import { byId, counted, h, noun } from "./dom";

/** How long the simulated payment takes, ms. */
const PAYMENT_MS = 1_200;
/** How long typing pauses before the field is saved, ms. */
const TYPING_MS = 300;

const FIELDS: { key: keyof Customer; label: string; type: string }[] = [
  { key: "email", label: "Email", type: "email" },
  { key: "name", label: "Full name", type: "text" },
  { key: "address", label: "Street and number", type: "text" },
  { key: "city", label: "City", type: "text" },
  { key: "postcode", label: "Postcode", type: "text" },
];

/** Renders the funnel into #funnel and turns clicks into session changes. */
export class Funnel {
  private rendered = "";
  private paying: ReturnType<typeof setTimeout> | undefined;
  /** The checkout as it was when Finish was pressed (ending clears the local copy). */
  private finished: Checkout | undefined;
  private finishing = false;
  private typing = new Map<keyof Customer, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly session: Session<Checkout>,
    /** Reports a refused change (an expired session, a wrong step) to the page. */
    private readonly refused: (error: unknown) => void,
  ) {}

  /** Draws the step again when what it shows changed (typing in a field never redraws it). */
  render(): void {
    const s = this.session.state;
    const key = JSON.stringify([s.step, s.cart, s.upsells, s.order, this.session.status, this.finishing]);
    if (key !== this.rendered) {
      this.rendered = key;
      const shown = this.finished ?? s;
      const root = byId("funnel");
      root.dataset.step = shown.step;
      byId("step").textContent = shown.step;
      for (const li of document.querySelectorAll<HTMLElement>("#steps li")) {
        li.classList.toggle("current", li.dataset.step === shown.step);
      }
      root.replaceChildren(this.view(shown));
    }
    this.fillForm(s.customer);
    // Only while the session is at "processing" too: an expired one stays where it was.
    if (s.step === "processing" && this.session.status === "processing") this.pay();
  }

  private change(fn: (s: Checkout) => Checkout, to?: Step): void {
    try {
      if (to) this.session.step(to, (s) => ({ ...fn(s), step: to }));
      else this.session.update(fn);
    } catch (e) {
      this.refused(e);
    }
    this.render();
  }

  private view(s: Checkout): HTMLElement {
    if (this.finished) return this.completed(this.finished);
    // Completed but not yet confirmed (a reload while it waited): wait for the server again.
    if (this.session.status === "completed") queueMicrotask(() => this.finish());
    switch (s.step) {
      case "cart":
        return this.cart(s);
      case "checkout":
        return this.form(s);
      case "processing":
        return h("section", { class: "processing" }, h("div", { class: "spinner" }), h("p", {}, `Authorising ${euros(total(s))}…`));
      case "upsell-1":
      case "upsell-2":
        return this.offer(s.step);
      case "success":
        return this.success(s);
    }
  }

  private cart(s: Checkout): HTMLElement {
    const grid = h("div", { class: "products" });
    for (const p of s.quote.products) {
      const qty = s.cart[p.sku] ?? 0;
      const add = h("button", { type: "button", "data-add": p.sku }, "Add");
      const remove = h("button", { type: "button", "data-remove": p.sku, disabled: qty === 0, "aria-label": `Remove one ${p.name}` }, "−");
      add.onclick = () => this.change((st) => ({ ...st, cart: { ...st.cart, [p.sku]: (st.cart[p.sku] ?? 0) + 1 } }));
      remove.onclick = () =>
        this.change((st) => {
          const cart = { ...st.cart };
          if ((cart[p.sku] ?? 0) > 1) cart[p.sku]! -= 1;
          else delete cart[p.sku];
          return { ...st, cart };
        });
      grid.append(
        h("article", { class: qty ? "product in-cart" : "product", "data-sku": p.sku },
          h("h3", {}, p.name), h("p", { class: "price" }, euros(p.price)), h("p", { class: "desc" }, p.description),
          h("div", { class: "qty" }, remove, h("output", { "data-qty": p.sku }, String(qty)), add)),
      );
    }
    const next = h("button", { type: "button", id: "to-checkout", class: "primary", disabled: itemCount(s) === 0 }, "Go to checkout");
    next.onclick = () => this.change((st) => st, "checkout");
    return h("section", {},
      h("div", { class: "bar" }, h("p", {}, h("strong", { id: "cart-count" }, String(itemCount(s))), ` ${noun(itemCount(s), "item")} · `, h("strong", { id: "cart-total" }, euros(total(s)))), next),
      grid);
  }

  private form(s: Checkout): HTMLElement {
    const form = h("form", { id: "customer", novalidate: true });
    for (const f of FIELDS) {
      const input = h("input", { id: f.key, name: f.key, type: f.type, autocomplete: "on", required: true }) as HTMLInputElement;
      input.value = s.customer[f.key];
      input.oninput = () => {
        clearTimeout(this.typing.get(f.key));
        this.typing.set(f.key, setTimeout(() => this.saveField(f.key, input.value), TYPING_MS));
      };
      input.onchange = () => this.saveField(f.key, input.value);
      form.append(h("label", {}, f.label, input));
    }
    const error = h("p", { id: "form-error", class: "error", role: "alert" });
    const pay = h("button", { type: "submit", id: "pay", class: "primary" }, `Pay ${euros(total(s))}`);
    form.append(error, pay);
    form.onsubmit = (e) => {
      e.preventDefault();
      for (const f of FIELDS) this.saveField(f.key, (byId<HTMLInputElement>(f.key)).value);
      const c = this.session.state.customer;
      const missing = FIELDS.filter((f) => c[f.key].trim() === "").map((f) => f.label.toLowerCase());
      if (missing.length || !c.email.includes("@")) {
        error.textContent = missing.length ? `Please fill in: ${missing.join(", ")}.` : "That email address has no @.";
        return;
      }
      this.change((st) => st, "processing");
    };
    return h("section", {}, h("h2", {}, "Where should it go?"), form);
  }

  private saveField(key: keyof Customer, value: string): void {
    clearTimeout(this.typing.get(key));
    this.typing.delete(key);
    if (this.session.state.customer[key] === value) return;
    this.change((st) => ({ ...st, customer: { ...st.customer, [key]: value } }));
  }

  /** Another tab or the server changed the customer: show it, except in the field being typed in. */
  private fillForm(c: Customer): void {
    for (const f of FIELDS) {
      const input = document.getElementById(f.key) as HTMLInputElement | null;
      if (input && input !== document.activeElement && !this.typing.has(f.key) && input.value !== c[f.key]) {
        input.value = c[f.key];
      }
    }
  }

  /**
   * The simulated payment: a reload while it runs starts it again. The order
   * is written with the move to "upsell-1", which the flow allows once, so
   * it is paid once even when two tabs race (the server refuses the second).
   */
  private pay(): void {
    if (this.paying) return;
    this.paying = setTimeout(() => {
      this.paying = undefined;
      const s = this.session.state;
      if (s.step !== "processing" || this.session.status !== "processing") return;
      const order = { id: `ORD-${Date.now().toString(36).toUpperCase()}`, total: total(s), paidAt: Date.now() };
      this.change((st) => ({ ...st, order }), "upsell-1");
    }, PAYMENT_MS);
  }

  private offer(step: "upsell-1" | "upsell-2"): HTMLElement {
    const o = OFFERS[step];
    const next: Step = step === "upsell-1" ? "upsell-2" : "success";
    const answer = (a: "accepted" | "declined") => () => this.change((st) => ({ ...st, upsells: { ...st.upsells, [step]: a } }), next);
    const accept = h("button", { type: "button", id: "accept", class: "primary" }, `Add for ${euros(o.price)}`);
    const decline = h("button", { type: "button", id: "decline" }, "No, thanks");
    accept.onclick = answer("accepted");
    decline.onclick = answer("declined");
    return h("section", { class: "offer" }, h("p", { class: "kicker" }, "Paid. One more thing?"), h("h2", {}, o.name), h("p", {}, o.pitch), h("div", { class: "bar" }, decline, accept));
  }

  private success(s: Checkout): HTMLElement {
    const finish = h("button", { type: "button", id: "finish", class: "primary", disabled: this.finishing },
      this.finishing ? "Completing… (waiting for the server)" : "Finish");
    finish.onclick = () => this.finish();
    return h("section", { class: "success" },
      h("h2", {}, "Thank you!"),
      h("p", {}, `Order `, h("strong", { id: "order-id" }, s.order?.id ?? "?"), ` · ${counted(itemCount(s), "item")} · ${euros(total(s))}, sent to ${s.customer.name}.`),
      finish);
  }

  /** Ends the session as "completed": resolved once the server has it (offline: when back online), then the local copy goes. */
  private finish(): void {
    if (this.finishing || this.finished) return;
    this.finishing = true;
    const kept = this.session.state;
    this.render();
    this.session.end("completed").then(
      () => {
        this.finished = kept;
        this.finishing = false;
        this.render();
      },
      (e: unknown) => {
        this.finishing = false;
        this.refused(e);
        this.render();
      },
    );
  }

  private completed(s: Checkout): HTMLElement {
    const again = h("button", { type: "button", id: "new-checkout", class: "primary" }, "Start a new checkout");
    again.onclick = () => location.reload();
    return h("section", { class: "success" }, h("h2", {}, "Completed"), h("p", {}, `Order ${s.order?.id ?? ""} is closed and its local copy erased.`), again);
  }
}
