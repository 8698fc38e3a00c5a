/**
 * One writer at a time per namespace across tabs: runs a write under the
 * exclusive Web Lock `sessile:<ns>` where the browser has Web Locks, and
 * directly where it does not (the write's own compare-and-set on the stored
 * head still keeps a stale tab from overwriting a newer state). A browser
 * that refuses the lock (SecurityError: site data blocked, where the store
 * runs in memory) is treated as one without Web Locks.
 */
import { messageOf, unavailable } from "./errors.js";

export const hasLocks = () => typeof navigator !== "undefined" && !!navigator.locks;

export async function exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!hasLocks()) return work();
  let outcome: { ok: T } | { err: unknown } | undefined;
  try {
    await navigator.locks.request(name, { mode: "exclusive" }, async () => {
      try {
        outcome = { ok: await work() };
      } catch (err) {
        outcome = { err };
      }
    });
  } catch (e) {
    if (!outcome && (e as { name?: string } | null)?.name === "SecurityError") return work();
    if (!outcome) throw unavailable(`the write lock failed: ${messageOf(e)}`);
  }
  if (!outcome) throw unavailable("the write lock was released without running the write");
  if ("err" in outcome) throw outcome.err;
  return outcome.ok;
}
