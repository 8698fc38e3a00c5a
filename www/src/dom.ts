// The few DOM helpers the demo needs: find an element, build one.

/** The element with `id`; throws when the page lacks it (a broken build, not a shopper's problem). */
export function byId<E extends HTMLElement = HTMLElement>(id: string): E {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as E;
}

type Attributes = Record<string, string | number | boolean | undefined>;

/** `<tag attrs>children</tag>`; text children are set as text, never parsed as HTML. */
export function h(tag: string, attrs: Attributes = {}, ...children: (Node | string)[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children);
  return element;
}

/** `item` for 1, `items` for 0, 2, …: the noun a count takes. */
export const noun = (n: number, one: string, many = `${one}s`): string => (n === 1 ? one : many);

/** `1 item`, `2 items`, `0 items`: a count with its noun in the right number. */
export const counted = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString("en")} ${noun(n, one, many)}`;
