// The demo's service worker: keeps the page's own files (FILES, written in
// front of this source by vite.config.js at build time) so a reload works
// while the browser is offline. It never answers the session API: sessile's
// requests go to the network, and fail there, as on any offline page.
/* global FILES, VERSION */
const CACHE = `sessile-demo-${VERSION}`;
const SHELL = new Set(FILES);

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  // The page at "/" (with any query, e.g. ?ttl=60) and the built files; nothing else.
  const path = url.pathname;
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.has(path)) return;
  // Network first, so a rebuilt demo is seen at once; the cache when the network fails.
  event.respondWith(
    fetch(event.request).catch(() => caches.open(CACHE).then((c) => c.match(path)).then((r) => r ?? Response.error())),
  );
});
