// A tab of js/test/browsers.mjs (a WebDriver browser: WebKit, Firefox) with
// the few Playwright page methods that demo.mjs's helpers and scenarios.mjs
// call (evaluate, click, fill, press Tab, textContent, getAttribute,
// inputValue, waitForSelector, waitForFunction, reload), so the demo's checks run unchanged in a browser
// Playwright cannot drive. Every method is a script run in the page.
import { waitFor } from "../../js/test/browsers.mjs";

/** Runs `read` until it gives something truthy; a failed read (a page mid-navigation) counts as not yet. */
function poll(read, what, timeout = 15_000) {
  return waitFor(() => read().catch(() => false), { timeout, what });
}

/** The page-like view of `tab` (also kept as `.tab`). */
export function asPage(tab) {
  const run = (fn, arg) => tab.evaluate(fn, arg);
  return {
    tab,
    evaluate: run,
    textContent: (selector) => run((s) => document.querySelector(s)?.textContent ?? null, selector),
    getAttribute: (selector, name) => run(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [selector, name]),
    inputValue: (selector) => run((s) => document.querySelector(s).value, selector),
    click: (selector) =>
      run((s) => {
        const element = document.querySelector(s);
        if (!element) throw new Error(`nothing matches ${s}`);
        element.click();
      }, selector),
    /** Types `value` into the field as a user does: focus, then input and change events. */
    fill: (selector, value) =>
      run(([s, v]) => {
        const field = document.querySelector(s);
        field.focus();
        field.value = v;
        field.dispatchEvent(new Event("input", { bubbles: true }));
        field.dispatchEvent(new Event("change", { bubbles: true }));
      }, [selector, value]),
    /** Only Tab, as scenarios use it: the field loses focus (its change is committed). */
    press: (selector, key) => {
      if (key !== "Tab") throw new Error(`press ${key}: only Tab is supported`);
      return run((s) => document.querySelector(s).blur(), selector);
    },
    waitForSelector: (selector, { timeout } = {}) =>
      poll(() => run((s) => document.querySelector(s) !== null, selector), `an element ${selector}`, timeout),
    waitForFunction: (fn, arg) => poll(() => run(fn, arg), `the page to satisfy ${fn}`),
    reload: () => tab.reload(),
  };
}

/**
 * Runs `action` (which makes the page load again, e.g. a click on a button
 * that reloads) and waits for the new document: the current one is marked
 * first, and the wait ends once a loaded document without the mark answers.
 */
export async function untilNewDocument(page, action) {
  await page.evaluate(() => {
    window.__sessileOldDocument = true;
  });
  await action();
  await poll(() => page.evaluate(() => !window.__sessileOldDocument && document.readyState === "complete"), "the page to load again");
}
