// Shared by the end-to-end tests (e2e.mjs: the page; library.mjs: the JS library):
// the browser, named steps with a summary, the test model, and the checks every
// test makes (no request leaves the origin, the main thread stays responsive).
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strict as assert } from 'node:assert';

export const PAGE_URL = process.env.PAGE_URL;
export const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!PAGE_URL) {
  console.error('PAGE_URL is not set: run `cargo xtask e2e`');
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });
export const origin = new URL(PAGE_URL).origin;

export const TINY = join(dirname(fileURLToPath(import.meta.url)), '../../model-core/tests/fixtures/tiny');

export const POSITIVE = 'This film was an absolute delight from start to finish. The acting was superb, the script was witty and moving, and the direction was flawless. One of the best movies I have seen in years; I loved every minute and will happily watch it again.';
export const NEGATIVE = 'What a dreadful waste of two hours. The plot made no sense, the acting was wooden and the dialogue was painfully bad. I was bored from the first scene and nearly walked out. Avoid this terrible movie at all costs.';

const BASE_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export const timings = {};
export const results = [];

/// Run one named step; a step that neither passes nor fails within `limitMs` (a
/// promise that never settles) fails instead of hanging the test.
export async function step(name, fn, limitMs = 300_000) {
  const t0 = Date.now();
  let timer;
  try {
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result after ${limitMs} ms`)), limitMs);
    });
    await Promise.race([fn(), limit]);
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: String(e && e.stack || e) });
    console.log(`FAIL ${name}\n${e && e.stack || e}`);
  } finally {
    clearTimeout(timer);
  }
}

export async function launch({ webgpu = true, serviceWorkers = 'allow', captureGpu = false } = {}) {
  const args = [...BASE_ARGS];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, serviceWorkers });
  if (captureGpu) {
    // Keep a handle on every GPUDevice the page creates, so a test can destroy it
    // (what a driver reset or a GPU process crash does to a real page).
    await context.addInitScript(() => {
      window.__gpuDevices = [];
      if (!self.GPUAdapter) return;
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...a) {
        const d = await request.apply(this, a);
        window.__gpuDevices.push(d);
        return d;
      };
    });
  }
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const consoleLines = [];
  context.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  // Bytes on the wire (headers and encoded bodies) of every finished request, the
  // service worker's included: what a visit costs its user.
  const wire = { bytes: 0, byUrl: new Map() };
  context.on('requestfinished', async (r) => {
    try {
      const s = await r.sizes();
      const n = s.requestHeadersSize + s.responseHeadersSize + s.responseBodySize;
      wire.bytes += n;
      const path = new URL(r.url()).pathname;
      wire.byUrl.set(path, (wire.byUrl.get(path) || 0) + n);
    } catch {}
  });
  return { browser, context, requests, consoleLines, wire };
}

/// Wait until the page's model has loaded (or failed to: then throw its message).
export async function waitReady(page, timeout = 240_000) {
  await page.waitForSelector('.model .ready, .model .error', { timeout });
  const err = await page.$('.model .error');
  if (err) throw new Error(`model failed to load: ${await err.innerText()}`);
}

export function assertSameOrigin(requests) {
  const foreign = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], `requests left the origin: ${foreign.join(', ')}`);
}

/// Watch the main thread from now on: its longest task (the Long Tasks API reports
/// every task over 50 ms; `task` is 0 when there was none) and the longest gap between
/// 20 ms timer ticks (`gap`: a task's length plus the tick, plus whatever else held
/// the thread up, such as the test's own polling on this 2-core machine).
export async function startHeartbeat(page) {
  await page.evaluate(() => {
    window.__gaps = [];
    window.__tasks = [];
    window.__longTasks?.disconnect();
    window.__longTasks = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__tasks.push(e.duration);
    });
    window.__longTasks.observe({ type: 'longtask' });
    let last = performance.now();
    window.__beat = setInterval(() => { const n = performance.now(); window.__gaps.push(n - last); last = n; }, 20);
  });
}
/// @returns {Promise<{task: number, gap: number}>} milliseconds, rounded
export async function stopHeartbeat(page) {
  return page.evaluate(async () => {
    // Long-task entries arrive after their task: let the last ones in.
    await new Promise((r) => setTimeout(r, 100));
    clearInterval(window.__beat);
    window.__longTasks.takeRecords().forEach((e) => window.__tasks.push(e.duration));
    window.__longTasks.disconnect();
    return { task: Math.round(Math.max(0, ...window.__tasks)), gap: Math.round(Math.max(0, ...window.__gaps)) };
  });
}

/// A web bundle of the tiny fine-tuned test model, as `trainer export --format web`
/// would write it, for the "Use your own model" picker.
export function tinyBundle() {
  const files = ['config.json', 'tokenizer.json', 'model.safetensors'].map((name) => {
    const buffer = readFileSync(join(TINY, 'finetuned', name));
    return { name, buffer, bytes: buffer.length, sha256: createHash('sha256').update(buffer).digest('hex') };
  });
  const manifest = {
    format: 'bert-sentiment-web/1', labels: ['negative', 'positive'], max_len: 64, truncation: 'head',
    weights: 'model.safetensors', dtype: 'f32',
    files: files.map(({ name, bytes, sha256 }) => ({ name, bytes, sha256 })),
    metrics: null, training: { note: 'tiny test model' },
  };
  return [
    { name: 'manifest.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(manifest)) },
    ...files.map(({ name, buffer }) => ({ name, mimeType: 'application/octet-stream', buffer })),
  ];
}

/// Write the timings and results to ARTIFACTS/`name`.json, print them, and exit
/// non-zero when a step failed.
export function finish(name) {
  writeFileSync(join(ARTIFACTS, `${name}.json`), JSON.stringify({ timings, results }, null, 2));
  console.log(JSON.stringify(timings));
  const failed = results.filter((r) => !r.ok).length;
  if (failed) {
    console.log(`${failed} step(s) failed`);
    process.exit(1);
  }
  console.log(`all ${results.length} steps passed`);
}

/// Resident memory of every Chromium renderer process (the page and its worker).
export function rendererRss() {
  if (!existsSync('/proc/self/status')) return null;
  let kb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      kb += Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    } catch {}
  }
  return Math.round(kb / 1024);
}

