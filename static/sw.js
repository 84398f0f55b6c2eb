// Service worker: keeps the page and its model available offline.
//
// - The model is kept by the JS library the page loads it with (`offlineCache`):
//   once downloaded and checked against its SHA-256s, the bundle goes into the
//   cache named in offline-cache.js. Model files are requested with
//   `?v=<sha256 prefix>`, so each version is its own entry, served cache-first.
// - manifest.json is network-first, so a new model is picked up when online.
// - The app shell (HTML, JS, wasm, CSS, icons) is stale-while-revalidate: it starts
//   from the cache at once and refreshes the cache in the background.
// - Every response it gives carries Cross-Origin-Opener-Policy and -Embedder-Policy,
//   so that on a static host that cannot set headers the page is still cross-origin
//   isolated once this worker controls it (from the second visit on), which the
//   library's threaded CPU engine needs (shared memory).
// Nothing is ever fetched from another origin.
importScripts('./wasm-features.js', './offline-cache.js'); // wasm: only the build boot.js loads is precached
const CACHE = 'bert-sentiment-v5';
const MODELS = globalThis.bertSentimentModelCache;
const WASM = globalThis.bertSentimentWasmDir;
const SHELL = ['./', './index.html', './boot.js', './wasm-features.js', './offline-cache.js', './style.css',
  './manifest.webmanifest', './icons/icon.svg', './icons/icon-192.png', './icons/icon-512.png',
  './lib/bert-sentiment.js', './lib/worker.js', './lib/gpu-watch.js', './lib/compile.js',
  './lib/tuning-store.js'];
const wasmFiles = (dir) => [`${dir}web.js`, `${dir}web_bg.wasm`];

// The shell is cached at install (revalidated against what the page just loaded:
// a 304 each). The model is not fetched a second time here: the library has it.
async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  // As boot.js: the plain build where the relaxed one is missing.
  await cache.addAll(wasmFiles(WASM)).catch(() => cache.addAll(wasmFiles('./')));
}

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE && k !== MODELS).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Model files: from the library's offline copy, else the network.
async function cacheFirst(request) {
  return (await caches.match(request, { cacheName: MODELS })) || fetch(request);
}

// A bundle's manifest: the network's when online, else the offline copy's.
async function networkFirst(request) {
  try {
    return await fetch(request);
  } catch (e) {
    const hit = await caches.match(request, { cacheName: MODELS, ignoreSearch: true });
    if (hit) return hit;
    throw e;
  }
}

// One refresh per URL at a time (the page and the library's worker load the same
// module), and an unchanged file (same ETag or Last-Modified) is not written again:
// rewriting a 19 MB module on every visit competes with loading it.
const refreshing = new Map();
const version = (r) => r.headers.get('ETag') || r.headers.get('Last-Modified');

function refresh(cache, request, hit) {
  const key = new URL(request.url).pathname;
  if (!refreshing.has(key)) {
    const done = fetch(request)
      .then(async (response) => {
        const same = hit && version(response) && version(response) === version(hit);
        if (response.ok && !same) await cache.put(request, response.clone());
        return response;
      })
      .finally(() => refreshing.delete(key));
    refreshing.set(key, done);
  }
  return refreshing.get(key);
}

async function staleWhileRevalidate(event) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(event.request, { ignoreSearch: true });
  if (hit) {
    event.waitUntil(refresh(cache, event.request, hit).catch(() => {}));
    return hit;
  }
  return (await refresh(cache, event.request, null)).clone();
}

// `response` with the headers that make a page cross-origin isolated (a response
// that has them already is passed through).
function isolated(response) {
  if (response.type === 'opaque' || response.type === 'opaqueredirect' || response.status === 0) return response;
  if (response.headers.get('Cross-Origin-Embedder-Policy') === 'require-corp'
      && response.headers.get('Cross-Origin-Opener-Policy') === 'same-origin') return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname;
  let answer;
  if (path.includes('/model/') && path.endsWith('manifest.json')) {
    answer = networkFirst(event.request);
  } else if (path.includes('/model/')) {
    answer = cacheFirst(event.request);
  } else {
    answer = staleWhileRevalidate(event);
  }
  event.respondWith(answer.then(isolated));
});
