// Service worker: keeps the page and its model available offline.
//
// - Model files are requested with `?v=<sha256 prefix>`: each version is its own
//   cache entry, served cache-first (they never change under the same URL).
// - manifest.json is network-first, so a new model is picked up when online.
// - The app shell (HTML, JS, wasm, CSS, icons) is stale-while-revalidate: it starts
//   from the cache at once and refreshes the cache in the background.
// Nothing is ever fetched from another origin.
importScripts('./wasm-features.js'); // the build boot.js loads: only that one is precached
const CACHE = 'bert-sentiment-v3';
const WASM = globalThis.bertSentimentWasmDir;
const SHELL = ['./', './index.html', './boot.js', './wasm-features.js', './style.css',
  './manifest.webmanifest', './icons/icon.svg', './icons/icon-192.png', './icons/icon-512.png',
  './lib/bert-sentiment.js', './lib/worker.js', './lib/gpu-watch.js'];
const wasmFiles = (dir) => [`${dir}web.js`, `${dir}web_bg.wasm`];

// The shell is cached at install (revalidated against what the page just loaded:
// a 304 each). The model is not fetched a second time here: the first visit, which
// this worker does not control yet, hands over the files it downloaded and verified
// (the 'cache' message below); later visits go through the fetch handler.
async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  // As boot.js: the plain build where the relaxed one is missing.
  await cache.addAll(wasmFiles(WASM)).catch(() => cache.addAll(wasmFiles('./')));
}

// { op: 'cache', url, bytes, type }: a model file the page downloaded and checked
// against its SHA-256 (its URL carries the hash, so it never goes stale).
self.addEventListener('message', (event) => {
  const msg = event.data;
  if (msg?.op !== 'cache' || new URL(msg.url).origin !== self.location.origin) return;
  const response = new Response(msg.bytes, { headers: { 'Content-Type': msg.type || 'application/octet-stream' } });
  event.waitUntil(caches.open(CACHE).then((cache) => cache.put(msg.url, response)));
});

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (e) {
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    throw e;
  }
}

async function staleWhileRevalidate(event) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(event.request, { ignoreSearch: true });
  const refresh = fetch(event.request)
    .then((response) => {
      if (response.ok) return cache.put(event.request, response.clone()).then(() => response);
      return response;
    });
  if (hit) {
    event.waitUntil(refresh.catch(() => {}));
    return hit;
  }
  return refresh;
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (path.includes('/model/') && path.endsWith('manifest.json')) {
    event.respondWith(networkFirst(event.request));
  } else if (path.includes('/model/')) {
    event.respondWith(cacheFirst(event.request));
  } else {
    event.respondWith(staleWhileRevalidate(event));
  }
});
