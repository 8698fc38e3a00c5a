// One writer at a time per namespace across tabs: runs `task` (which returns
// a promise) under the exclusive Web Lock `name` where the browser has Web
// Locks, and directly where it does not (the write's own compare-and-set on
// the stored version still keeps a stale tab from overwriting a newer state).

export function hasLocks() {
  return typeof navigator !== "undefined" && !!navigator.locks;
}

export function withLock(name, task) {
  return hasLocks() ? navigator.locks.request(name, { mode: "exclusive" }, () => task()) : task();
}
