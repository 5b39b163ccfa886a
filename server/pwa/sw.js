// Portgate's service worker: the app shell offline, and the gate tickets a session opened, for that
// session only. Served at /sw.js by server/pwa/views.py, which fills in the version and the shell files.
"use strict";

const VERSION = "__VERSION__";
const SHELL_FILES = ["__SHELL__"];
const SHELL = `portgate-shell-${VERSION}`;
const USER_PREFIX = "portgate-user-";
// Which session's cache is current (pages say so: see register.js); kept in a cache, since a worker's
// memory does not outlive it.
const META = "portgate-meta";
const CURRENT = "/app/current-cache";
const OFFLINE = "/app/offline";
// Pages kept for offline use: a ticket on the phone, and a driver's share link.
const KEPT_PAGES = [/^\/tickets\/\d+\/phone$/, /^\/t\/[A-Za-z0-9_-]+$/];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(SHELL_FILES.map((path) => new Request(path, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((n) => n.startsWith("portgate-shell-") && n !== SHELL).map((n) => caches.delete(n))),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "session" && typeof data.cache === "string") {
    event.waitUntil(useSession(data.cache).then(() => event.ports[0] && event.ports[0].postMessage("ok")));
  }
});

// The page's session is ``key``: forget every other session's pages (a different user, or the same
// one signed in again), so nothing of theirs can be shown here.
async function useSession(key) {
  const meta = await caches.open(META);
  await meta.put(CURRENT, new Response(key));
  const names = await caches.keys();
  await Promise.all(
    names.filter((n) => n.startsWith(USER_PREFIX) && n !== USER_PREFIX + key).map((n) => caches.delete(n)),
  );
}

async function currentSession() {
  const found = await caches.match(CURRENT, { cacheName: META });
  return found ? found.text() : "";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // Forms and sign-out go straight to the network: the browser must see the answer's own headers
  // (Clear-Site-Data on sign-out), and nothing posted is ever replayed from here.
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request, url));
  } else if (SHELL_FILES.includes(url.pathname)) {
    event.respondWith(caches.match(url.pathname, { cacheName: SHELL }).then((hit) => hit || fetch(request)));
  }
});

// Pages come from the network first, always; only when it fails does a kept page (of the current
// session) or the offline page answer.
async function page(request, url) {
  const kept = KEPT_PAGES.some((pattern) => pattern.test(url.pathname));
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    const key = kept ? await currentSession() : "";
    const copy = key ? await caches.match(url.pathname, { cacheName: USER_PREFIX + key }) : undefined;
    if (copy) return markedAsKept(copy);
    return (await caches.match(OFFLINE, { cacheName: SHELL })) || Response.error();
  }
  if (kept) await keep(url.pathname, response.clone());
  return response;
}

// A kept copy says so (data-kept on the ticket), so the page checks its ticket once the network is back.
async function markedAsKept(copy) {
  const html = (await copy.text()).replace('id="ticket"', 'id="ticket" data-kept="1"');
  return new Response(html, { status: copy.status, statusText: copy.statusText, headers: copy.headers });
}

// Keep the newest answer of a kept page in the cache its session named (a deleted or used ticket
// replaces the copy with QR); a page that is gone for this session leaves no copy behind.
async function keep(path, response) {
  const key = response.headers.get("X-Portgate-Cache");
  if (key && (response.status === 200 || response.status === 410)) {
    const cache = await caches.open(USER_PREFIX + key);
    await cache.put(path, response);
  } else if (response.status === 404 || response.status === 403) {
    const current = await currentSession();
    if (current) await (await caches.open(USER_PREFIX + current)).delete(path);
  }
}
