// Browser benchmark: this project's page engine against Transformers.js, same model, same
// headless Chromium, same machine. Run through `cargo xtask bench-web`, which builds the page,
// exports the release model to ONNX (tools/export_onnx.py) and sets:
//   DIST      the built page (served at /)
//   MODELS    a folder holding release/{config.json, tokenizer*.json, onnx/*.onnx} (at /models/)
//   F32_MODEL the release model exported again with `--dtype f32` (our page at /f32/ loads it)
//   TEXTS     JSONL of IMDb test reviews (tools/bench_texts.py 64 7: the reference's sample)
//   ARTIFACTS where bench-web.json goes
// Precision classes are compared like with like: our page on the f32 export (f32 products)
// against Transformers.js fp32, and on the int8 release export (int8 products, see
// model-core/src/kernels/quantized.rs) against Transformers.js q8.
// Our page runs in both its module builds: the relaxed-SIMD one (what Chromium, and so these
// figures' headline, gets) and the plain simd128 one (browsers without relaxed SIMD).
// THREADS (default 1): both sides on that many threads. With 1 the pages are served without
// COOP/COEP (not cross-origin isolated: our library runs its single-threaded module) and ORT
// Web is told numThreads = 1; with more, the pages are isolated, our library's 'auto' takes
// every core (the threaded module; `navigator.hardwareConcurrency` must equal THREADS) and
// ORT Web gets numThreads = THREADS. Figures, per engine: the latency of one ~230-word review (median of REPS
// runs after a warm-up) and the wall time for the 64 reviews. Rounds alternate the engines so
// noise on the shared machine hits both.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const { DIST, MODELS, TEXTS, F32_MODEL } = process.env;
const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const REPS = Number(process.env.REPS || 10);
const ROUNDS = Number(process.env.ROUNDS || 2);
const WEBGPU = process.env.WEBGPU !== '0';
const THREADS = Number(process.env.THREADS || 1);
const ISOLATION = THREADS > 1 ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
for (const [k, v] of Object.entries({ DIST, MODELS, TEXTS, F32_MODEL })) {
  if (!v || !existsSync(v)) {
    console.error(`${k} is not set or missing (${v}): run \`cargo xtask bench-web\``);
    process.exit(2);
  }
}
mkdirSync(ARTIFACTS, { recursive: true });

const reviews = readFileSync(TEXTS, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const words = (t) => t.split(/\s+/).filter(Boolean).length;
// The one review: the sample's review closest to 230 words.
const one = reviews.reduce((a, b) => (Math.abs(words(b.text) - 230) < Math.abs(words(a.text) - 230) ? b : a));
const many = reviews.map((r) => r.text);

// One origin for everything: our page, the Transformers.js page, its library, ORT's wasm, the models.
const ROUTES = [
  ['/tjs/', join(HERE, 'page')],
  ['/transformers/', join(HERE, 'node_modules/@huggingface/transformers/dist')],
  ['/ort/', join(HERE, 'node_modules/onnxruntime-web/dist')],
  ['/models/', MODELS],
  ['/f32/model/', F32_MODEL],
  ['/f32/', DIST],
  // The page as a browser without relaxed SIMD gets it: its relaxed/ module answers 404, so
  // static/boot.js falls back to the plain simd128 build.
  ['/plain/relaxed/', join(HERE, 'no-such-dir')],
  ['/plain/f32/relaxed/', join(HERE, 'no-such-dir')],
  ['/plain/f32/model/', F32_MODEL],
  ['/plain/f32/', DIST],
  ['/plain/', DIST],
  ['/', DIST],
];
const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
};
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const [prefix, root] = ROUTES.find(([p]) => path.startsWith(p));
  let file = normalize(join(root, path.slice(prefix.length)));
  if (!file.startsWith(normalize(root))) { res.writeHead(403); res.end(); return; }
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
  if (!existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache', ...ISOLATION });
  createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--enable-unsafe-webgpu'],
  });
  // No service worker: ours would add COOP/COEP to every response (so that static hosts get
  // threads), which would isolate the page whatever THREADS says.
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, serviceWorkers: 'block' });
  const foreign = [];
  context.on('request', (r) => { if (!r.url().startsWith(origin) && !/^(data|blob):/.test(r.url())) foreign.push(r.url()); });
  return { browser, context, foreign };
}

async function waitReady(page) {
  await page.waitForSelector('.model .ready, .model .error', { timeout: 300_000 });
  const err = await page.$('.model .error');
  if (err) throw new Error(`model failed to load: ${await err.innerText()}`);
}

/// Counts WebGPU compute dispatches and queue submits in the worker it is evaluated in
/// or page (once each), into `self.__gpu`: ours in the library's worker, Transformers.js's
/// in its page (page/tjs.js reads it).
const COUNT_GPU = () => {
  if (self.__gpu || !self.GPUComputePassEncoder) return;
  const gpu = (self.__gpu = { dispatches: 0, submits: 0 });
  for (const name of ['dispatchWorkgroups', 'dispatchWorkgroupsIndirect']) {
    const f = GPUComputePassEncoder.prototype[name];
    GPUComputePassEncoder.prototype[name] = function (...a) { gpu.dispatches++; return f.apply(this, a); };
  }
  const submit = GPUQueue.prototype.submit;
  GPUQueue.prototype.submit = function (...a) { gpu.submits++; return submit.apply(this, a); };
};

/// Our page: classify `one` REPS times (the latency the page itself shows), then the 64 reviews
/// through batch mode (a JSONL file), timed until the page says the last one is classified.
async function ours(context, engine, reps, count = reviews.length, base = '/') {
  const page = await context.newPage();
  await page.goto(`${origin}${base}`);
  await waitReady(page);
  if (engine === 'webgpu') {
    await page.selectOption('#engine', 'webgpu');
    await page.waitForFunction(() => document.querySelector('[data-testid=engine]').innerText === 'WebGPU', null, { timeout: 300_000 });
    await waitReady(page);
  }
  const classify = async () => {
    await page.fill('#review', one.text);
    await page.click('#classify');
    await page.waitForFunction(() => { const b = document.querySelector('#classify'); return document.querySelector('[data-testid=label]') && b && !b.disabled; }, null, { timeout: 300_000 });
    const meta = await page.innerText('[data-testid=meta]');
    return { label: await page.innerText('[data-testid=label]'), ms: Number(meta.match(/^(\d+(?:\.\d+)?) ms/)[1]) };
  };
  const engineLabel = await page.innerText('[data-testid=engine]');
  const threads = await page.$('[data-testid=threads]');
  const threadsLabel = threads ? await threads.innerText() : null;
  if (engine !== 'webgpu' && threadsLabel !== (THREADS === 1 ? '1 thread' : `${THREADS} threads`)) {
    throw new Error(`our page runs ${threadsLabel}, not THREADS=${THREADS} (navigator.hardwareConcurrency must equal it)`);
  }
  const first = await classify();
  // WebGPU work for one review: our model runs in the library's worker, so count there.
  let gpuPerReview = null;
  if (engine === 'webgpu') {
    for (const w of page.workers()) await w.evaluate(COUNT_GPU).catch(() => {});
    const totals = async () => (await Promise.all(page.workers().map((w) => w.evaluate(() => self.__gpu ?? { dispatches: 0, submits: 0 }).catch(() => ({ dispatches: 0, submits: 0 })))))
      .reduce((a, b) => ({ dispatches: a.dispatches + b.dispatches, submits: a.submits + b.submits }));
    const before = await totals();
    await classify();
    const after = await totals();
    gpuPerReview = { dispatches: after.dispatches - before.dispatches, submits: after.submits - before.submits };
  }
  const single = [];
  for (let i = 0; i < reps; i++) single.push((await classify()).ms);
  const subset = reviews.slice(0, count);
  const file = subset.map((r) => JSON.stringify(r)).join('\n');
  // Every page of this origin shares the results database, and opening the same file
  // with the same model goes on from the kept run: clear it so each run classifies all.
  const clear = await page.$('#clear-results');
  if (clear && (await clear.isEnabled())) {
    await page.click('#clear-results');
    await page.waitForFunction(() => (document.querySelector('[data-testid=batch-status]')?.dataset.done ?? '0') === '0', null, { timeout: 60_000 });
  }
  const t0 = Date.now();
  await page.setInputFiles('#batch-file', { name: 'reviews.jsonl', mimeType: 'application/json', buffer: Buffer.from(file) });
  // Done when the batch status says every review is classified (the table shows one page of 50).
  await page.waitForFunction((n) => {
    const s = document.querySelector('[data-testid=batch-status]');
    return s && s.dataset.finished === 'true' && s.dataset.done === String(n);
  }, subset.length, { timeout: 1_800_000 });
  const manyMs = Date.now() - t0;
  await page.close();
  return {
    single_ms: single, single_median_ms: median(single), many_ms: manyMs,
    many: subset.length, many_reviews_per_s: subset.length / (manyMs / 1000), one_label: first.label, engine: engineLabel, threads: threadsLabel,
    gpu_per_review: gpuPerReview,
  };
}

async function tjs(context, device, dtype, reps, count = many.length) {
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  await page.goto(`${origin}/tjs/tjs.html?threads=${THREADS}`);
  await page.waitForFunction(() => window.tjsReady === true, null, { timeout: 60_000 });
  if (device === 'webgpu') await page.evaluate(COUNT_GPU);
  try {
    const r = await page.evaluate((a) => window.benchTjs(a), { device, dtype, one: one.text, many: many.slice(0, count), reps });
    return { ...r, many: count };
  } catch (e) {
    return { error: String(e).slice(0, 500), console: logs.slice(-5) };
  } finally {
    await page.close();
  }
}

const runs = [];
const { browser, context, foreign } = await launch();
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, fn] of [
    ['ours cpu fp32 (f32 export, f32 products)', () => ours(context, 'cpu', REPS, reviews.length, '/f32/')],
    ['transformers.js wasm fp32', () => tjs(context, 'wasm', 'fp32', REPS)],
    ['ours cpu int8 (int8 export, int8 products)', () => ours(context, 'cpu', REPS)],
    ['transformers.js wasm q8', () => tjs(context, 'wasm', 'q8', REPS)],
    ['plain simd128 module: ours cpu fp32', () => ours(context, 'cpu', REPS, reviews.length, '/plain/f32/')],
    ['plain simd128 module: ours cpu int8', () => ours(context, 'cpu', REPS, reviews.length, '/plain/')],
  ]) {
    const r = await fn();
    runs.push({ round, name, ...r });
    console.log(JSON.stringify({ round, name, engine: r.engine, single_median_ms: r.single_median_ms, many_ms: r.many_ms, error: r.error }));
  }
}
if (WEBGPU) {
  // Headless Chromium's WebGPU adapter here is SwiftShader (software, seconds per review):
  // two repetitions and the first WEBGPU_MANY reviews only.
  const n = Number(process.env.WEBGPU_MANY || 8);
  for (const [name, fn] of [
    ['ours webgpu (int8 export, f32 on the GPU)', () => ours(context, 'webgpu', 2, n)],
    ['transformers.js webgpu fp32', () => tjs(context, 'webgpu', 'fp32', 2, n)],
  ]) {
    const r = await fn();
    runs.push({ round: 1, name, ...r });
    console.log(JSON.stringify({ name, single_median_ms: r.single_median_ms, many_ms: r.many_ms, gpu_per_review: r.gpu_per_review, error: r.error }));
  }
}
await browser.close();
server.close();

const by = (name) => runs.filter((r) => r.name.startsWith(name) && !r.error);
const summary = {};
for (const name of [...new Set(runs.map((r) => r.name))]) {
  const rs = runs.filter((r) => r.name === name && !r.error);
  summary[name] = rs.length
    ? { single_median_ms: median(rs.map((r) => r.single_median_ms)), many_reviews_per_s: median(rs.map((r) => r.many_reviews_per_s)) }
    : { error: runs.find((r) => r.name === name).error };
  if (rs[0]?.gpu_per_review) summary[name].gpu_per_review = rs[0].gpu_per_review;
}
// Ratios per round (ours / theirs for latency: below 1 means ours is faster).
const ratios = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const [ours, dtype] of [['fp32', 'fp32'], ['int8', 'q8']]) {
    const o = by(`ours cpu ${ours}`).find((r) => r.round === round);
    const t = by(`transformers.js wasm ${dtype}`).find((r) => r.round === round);
    if (o && t) ratios.push({ round, ours, vs: `wasm ${dtype}`, latency_ratio: o.single_median_ms / t.single_median_ms, throughput_ratio: o.many_reviews_per_s / t.many_reviews_per_s });
  }
}
const report = {
  date: new Date().toISOString(), chromium: CHROMIUM, one_review_words: words(one.text), reviews: reviews.length,
  reps: REPS, rounds: ROUNDS, threads: THREADS, summary, ratios, foreign_requests: foreign, runs,
};
writeFileSync(join(ARTIFACTS, 'bench-web.json'), JSON.stringify(report, null, 2));
console.log(JSON.stringify({ summary, ratios }, null, 2));
if (foreign.length) {
  console.error(`requests left the origin: ${foreign.join(', ')}`);
  process.exit(1);
}
