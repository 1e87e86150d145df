// The butler's installable web app: the shell (pages, scripts, styles, icons) is cached so the
// app starts with no signal; answers of the API are NEVER cached (health data stays on the
// server). Any request under /v1/ goes straight to the network, with no copy kept.
const CACHE = "pb-butler-shell-v1";
const SHELL = [
  "/console/",
  "/console/butler.html",
  "/console/index.html",
  "/console/css/console.css",
  "/console/css/butler.css",
  "/console/js/core.js",
  "/console/js/butler.js",
  "/console/js/home.js",
  "/console/manifest.webmanifest",
  "/console/icons/icon-192.png",
  "/console/icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
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
  // Only this origin's shell files, only GET: everything else (the API above all) is not ours.
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/console/")) return; // /v1/…: network only, never stored
  if (event.request.headers.has("Authorization")) return;
  // Network first (a fixed release reaches the phone at once), the cached shell when offline.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok && SHELL.includes(url.pathname)) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() =>
        caches.match(url.pathname).then(
          (hit) => hit || (event.request.mode === "navigate" ? caches.match("/console/butler.html") : Response.error()),
        ),
      ),
  );
});
