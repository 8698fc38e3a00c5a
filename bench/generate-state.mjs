// Deterministic generator of a realistic checkout state (cart lines with
// options, shipping + billing addresses, shipping rates, upsell offers, a
// step history, attribution metadata) whose JSON is a target number of bytes.
// Seeded PRNG (mulberry32): the same (targetBytes, seed) gives the same state.
// Runs in the browser (bench page) and in Node.

const enc = new TextEncoder();
/** Bytes of `JSON.stringify(value)` in UTF-8. */
export const jsonBytes = (value) => enc.encode(JSON.stringify(value)).length;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ADJ = ["Organic", "Classic", "Slim", "Relaxed", "Merino", "Recycled", "Heavyweight", "Everyday", "Waterproof", "Linen", "Vintage", "Performance"];
const NOUN = ["Crew Tee", "Hoodie", "Chino", "Runner", "Parka", "Beanie", "Backpack", "Water Bottle", "Sock 3-Pack", "Overshirt", "Tote Bag", "Sneaker"];
const BRANDS = ["Northwind", "Fjällgear", "Kestrel & Co", "Lumen", "Atlas Supply", "Café Outfitters"];
const CATS = ["apparel/tops", "apparel/bottoms", "footwear", "accessories/bags", "accessories/hats", "home/drinkware"];
const COLORS = ["black", "navy", "heather grey", "forest green", "sand", "rust", "off-white"];
const SIZES = ["XS", "S", "M", "L", "XL", "XXL"];
const MATERIALS = ["100% cotton", "80% wool, 20% nylon", "recycled polyester", "linen blend", "canvas"];
const FIRST = ["Ana", "Jonas", "Mei", "Oluwaseun", "Léa", "Ravi", "Sofia", "Tomás", "Yuki", "Zoë"];
const LAST = ["García", "Müller", "Nakamura", "Okafor", "Dubois", "Sharma", "Rossi", "Novak"];
const STREETS = ["Market Street", "Elm Avenue", "Königstraße", "Rue de Rivoli", "Harbour Road", "Calle Mayor"];
const CITIES = [["Springfield", "IL", "US"], ["München", "BY", "DE"], ["Lyon", "ARA", "FR"], ["Leeds", "ENG", "GB"], ["São Paulo", "SP", "BR"], ["Toronto", "ON", "CA"]];
const WORDS = ["please", "leave", "the", "parcel", "with", "neighbour", "at", "number", "gift", "wrap", "happy", "birthday", "ring", "bell", "twice", "side", "door", "thanks", "fragile", "no", "invoice", "in", "box"];
const RATES = [["standard", "DHL", 5, 4.95], ["express", "UPS", 2, 12.5], ["next-day", "FedEx", 1, 24], ["pickup", "Store", 0, 0]];
const STEPS = ["cart", "checkout", "upsell-1", "upsell-2", "success"];

/** Returns a checkout state whose JSON is `targetBytes` ± 1 % (seeded). */
export function generateState(targetBytes, seed = 42) {
  const rnd = mulberry32(seed);
  const int = (n) => Math.floor(rnd() * n);
  const pick = (list) => list[int(list.length)];
  const money = (lo, hi) => Math.round((lo + rnd() * (hi - lo)) * 100) / 100;
  const hex = (n) => Array.from({ length: n }, () => "0123456789abcdef"[int(16)]).join("");
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${"89ab"[int(4)]}${hex(3)}-${hex(12)}`;
  const t0 = Date.UTC(2026, 10, 23, 9, 30);
  let clock = t0;
  const iso = () => new Date((clock += 1000 + int(90_000))).toISOString();
  const person = () => ({ firstName: pick(FIRST), lastName: pick(LAST) });
  const address = (p) => {
    const [city, region, country] = pick(CITIES);
    return { ...p, company: rnd() < 0.3 ? `${pick(BRANDS)} GmbH` : null, line1: `${1 + int(400)} ${pick(STREETS)}`,
      line2: rnd() < 0.4 ? `Apt ${1 + int(90)}` : "", city, region, postcode: String(10000 + int(89999)), country,
      phone: `+${1 + int(60)} ${100 + int(899)} ${1000000 + int(8999999)}` };
  };
  const product = () => {
    const name = `${pick(ADJ)} ${pick(NOUN)}`;
    const sku = `${name.replace(/[^A-Z]/g, "")}-${String(int(100000)).padStart(5, "0")}`;
    return { productId: `prod_${hex(10)}`, variantId: `var_${hex(10)}`, sku, name, brand: pick(BRANDS), category: pick(CATS),
      image: `https://cdn.shop.example/img/${sku.toLowerCase()}/${hex(6)}_800x800.webp` };
  };
  const line = () => {
    const unitPrice = money(4, 180);
    const qty = 1 + int(3);
    return { lineId: uuid(), ...product(), options: { size: pick(SIZES), color: pick(COLORS), material: pick(MATERIALS) },
      qty, unitPrice, compareAtPrice: rnd() < 0.3 ? Math.round(unitPrice * 125) / 100 : null,
      discount: rnd() < 0.2 ? money(1, 10) : 0, taxRate: pick([0, 0.07, 0.19, 0.2]), inStock: rnd() > 0.05,
      addedAt: iso(), giftWrap: rnd() < 0.1, personalization: rnd() < 0.1 ? { text: pick(FIRST), font: "serif" } : null };
  };
  const upsell = (i) => ({ offerId: `off_${hex(8)}`, step: i % 2 ? "upsell-2" : "upsell-1", ...product(),
    price: money(5, 60), discountPct: pick([10, 15, 20, 25]), reason: pick(["frequently-bought-together", "complete-the-look", "bundle-save"]),
    shownAt: iso(), accepted: rnd() < 0.25 });
  const event = () => ({ at: iso(), step: pick(STEPS), kind: pick(["view", "update_qty", "apply_coupon", "select_rate", "validate_address"]), ms: int(900) });

  const buyer = person();
  const state = {
    schema: 3, sessionId: uuid(), step: "checkout", createdAt: new Date(t0).toISOString(), currency: "EUR", locale: "de-DE",
    customer: { id: `cus_${hex(12)}`, email: `${buyer.firstName.toLowerCase()}.${int(999)}@example.com`, ...buyer,
      marketingOptIn: rnd() < 0.5, loyalty: { tier: pick(["none", "silver", "gold"]), points: int(5000) } },
    shippingAddress: address(buyer), billingAddress: address(buyer), billingSameAsShipping: false,
    cart: { items: [], coupons: [{ code: "WELCOME10", amount: 10, type: "percent" }], subtotal: 0, note: "" },
    shipping: { selected: "standard", rates: RATES.map(([id, carrier, days, price]) => ({ id, carrier, estimatedDays: days, price })) },
    payment: { method: "card", brand: pick(["visa", "mastercard", "amex"]), last4: String(1000 + int(8999)), wallet: null },
    upsells: [], history: [],
    metadata: { utm: { source: "newsletter", medium: "email", campaign: "bf-2026", content: "hero-cta" },
      referrer: "https://mail.example/", landingPage: "/collections/winter?ref=bf", abTests: { checkoutLayout: "one-page", upsellTimer: "off" },
      device: { type: "mobile", os: "Android 16", viewport: "412x915" }, consent: { analytics: true, ads: false }, rev: 0 },
  };
  // Grow the lists round-robin (two cart lines, one upsell offer, two events)
  // while the next one still fits...
  const growers = [[state.cart.items, line], [state.cart.items, line], [state.upsells, upsell], [state.history, event], [state.history, event]];
  for (let i = 0; jsonBytes(state) < targetBytes; i++) {
    const [list, make] = growers[i % growers.length];
    list.push(make(i));
    if (jsonBytes(state) > targetBytes) {
      list.pop();
      break;
    }
  }
  const subtotal = state.cart.items.reduce((s, it) => s + it.qty * it.unitPrice - it.discount, 0);
  state.cart.subtotal = Math.round(subtotal * 100) / 100;
  // ...then fill the delivery note word by word up to the exact size (ASCII: one byte a character).
  for (let room = targetBytes - jsonBytes(state); room > 0; room = targetBytes - jsonBytes(state)) {
    const note = state.cart.note;
    state.cart.note = (note ? `${note} ${pick(WORDS)}` : pick(WORDS)).slice(0, note.length + room);
  }
  return state;
}
