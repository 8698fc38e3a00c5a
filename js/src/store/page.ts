/**
 * Small browser services the store needs, each safe without a window: the
 * clock, event listeners with their removal, whether the document is
 * hidden, the eviction-marker cookie, `navigator.storage.persist()` and
 * the quota estimate. Nothing here keeps state of its own.
 */

export const now = () => Date.now();

/** Listens for `type` on `target`; returns the function that stops listening. */
export function listen(target: EventTarget, type: string, handler: (event: Event) => void): () => void {
  target.addEventListener(type, handler);
  return () => target.removeEventListener(type, handler);
}

/** Whether the document is hidden (tab in the background, page being left). */
export const documentHidden = () => typeof document !== "undefined" && document.visibilityState === "hidden";

const cookieName = (ns: string) => `sessile_${encodeURIComponent(ns)}`;

/** The value of the eviction-marker cookie of `ns`. */
export function readMarkerCookie(ns: string): string | undefined {
  if (typeof document === "undefined") return undefined;
  const prefix = `${cookieName(ns)}=`;
  // `document.cookie` joins cookies with "; " and no value holds a ';'.
  for (const c of document.cookie.split(";")) {
    const cookie = c.startsWith(" ") ? c.slice(1) : c;
    if (cookie.startsWith(prefix)) return cookie.slice(prefix.length);
  }
  return undefined;
}

/** Sets (or with undefined removes) the eviction-marker cookie of `ns`. */
export function writeMarkerCookie(ns: string, value: string | undefined): void {
  if (typeof document === "undefined") return;
  const age = value === undefined ? 0 : 31_536_000;
  document.cookie = `${cookieName(ns)}=${value ?? ""}; Max-Age=${age}; Path=/; SameSite=Lax`;
}

const storageManager = (): StorageManager | undefined =>
  typeof navigator === "undefined" ? undefined : navigator.storage;

/**
 * Asks the browser to keep this origin's storage (`persist()`, or with
 * `ask` false only `persisted()`); resolves whether it is persistent, null
 * where the API is missing or fails.
 */
export async function requestPersistence(ask: boolean): Promise<boolean | null> {
  const s = storageManager();
  const f = ask ? s?.persist : s?.persisted;
  if (!s || typeof f !== "function") return null;
  try {
    const v: unknown = await f.call(s);
    return typeof v === "boolean" ? v : null;
  } catch {
    return null;
  }
}

/** The origin's quota in bytes (`navigator.storage.estimate()`), undefined when unknown. */
export async function quota(): Promise<number | undefined> {
  const s = storageManager();
  if (!s || typeof s.estimate !== "function") return undefined;
  try {
    return (await s.estimate()).quota;
  } catch {
    return undefined;
  }
}
