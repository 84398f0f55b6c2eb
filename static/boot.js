// Starts the wasm app. A file, not an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.

import './wasm-features.js';
import './offline-cache.js';
// The page runs its model through the same JS library other pages use: its Web
// Worker holds the model, so this page's main thread only draws. The wasm side
// reaches it at `globalThis.bertSentiment` (web/src/client.rs), with the cache the
// library keeps the model in for offline use.
import { SentimentClassifier } from './lib/bert-sentiment.js';
import { compileWasm } from './lib/compile.js';

const offlineCache = globalThis.bertSentimentModelCache;

// The relaxed-SIMD build where the browser has it; the plain one if that is missing too
// (a build without `relaxed/` has only the plain one).
async function glue() {
  const dir = globalThis.bertSentimentWasmDir;
  try {
    return { dir, init: (await import(`${dir}web.js`)).default };
  } catch (e) {
    if (dir === './') throw e;
    return { dir: './', init: (await import('./web.js')).default };
  }
}
const page = glue();

// Compiled once: the page runs it, and the library's worker gets the same module
// (the same file: the page's module holds the library's exports too).
const compiled = page.then(async ({ dir }) => ({
  module: await compileWasm(new URL(`${dir}web_bg.wasm`, import.meta.url)),
  glue: new URL(`${dir}web.js`, import.meta.url).href,
}));

// The page's model starts loading now, in the library's worker, before the page's own
// module is even fetched (the worker starts and downloads the bundle meanwhile); the
// page takes this load when it asks for the same model (`web/src/client.rs`), with the
// progress reported so far.
const preload = { url: 'model/', engine: 'auto', last: null, listener: null };
preload.promise = SentimentClassifier.load(preload.url, {
  engine: preload.engine,
  offlineCache,
  compiled,
  onProgress: (p) => {
    preload.last = p;
    preload.listener?.(p);
  },
});
preload.promise.catch(() => {}); // the page reports a failure when it takes the load

globalThis.bertSentiment = { SentimentClassifier, offlineCache, compiled, preload };

Promise.all([page, compiled])
  .then(([{ init }, { module }]) => init({ module_or_path: module }))
  .catch((e) => {
    const p = document.createElement('p');
    p.setAttribute('role', 'alert');
    p.textContent = 'The page could not start: ' + e;
    document.body.append(p);
  });
