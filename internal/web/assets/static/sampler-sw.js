// shaobing — sampler-sw.js: the sampler page's service worker. It lets the page load when
// the phone has no network (a reload at a sampling point in a dead spot), so the offline
// queue in IndexedDB stays usable; registrations themselves never pass through it.
//
// Served at /screening/sampler-sw.js (no-cache, so an update is picked up on the next
// visit) and registered by sampler.js with the scope /screening/sampler.
//
//   the page (/screening/sampler)  network first; the last good copy when offline
//   /static/… (content-hashed)     cache first: a hashed URL never changes
//   everything else (the API)      not touched: the page's queue handles failures
"use strict";

var CACHE = "shaobing-sampler-v1";
var PAGE = "/screening/sampler";

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (evt) {
  evt.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

// The page sends the static files it loaded, so they are cached even though they were
// fetched before this worker controlled the page.
self.addEventListener("message", function (evt) {
  var urls = evt.data && evt.data.cache;
  if (!Array.isArray(urls)) {
    return;
  }
  urls = urls.filter(function (u) { return typeof u === "string" && u.indexOf("/static/") === 0; });
  evt.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(urls); }));
});

self.addEventListener("fetch", function (evt) {
  var req = evt.request;
  if (req.method !== "GET") {
    return;
  }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) {
    return;
  }
  if (req.mode === "navigate" && url.pathname === PAGE) {
    evt.respondWith(fetch(req).then(function (res) {
      // Keep only a real page: not a redirect to the login form, not an error.
      if (res.ok && !res.redirected) {
        var copy = res.clone();
        caches.open(CACHE).then(function (c) { return c.put(PAGE, copy); });
      }
      return res;
    }).catch(function () {
      return caches.match(PAGE).then(function (hit) { return hit || Response.error(); });
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    evt.respondWith(caches.match(req).then(function (hit) { return hit || fetch(req); }));
  }
});
