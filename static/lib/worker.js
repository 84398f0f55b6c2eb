// The Web Worker behind SentimentClassifier (bert-sentiment.js): it holds the model
// and answers one request at a time, so the page that uses the library never blocks.
//
// Protocol (structured-clone messages):
//   in:  { id, op: 'load', source: { url } | { files: Map<name, Uint8Array> }, engine }
//        { id, op: 'classify', texts, spans }   { id, op: 'explain', text }   { op: 'cancel', id }
//   out: { ready: true } once started;
//        { id, progress: { stage, file, loaded, total } } while loading;
//        { id, ok: true, value, info } or { id, ok: false, error } for each request
//        (`info`: the model's description after it, when a model is loaded).
// Requests queue; a cancelled one is dropped before it starts, and a running
// classification stops between its chunks. A Web Lock held for the worker's whole
// life lets the library notice at once when the worker dies, however it dies.
import '../wasm-features.js';
import './gpu-watch.js';

const CHUNK = 16; // texts per model call: a cancel never waits longer than one chunk

const lockName = new URL(self.location.href).searchParams.get('lock');
let wasm = null;
const queue = [];
const cancelled = new Set();
let running = false;

async function start() {
  if (lockName && self.navigator.locks) {
    // Held until this worker ends (never released otherwise).
    self.navigator.locks.request(lockName, () => new Promise(() => {}));
  }
  const root = new URL('../', import.meta.url);
  let dir = new URL(globalThis.bertSentimentWasmDir, root);
  try {
    wasm = await import(new URL('web.js', dir));
  } catch (e) {
    if (dir.href === root.href) throw e;
    dir = root;
    wasm = await import(new URL('web.js', dir));
  }
  await wasm.default({ module_or_path: new URL('web_bg.wasm', dir) });
}

const started = start();

self.onmessage = (event) => {
  const msg = event.data;
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
      await started;
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
    case 'dispose':
      wasm.disposeModel();
      return null;
    default:
      throw new Error(`unknown request '${msg.op}'`);
  }
}

async function load(msg) {
  const progress = (stage, file, loaded, total) =>
    self.postMessage({ id: msg.id, progress: { stage, file, loaded, total } });
  let files = msg.source.files;
  let base = '';
  if (!files) {
    base = new URL(msg.source.url, msg.source.from).href;
    if (!base.endsWith('/')) base += '/';
    files = await download(base, progress);
  }
  progress('build', null, 0, 0);
  try {
    return await wasm.openModel(files, msg.engine);
  } catch (e) {
    // Errors name the file; say where it came from too.
    throw new Error(base ? `${base}${message(e)}` : message(e));
  }
}

async function fetchOk(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${url}: network error (${message(e)})`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

// manifest.json, then every file it lists, with byte progress over the whole bundle.
async function download(base, progress) {
  const manifestUrl = `${base}manifest.json`;
  progress('download', 'manifest.json', 0, 0);
  const manifestBytes = new Uint8Array(await (await fetchOk(manifestUrl)).arrayBuffer());
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw new Error(`${manifestUrl}: not a web bundle manifest (${message(e)})`);
  }
  if (!Array.isArray(manifest.files)) throw new Error(`${manifestUrl}: no "files" list`);
  const total = manifest.files.reduce((sum, f) => sum + (f.bytes || 0), 0);
  const files = new Map([['manifest.json', manifestBytes]]);
  let loaded = 0;
  for (const f of manifest.files) {
    // The hash in the URL makes each model version its own cache entry (as the page).
    const url = `${base}${f.name}?v=${String(f.sha256).slice(0, 16)}`;
    const response = await fetchOk(url);
    const reader = response.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      progress('download', f.name, loaded + size, total);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    loaded += size;
    files.set(f.name, bytes);
  }
  return files;
}

started.then(
  () => self.postMessage({ ready: true }),
  (e) => self.postMessage({ ready: false, error: `the model's WebAssembly module did not start: ${message(e)}` }),
);
