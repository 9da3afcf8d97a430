// The service worker only caches: the app shell (precached, one versioned cache), and form
// definitions (network first, the last copy when offline). Other /api/ calls are never cached.
// Data logic lives in the page (sync.js, db.js).
// VERSION and SHELL are filled in as the worker is served (server/phone.py, from its PRECACHED
// patterns): SHELL is the page, the manifest, app.css, the icons and every module under js/;
// VERSION the start of the SHA-256 of their content. A changed file changes the worker, so phones
// are offered the update ("new version, update now") and the old cache is deleted on activation.

const VERSION = "";
const SHELL = [];
const SHELL_CACHE = `jiedui-shell-${VERSION}`;
const FORMS_CACHE = "jiedui-forms";

self.addEventListener("install", (event) => {
  // Revalidated, not refetched: the page has just downloaded most of these, so unchanged files
  // cost a 304 instead of their bytes again on a slow network.
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "no-cache" })))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("jiedui-") && key !== SHELL_CACHE && key !== FORMS_CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

// The page asks a waiting worker to take over once the cadre tapped "update now".
self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "skip-waiting") self.skipWaiting();
});

async function fromShell(request) {
  const cached = await caches.match(request, { cacheName: SHELL_CACHE, ignoreSearch: true });
  return cached || fetch(request);
}

async function networkFirst(request) {
  const cache = await caches.open(FORMS_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/v1/forms/")) {
    event.respondWith(networkFirst(request));
    return;
  }
  if (url.pathname.startsWith("/api/")) return; // data is never served from a cache
  if (request.mode === "navigate" && (url.pathname === "/app/" || url.pathname === "/app/index.html")) {
    event.respondWith(caches.match("/app/", { cacheName: SHELL_CACHE }).then((r) => r || fetch(request)));
    return;
  }
  if (url.pathname.startsWith("/app/") && url.pathname !== "/app/sw.js") event.respondWith(fromShell(request));
});
