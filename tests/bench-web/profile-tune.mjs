// Where `clf.fineTune` spends its time in the page: runs a short MiniLM fine-tune (IMDb
// training reviews, max length 128, batch 16) in headless Chromium under the sampling
// profiler of every worker (the library's worker and, on the threaded module, rayon's
// pool), and prints self time per wasm function, summed over the workers.
// The threaded module keeps its function names; the single-threaded ones are stripped.
//   cargo xtask serve --no-build --port 8080 &          # after `cargo xtask build-web`
//   PAGE=http://127.0.0.1:8080/ THREADS=2 node --experimental-websocket tests/bench-web/profile-tune.mjs
// EXAMPLES (default 128: one epoch, a sixteenth held out), ENGINE=webgpu, SETTINGS (JSON over
// the fineTune settings, e.g. {"layers":"head","maxLen":32}), FRAMES=regex (time
// inside the matching functions, on the thread that called them), TOP (rows printed).
// Needs Node's WebSocket (Node 22, or 20 with --experimental-websocket): Playwright's CDP
// sessions do not reach a page's workers, so this talks to Chromium's DevTools port.
import { chromium } from 'playwright-core';
import { imdbReviews, ARCHIVE } from '../e2e/imdb.mjs';

const PAGE = process.env.PAGE || 'http://127.0.0.1:8080/';
const THREADS = Number(process.env.THREADS || 2);
// ENGINE=webgpu: the page's WebGPU engine (SwiftShader here: there is no GPU).
const ENGINE = process.env.ENGINE || 'cpu';
const EXAMPLES = Number(process.env.EXAMPLES || 128);
const PORT = 9333;
const train = imdbReviews(ARCHIVE, 'train');
const examples = Array.from({ length: EXAMPLES }, (_, i) => train[Math.floor((i * train.length) / EXAMPLES)]).map((r) => ({ text: r.text, label: r.label }));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', `--remote-debugging-port=${PORT}`, ...(ENGINE === 'webgpu' ? ['--enable-unsafe-webgpu'] : [])],
});
const page = await (await browser.newContext({ serviceWorkers: 'block' })).newPage();
await page.goto(new URL('tune-profile', PAGE).href);
await page.evaluate(async ({ threads, engine }) => {
  const lib = await import('/lib/bert-sentiment.js');
  self.clf = await lib.SentimentClassifier.load('/model/', { engine, threads });
  await self.clf.classify(['warm up']);
}, { threads: THREADS, engine: ENGINE });
console.log('engine:', JSON.stringify(await page.evaluate(() => [self.clf.info.engine, self.clf.info.threads])));

// Chromium's browser endpoint: attach to every worker, flat sessions.
const version = await (await fetch(`http://127.0.0.1:${PORT}/json/version`)).json();
const ws = new WebSocket(version.webSocketDebuggerUrl);
await new Promise((ok) => ws.addEventListener('open', ok));
let nextId = 1;
const waiting = new Map();
ws.addEventListener('message', (e) => {
  const m = JSON.parse(e.data);
  if (m.id && waiting.has(m.id)) {
    waiting.get(m.id)(m);
    waiting.delete(m.id);
  }
});
const send = (method, params = {}, sessionId) =>
  new Promise((ok, fail) => {
    const id = nextId++;
    waiting.set(id, (m) => (m.error ? fail(new Error(`${method}: ${m.error.message}`)) : ok(m.result)));
    ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
const { targetInfos } = await send('Target.getTargets');
const workers = targetInfos.filter((t) => t.type === 'worker');
console.log('workers:', workers.length);
const sessions = [];
for (const w of workers) {
  const { sessionId } = await send('Target.attachToTarget', { targetId: w.targetId, flatten: true });
  await send('Profiler.enable', {}, sessionId);
  await send('Profiler.setSamplingInterval', { interval: 500 }, sessionId);
  sessions.push(sessionId);
}
for (const s of sessions) await send('Profiler.start', {}, s);
const report = await page.evaluate(async ([examples, settings]) => {
  const r = await self.clf.fineTune(examples, { epochs: 1, learningRate: 1e-4, batchSize: 16, maxLen: 128, validation: 1 / 16, seed: 42, ...settings });
  return { steps: r.steps, seconds: r.seconds, samplesPerSecond: r.samplesPerSecond };
}, [examples, JSON.parse(process.env.SETTINGS || '{}')]);
console.log('fineTune:', JSON.stringify(report));
const self = new Map();
const inclusive = new Map();
const FRAMES = process.env.FRAMES ? new RegExp(process.env.FRAMES) : null;
let total = 0;
for (const s of sessions) {
  const { profile } = await send('Profiler.stop', {}, s);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const n of profile.nodes) for (const c of n.children || []) byId.get(c).parent = n.id;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id);
    const name = n.callFrame.functionName || `(${n.callFrame.url.split('/').pop()})`;
    const t = profile.timeDeltas[i + 1] ?? 0;
    self.set(name, (self.get(name) || 0) + t);
    if (name !== '(idle)' && name !== '(program)') total += t;
    // FRAMES: time inside each function whose name matches (on the thread that called it).
    const seen = new Set();
    for (let p = n; FRAMES && p; p = p.parent && byId.get(p.parent)) {
      const f = p.callFrame.functionName;
      if (FRAMES.test(f) && !seen.has(f)) {
        seen.add(f);
        inclusive.set(f, (inclusive.get(f) || 0) + t);
      }
    }
  });
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP || 45));
console.log(`busy time summed over workers: ${(total / 1e6).toFixed(1)} s`);
for (const [name, t] of rows) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1e6).toFixed(2).padStart(7)} s  ${name.slice(0, 150)}`);
for (const [name, t] of [...inclusive.entries()].sort((a, b) => b[1] - a[1])) console.log(`inside ${(t / 1e6).toFixed(2).padStart(7)} s  ${name.slice(0, 150)}`);
ws.close();
await browser.close();
