// Starts the wasm app. A file, not an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.

import './wasm-features.js';
import './offline-cache.js';
// The page runs its model through the same JS library other pages use: its Web
// Worker holds the model, so this page's main thread only draws. The wasm side
// reaches it at `globalThis.bertSentiment` (web/src/client.rs), with the cache the
// library keeps the model in for offline use.
import { SentimentClassifier } from './lib/bert-sentiment.js';

globalThis.bertSentiment = { SentimentClassifier, offlineCache: globalThis.bertSentimentModelCache };

// The relaxed-SIMD build where the browser has it; the plain one if that is missing too
// (a build without `relaxed/` has only the plain one).
let dir = globalThis.bertSentimentWasmDir;
let init;
try {
  ({ default: init } = await import(`${dir}web.js`));
} catch (e) {
  if (dir === './') throw e;
  dir = './';
  ({ default: init } = await import('./web.js'));
}

init({ module_or_path: new URL(`${dir}web_bg.wasm`, import.meta.url) }).catch((e) => {
  const p = document.createElement('p');
  p.setAttribute('role', 'alert');
  p.textContent = 'The page could not start: ' + e;
  document.body.append(p);
});
