// The shop's products and the two post-purchase offers. The checkout keeps
// the quote it showed (every product at the price seen, with its text) in
// the session, so what the shopper pays is what they saw even when the shop
// changes prices meanwhile: that quote is what takes the state past the
// 10 KB compression threshold.

/** One product as quoted to the shopper. */
export interface Product {
  sku: string;
  name: string;
  /** Price in cents. */
  price: number;
  description: string;
  colours: string[];
}

/** A post-purchase offer, one per upsell step. */
export interface Offer {
  sku: string;
  name: string;
  price: number;
  pitch: string;
}

const KINDS = ["Trail runner", "Rain shell", "Merino tee", "Down vest", "Day pack", "Wool beanie",
  "Hiking sock", "Fleece", "Water bottle", "Headlamp", "Trekking pole", "Camp mug"];
const LINES = ["Alpine", "Coastal", "Forest"];
const PARTS = ["with a recycled-fibre body", "stitched to last a decade of weekends",
  "that packs into its own pocket", "tested on the West Highland Way in October rain",
  "cut for layering over a base layer", "in a weight that suits three seasons",
  "repairable at any of our shops, free for two years", "made in a workshop we visit every spring"];
const COLOURS = ["moss", "slate", "ochre", "ink", "heather", "rust"];

/** Thirty-six products, the same on every load. */
export const PRODUCTS: Product[] = LINES.flatMap((line, l) =>
  KINDS.map((kind, k) => {
    const n = l * KINDS.length + k;
    const parts = [0, 3, 5].map((o) => PARTS[(n + o) % PARTS.length]);
    return {
      sku: `SK-${String(101 + n)}`,
      name: `${line} ${kind.toLowerCase()}`,
      price: 1_900 + ((n * 737) % 14_000),
      description: `The ${line.toLowerCase()} ${kind.toLowerCase()}, ${parts.join(", ")}. ` +
        `Free returns for 60 days; if it fails in normal use we repair or replace it.`,
      colours: COLOURS.filter((_, c) => (n + c) % 2 === 0),
    };
  }),
);

/** What upsell 1 and upsell 2 offer. */
export const OFFERS: Record<"upsell-1" | "upsell-2", Offer> = {
  "upsell-1": { sku: "CARE-3Y", name: "Three-year care plan", price: 1_900, pitch: "Repairs, re-proofing and a replacement if we cannot fix it." },
  "upsell-2": { sku: "WRAP-1", name: "Gift wrap and a card", price: 450, pitch: "Wrapped in recycled paper, with your message handwritten." },
};

/** Cents as euros. */
export const euros = (cents: number): string => `€${(cents / 100).toFixed(2)}`;
