// The Web Worker behind SentimentClassifier (bert-sentiment.js): it holds the model
// and answers one request at a time, so the page that uses the library never blocks.
//
// Protocol (structured-clone messages):
//   in:  { id, op: 'load', source: { url } | { files: Map<name, Uint8Array> }, engine, offlineCache,
//          threads, strictThreads }
//        { id, op: 'classify', texts, spans }   { id, op: 'explain', text }   { op: 'cancel', id }
//        { id, op: 'fineTune', examples, settings, checkpoint: { steps, seconds } | null, resume }
//        { id, op: 'savedFineTune' }   { id, op: 'discardFineTune' }   { id, op: 'exportBundle' }
//        { op: 'start', module, glue } first (see `told` below)
//   out: { ready: true, locked } once it takes requests (locked: it holds the Web Lock it is named after);
//        { id, progress: { stage, file, loaded, total } } while loading;
//        { id, progress: { stage, step, steps, epoch, loss, samplesPerSecond, etaSeconds, checkpoint, warning } }
//        while fine-tuning;
//        { id, ok: true, value, info } or { id, ok: false, error } for each request
//        (`info`: the model's description after it, when a model is loaded).
// Requests queue; a cancelled one is dropped before it starts, a running
// classification stops between its chunks, and a fine-tune between its steps. A Web Lock held for the worker's whole
// life lets the library notice at once when the worker dies, however it dies.
import '../wasm-features.js';
import './gpu-watch.js';
import { compileWasm, fetchOk } from './compile.js';
import { dropCheckpoints, keptCheckpoint, saveCheckpoint } from './tuning-store.js';

const CHUNK = 16; // texts per model call: a cancel never waits longer than one chunk

const lockName = self.name; // bert-sentiment.js names each worker after its lock
let wasm = null;
const queue = [];
const cancelled = new Set();
let running = false;
let locked = false; // whether this worker holds the lock named after it
// Names the current model for fine-tuning checkpoints (its files' SHA-256s); null
// where the browser has no WebCrypto, and then no run is checkpointed.
let modelKey = null;

// The library's first message: { op: 'start', module, glue } — a compiled module to
// share (`module`, from the `web.js` at URL `glue`), or nothing, and this worker
// fetches and compiles its own.
let begin;
const told = new Promise((resolve) => {
  begin = resolve;
});

// This worker's lock, held until it ends (never released otherwise).
async function lock() {
  if (!lockName || !self.navigator.locks) return;
  await new Promise((held) => {
    self.navigator.locks.request(lockName, () => {
      held();
      return new Promise(() => {});
    });
  });
  locked = true;
}

const locking = lock();

// The single-threaded module (WebGPU and the CPU on one thread), started when first
// needed: a model that will run on the threaded module never waits for it.
let single = null;
function singleModule() {
  single ??= startSingle().catch((e) => {
    throw new Error(`the model's WebAssembly module did not start: ${message(e)}`);
  });
  return single;
}

async function startSingle() {
  const { module, glue } = await told;
  if (module && glue) {
    const m = await import(glue);
    await m.default({ module_or_path: module });
    return m;
  }
  const root = new URL('../', import.meta.url);
  let dir = new URL(globalThis.bertSentimentWasmDir, root);
  let m;
  try {
    m = await import(new URL('web.js', dir));
  } catch (e) {
    if (dir.href === root.href) throw e;
    dir = root;
    m = await import(new URL('web.js', dir));
  }
  await m.default({ module_or_path: new URL('web_bg.wasm', dir) });
  return m;
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.op === 'start') {
    begin(msg);
    return;
  }
  if (msg.op === 'cancel') {
    cancelled.add(msg.id);
    return;
  }
  queue.push(msg);
  pump();
};

async function pump() {
  if (running) return;
  running = true;
  while (queue.length) {
    const msg = queue.shift();
    if (cancelled.delete(msg.id)) continue;
    try {
      const value = await handle(msg);
      // A request may have moved the model to the CPU (WebGPU failed): say so.
      const info = msg.op === 'load' || msg.op === 'dispose' ? undefined : wasm.modelInfo();
      if (!cancelled.delete(msg.id)) self.postMessage({ id: msg.id, ok: true, value, info });
    } catch (e) {
      cancelled.delete(msg.id);
      self.postMessage({ id: msg.id, ok: false, error: message(e) });
      if (e instanceof WebAssembly.RuntimeError) {
        // A trap leaves the module in an unknown state: end this worker (the lock
        // goes with it) and let the library start a fresh one.
        self.close();
        return;
      }
    }
  }
  running = false;
}

function message(e) {
  if (e instanceof Error) return e.message;
  return String(e);
}

async function handle(msg) {
  // A bundle downloads while the module compiles; everything else needs a module.
  if (msg.op !== 'load' && !wasm) wasm = await singleModule();
  switch (msg.op) {
    case 'load':
      return load(msg);
    case 'classify': {
      const out = [];
      for (let i = 0; i < msg.texts.length; i += CHUNK) {
        if (cancelled.has(msg.id)) return null;
        out.push(...(await wasm.classifyTexts(msg.texts.slice(i, i + CHUNK), !!msg.spans)));
        // Let a cancel message in between chunks.
        await new Promise((r) => setTimeout(r, 0));
      }
      return out;
    }
    case 'explain':
      return wasm.explainText(msg.text);
    case 'fineTune':
      return fineTune(msg);
    case 'savedFineTune':
      return savedFineTune();
    case 'discardFineTune':
      return dropCheckpoints();
    case 'exportBundle':
      return wasm.exportBundle();
    case 'dispose':
      wasm.disposeModel();
      return null;
    default:
      throw new Error(`unknown request '${msg.op}'`);
  }
}

// A fine-tuning run, a step at a time (tuning/mod.rs): progress after each step, a
// cancel let in before each. The model before stays current until the run ends, so
// a cancel or a failure leaves it working. With `msg.checkpoint` ({ steps, seconds }:
// whichever comes first) the run is kept in IndexedDB as it goes (tuning-store.js),
// and the same run started again (same model, examples and settings: after a reload,
// `resume: true` takes them from the kept record) goes on from its last checkpoint.
// A checkpoint that cannot be written (a full quota, WebGPU) stops the checkpoints,
// not the run, and the progress and the report say why.
async function fineTune(msg) {
  const progress = (p) => self.postMessage({ id: msg.id, progress: p });
  const t0 = performance.now();
  let { examples, settings } = msg;
  settings ??= {};
  let saved = null;
  if (msg.resume) {
    saved = await keptCheckpoint();
    if (!saved || saved.model !== modelKey) throw new Error('there is no kept fine-tuning run of this model to resume');
    ({ examples, settings } = saved);
  }
  progress({ stage: 'prepare', step: 0, steps: 0 });
  let key = msg.checkpoint && modelKey ? await runKey(modelKey, examples, settings) : null;
  const started = await wasm.fineTuneStart(examples, settings);
  let from = 0;
  let warning = null;
  try {
    if (key) {
      saved ??= await keptCheckpoint().catch(() => null);
      if (saved?.key === key) {
        try {
          from = wasm.fineTuneRestore(saved.state);
        } catch (e) {
          // A record that does not restore (from another version of the library, say)
          // is dropped: the run starts from the beginning and says so.
          warning = `the kept checkpoint of step ${saved.step} could not be restored (${message(e)}), so the run started again`;
          await dropCheckpoints().catch(() => {});
        }
      }
    }
    const tTrain = performance.now();
    let samples = 0;
    let lastSaved = tTrain;
    const every = msg.checkpoint ?? {};
    for (let s = from; s < started.steps; s++) {
      await new Promise((r) => setTimeout(r, 0));
      if (cancelled.has(msg.id)) {
        wasm.fineTuneCancel();
        if (key) await dropCheckpoints().catch(() => {});
        return null;
      }
      const st = await wasm.fineTuneStep();
      samples += st.samples;
      const seconds = (performance.now() - tTrain) / 1000;
      const due = (every.steps && st.step % every.steps === 0) || (every.seconds && performance.now() - lastSaved >= every.seconds * 1000);
      if (key && due && st.step < st.steps) {
        try {
          const state = wasm.fineTuneSnapshot();
          await saveCheckpoint({ key, model: modelKey, examples, settings, step: st.step, steps: st.steps, state, savedAt: Date.now() });
          lastSaved = performance.now();
        } catch (e) {
          warning = `checkpoints stopped at step ${st.step}: ${message(e)}`;
          console.warn(`bert-sentiment: ${warning}`);
          key = null;
        }
      }
      progress({
        stage: 'train',
        step: st.step,
        steps: st.steps,
        epoch: st.epoch,
        loss: st.loss,
        samplesPerSecond: samples / seconds,
        etaSeconds: ((started.steps - st.step) * seconds) / (st.step - from),
        checkpoint: key && due ? st.step : undefined,
        warning: warning ?? undefined,
      });
    }
    const trainSeconds = (performance.now() - tTrain) / 1000;
    progress({ stage: 'finish', step: started.steps, steps: started.steps });
    const done = await wasm.fineTuneFinish();
    if (msg.checkpoint) await dropCheckpoints().catch(() => {});
    // The fine-tuned model is the current one: its checkpoints are named after its files
    // (which the page keeps and opens again after a reload).
    modelKey = await keyOfFiles(await wasm.exportBundle(), null);
    return {
      before: started.before,
      after: done.after,
      steps: started.steps,
      resumedFrom: from,
      examples: { train: started.train, validation: started.validation },
      seconds: (performance.now() - t0) / 1000,
      samplesPerSecond: samples / trainSeconds,
      temperature: done.temperature,
      exponent: done.exponent,
      warning: warning ?? undefined,
    };
  } catch (e) {
    wasm.fineTuneCancel();
    throw e;
  }
}

// The kept fine-tuning run of the current model: { step, steps, examples, settings,
// savedAt } (`examples`: how many), or null.
async function savedFineTune() {
  const saved = modelKey ? await keptCheckpoint() : null;
  if (!saved || saved.model !== modelKey) return null;
  return { step: saved.step, steps: saved.steps, examples: saved.examples.length, settings: saved.settings, savedAt: saved.savedAt };
}

async function load(msg) {
  const progress = (stage, file, loaded, total) =>
    self.postMessage({ id: msg.id, progress: { stage, file, loaded, total } });
  let files = msg.source.files;
  let base = '';
  let urls = null;
  let downloaded = null;
  if (!files) {
    base = new URL(msg.source.url, msg.source.from).href;
    if (!base.endsWith('/')) base += '/';
    // The module finishes compiling meanwhile.
    downloaded = download(base, msg.offlineCache, progress);
    downloaded.catch(() => {});
  }
  // Where the CPU may run the model on several threads: the threaded module, which
  // decides the engine itself and, when that is the CPU, starts its pool, all while
  // the bundle downloads, without waiting for the single-threaded module (which the
  // page compiles). Where the engine turns out to be WebGPU, the single-threaded
  // module takes over and the threaded one is dropped.
  const threaded = msg.threads > 1 && msg.engine !== 'webgpu' ? threadedEngine(msg.engine, msg.threads) : null;
  const pool = threaded && (await threaded);
  if (pool?.module) {
    wasm = pool.module;
  } else {
    if (pool && !pool.ok) {
      if (msg.strictThreads) throw new Error(`threads ${msg.threads}: ${pool.error}`);
      console.warn(`bert-sentiment: running on one thread (${pool.error})`);
    }
    wasm = await singleModule(); // a failed start wins over a download error
  }
  let known = null;
  if (downloaded) ({ files, urls, known } = await downloaded);
  const hashes = digests(files, known);
  hashes.catch(() => {});
  progress('build', null, 0, 0);
  let info;
  try {
    info = await wasm.openModel(files, msg.engine, await hashes);
  } catch (e) {
    // Errors name the file; say where it came from too.
    throw new Error(base ? `${base}${message(e)}` : message(e));
  }
  modelKey = await keyOfFiles(files, await hashes);
  // Only now: openModel checked every file against the manifest's SHA-256. In the
  // background: the model is ready, whether or not its offline copy is.
  if (urls && msg.offlineCache) keepOffline(msg.offlineCache, base, files, urls);
  return info;
}

// The threaded module (the CPU engine on `n` threads: rayon's pool, Web Workers
// sharing its memory), started: `{ ok: true, module }` once it runs its pool, where
// `engine` will be the CPU; `{ ok: true, module: null }` where it will be WebGPU,
// which that module does not have (wgpu's browser types cannot be shared between
// threads); `{ ok: false, error }` when it cannot run. It needs shared memory (a
// cross-origin-isolated page) and relaxed SIMD. Never a rejection, since it runs
// beside the download, whose errors come first.
async function threadedEngine(engine, n) {
  try {
    if (!self.crossOriginIsolated) throw new Error('the page is not cross-origin isolated, so it has no shared memory');
    if (!globalThis.bertSentimentWasmDir.includes('relaxed')) throw new Error('this browser has no relaxed SIMD, which the threaded module uses');
    const dir = new URL('../threads/', import.meta.url);
    const [threaded, module] = await Promise.all([import(new URL('web.js', dir)), compileWasm(new URL('web_bg.wasm', dir))]);
    await threaded.default({ module_or_path: module });
    if ((await threaded.chooseEngine(engine)) !== 'cpu') return { ok: true, module: null };
    await threaded.initThreadPool(n);
    return { ok: true, module: threaded };
  } catch (e) {
    return { ok: false, error: message(e) };
  }
}

// Each file's SHA-256 (hex), computed natively by the browser, for openModel's check
// against the manifest (hashing 20 MB in wasm takes a quarter of a second); none where
// WebCrypto is missing (an insecure origin), and the module hashes the files itself.
// `known`: the digests the download computed already (of the files kept offline).
async function digests(files, known) {
  if (!globalThis.crypto?.subtle) return undefined;
  const out = new Map(known || []);
  await Promise.all([...files].filter(([name]) => !out.has(name)).map(async ([name, bytes]) => {
    out.set(name, await sha256(bytes));
  }));
  return out;
}

// What names a model for fine-tuning checkpoints: the SHA-256s of its files (`known`:
// those computed already); null without WebCrypto.
async function keyOfFiles(files, known) {
  const d = await digests(files, known);
  return d ? runKey('bundle', [...d].sort(), null) : null;
}

// The hex SHA-256 naming a fine-tuning run: the model it starts from, its examples and
// settings (the same three make the same run again).
function runKey(model, examples, settings) {
  return sha256(new TextEncoder().encode(JSON.stringify([model, examples, settings])));
}

// The SHA-256 of `bytes` in hex, as the manifest writes it; null without WebCrypto.
async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Put a downloaded, verified bundle into Cache Storage under the URLs it came from
// (a service worker that answers from `caches.match` then serves it offline), and
// drop the files of older versions of the same bundle. A file kept already is not
// written again (its URL carries its hash); the manifest is. Offline copies are a
// convenience: a full disk or a browser without Cache Storage leaves the loaded model
// working.
async function keepOffline(cacheName, base, files, urls) {
  try {
    const cache = await caches.open(cacheName);
    const keep = new Set(urls.values());
    for (const request of await cache.keys()) {
      if (request.url.startsWith(base) && !keep.has(request.url)) await cache.delete(request);
    }
    for (const [name, url] of urls) {
      if (name !== 'manifest.json' && (await cache.match(url))) continue;
      const type = name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      await cache.put(url, new Response(files.get(name), { headers: { 'Content-Type': type } }));
    }
  } catch (e) {
    console.warn(`bert-sentiment: the model was not kept for offline use (${message(e)})`);
  }
}

// A file of this bundle's version kept offline already, read straight from Cache
// Storage (`cacheName`): a warm start then skips the service worker's round trip,
// which took five times as long for the 19 MB weights. `null` when it is not there.
// Its bytes are checked against the manifest's SHA-256 here: a kept copy that no
// longer matches (a storage fault, a write cut short) is dropped, so the caller
// downloads the file again instead of every later start failing on the same copy.
// `{ bytes, digest }`: `digest` is null where WebCrypto is missing (openModel then
// checks the bytes itself).
async function kept(cacheName, url, expected) {
  if (!cacheName || !globalThis.caches) return null;
  try {
    const cache = await caches.open(cacheName);
    const hit = await cache.match(url);
    if (!hit?.ok) return null;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    const digest = await sha256(bytes);
    if (digest && digest !== expected) {
      console.warn(`bert-sentiment: the offline copy of ${url} has SHA-256 ${digest}, not the manifest's ${expected}; downloading it again`);
      await cache.delete(url);
      return null;
    }
    return { bytes, digest };
  } catch {
    return null;
  }
}

// manifest.json, then every file it lists, with byte progress over the whole bundle.
async function download(base, cacheName, progress) {
  const manifestUrl = `${base}manifest.json`;
  progress('download', 'manifest.json', 0, 0);
  const manifestBytes = new Uint8Array(await (await fetchOk(manifestUrl, { cache: 'no-cache' })).arrayBuffer());
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw new Error(`${manifestUrl}: not a web bundle manifest (${message(e)})`);
  }
  if (!Array.isArray(manifest.files)) throw new Error(`${manifestUrl}: no "files" list`);
  const total = manifest.files.reduce((sum, f) => sum + (f.bytes || 0), 0);
  const files = new Map([['manifest.json', manifestBytes]]);
  const urls = new Map([['manifest.json', manifestUrl]]);
  // The files download side by side (a warm start reads them from the cache, where
  // one after another only adds waits); progress at most every 50 ms, and once per
  // finished file, since each message wakes the page's main thread.
  let loaded = 0;
  let reported = 0;
  const report = (name, force) => {
    const now = performance.now();
    if (!force && now - reported < 50) return;
    reported = now;
    progress('download', name, loaded, total);
  };
  const fetched = await Promise.all(manifest.files.map(async (f) => {
    // The hash in the URL makes each model version its own cache entry (as the page).
    const url = `${base}${f.name}?v=${String(f.sha256).slice(0, 16)}`;
    const offline = await kept(cacheName, url, f.sha256);
    if (offline) {
      loaded += offline.bytes.length;
      report(f.name, true);
      return { name: f.name, bytes: offline.bytes, url, digest: offline.digest };
    }
    const response = await fetchOk(url);
    const reader = response.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      loaded += value.length;
      report(f.name, false);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    report(f.name, true);
    return { name: f.name, bytes, url };
  }));
  const known = new Map();
  for (const { name, bytes, url, digest } of fetched) {
    files.set(name, bytes);
    urls.set(name, url);
    if (digest) known.set(name, digest);
  }
  return { files, urls, known };
}

// Requests are taken from now on (each starts the module it needs); `locked` tells
// the library whether it can watch this worker's life through the lock.
locking.then(() => self.postMessage({ ready: true, locked }));
