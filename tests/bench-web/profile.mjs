// Where the page's CPU engine spends one review's time: classifies the ~230-word review of
// bench.mjs N times under Chromium's sampling profiler (CDP) and prints self time per
// function. Build the page with its function names kept to read them:
//   CARGO_PROFILE_WEB_RELEASE_STRIP=false cargo xtask build-web   # into $CARGO_TARGET_DIR/dist
//   python3 tools/bench_texts.py 64 7 /tmp/texts.jsonl
//   DIST=$CARGO_TARGET_DIR/dist TEXTS=/tmp/texts.jsonl node tests/bench-web/profile.mjs
// (dist/ holds the plain simd128 module; the relaxed-SIMD one is dist/relaxed/.)
// "(idle)" is the time between runs, outside the figure the page shows.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
const DIST = process.env.DIST, TEXTS = process.env.TEXTS, N = Number(process.env.N || 5);
const reviews = readFileSync(TEXTS, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const words = (t) => t.split(/\s+/).filter(Boolean).length;
const one = reviews.reduce((a, b) => (Math.abs(words(b.text) - 230) < Math.abs(words(a.text) - 230) ? b : a));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css' };
const server = createServer((req, res) => {
  let file = join(DIST, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
  if (!existsSync(file)) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
  createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
const page = await (await browser.newContext()).newPage();
await page.goto(`http://127.0.0.1:${server.address().port}/`);
await page.waitForSelector('.model .ready, .model .error', { timeout: 300000 });
const classify = async () => {
  await page.fill('#review', one.text);
  await page.click('#classify');
  await page.waitForFunction(() => { const b = document.querySelector('#classify'); return document.querySelector('[data-testid=label]') && b && !b.disabled; }, null, { timeout: 300000 });
  return await page.innerText('[data-testid=meta]');
};
await classify(); await classify();
const cdp = await page.context().newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
await cdp.send('Profiler.start');
const metas = [];
for (let i = 0; i < N; i++) metas.push(await classify());
const { profile } = await cdp.send('Profiler.stop');
console.log('meta:', metas.join(' | '));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
const dt = profile.timeDeltas;
profile.samples.forEach((id, i) => {
  const n = byId.get(id); const name = n.callFrame.functionName || `(${n.callFrame.url.split('/').pop()})`;
  const t = dt[i + 1] ?? 0; self.set(name, (self.get(name) || 0) + t); total += t;
});
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP || 35));
for (const [name, t] of rows) console.log(`${(100 * t / total).toFixed(1).padStart(5)}%  ${(t / 1000 / N).toFixed(1).padStart(7)} ms/run  ${name.slice(0, 140)}`);
await browser.close(); server.close();
