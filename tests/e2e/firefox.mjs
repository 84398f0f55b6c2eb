// The page and the JS library's API checks (library-api.mjs) in headless Firefox,
// through geckodriver's WebDriver endpoint: the page loads its model and classifies,
// then the same library steps as in Chromium, so both are shown to work in both
// engines (Firefox: the CPU engine, no WebGPU). Run through
// `cargo xtask e2e` (PAGE_URL, ARTIFACTS, TEXTS, EXPECTED as for library.mjs), which
// skips it, saying so, without `firefox-esr` and `geckodriver`. GECKODRIVER and
// FIREFOX override their paths.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { NEGATIVE, PAGE_URL, finish, step } from './harness.mjs';
import { apiSteps } from './library-api.mjs';

const GECKODRIVER = process.env.GECKODRIVER || 'geckodriver';
const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
const TEXTS = readFileSync(process.env.TEXTS, 'utf8').split('\n').filter((l) => l !== '');
const EXPECTED = readFileSync(process.env.EXPECTED, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

/// A WebDriver session: JSON over HTTP, one command at a time.
class Session {
  /** @param {string} base  geckodriver's URL */
  constructor(base) {
    this.base = base;
    this.id = null;
    /** @type {string[]} */
    this.uploads = [];
  }

  async command(method, path, body) {
    const url = this.id ? `${this.base}/session/${this.id}${path}` : `${this.base}${path}`;
    const response = await fetch(url, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const { value } = await response.json();
    if (!response.ok) throw new Error(`WebDriver ${path}: ${value?.error}: ${value?.message}`);
    return value;
  }

  async start() {
    const value = await this.command('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'firefox',
          'moz:firefoxOptions': { binary: FIREFOX, args: ['-headless'] },
          timeouts: { script: 300_000, pageLoad: 60_000 },
        },
      },
    });
    this.id = value.sessionId;
  }

  goto(url) {
    return this.command('POST', '/url', { url });
  }

  /// Run `fn(arg)` in the page and return what its promise resolves to (as JSON);
  /// a rejection becomes an Error here. The function's source is part of the script,
  /// so the page's CSP (no eval) does not stand in the way.
  async evaluate(fn, arg) {
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => (${fn.toString()})(arguments[0])).then(
        (v) => done({ ok: true, v: v === undefined ? null : v }),
        (e) => done({ ok: false, e: String((e && e.stack) || e) }));`;
    const r = await this.command('POST', '/execute/async', { script, args: [arg === undefined ? null : arg] });
    if (!r.ok) throw new Error(r.e);
    return r.v;
  }

  /// Poll `fn()` in the page until it returns something truthy.
  async waitFor(fn, timeoutMs) {
    const t0 = Date.now();
    for (;;) {
      if (await this.evaluate(fn)) return;
      if (Date.now() - t0 > timeoutMs) throw new Error(`no result after ${timeoutMs} ms: ${fn}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /// Put `files` into the file input at `selector` (written to a temporary folder,
  /// kept until the session ends since Firefox reads them when the page does:
  /// WebDriver takes local paths, one per line).
  async upload(selector, files) {
    const dir = mkdtempSync(join(tmpdir(), 'bert-sentiment-upload-'));
    this.uploads.push(dir);
    const paths = files.map((f) => {
      const path = join(dir, f.name);
      writeFileSync(path, f.buffer);
      return path;
    });
    const { ['element-6066-11e4-a52e-4f735466cecf']: element } = await this.command('POST', '/element', { using: 'css selector', value: selector });
    await this.command('POST', `/element/${element}/value`, { text: paths.join('\n') });
  }

  async end() {
    if (this.id) await this.command('DELETE', '').catch(() => {});
    for (const dir of this.uploads) rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const port = 4444 + (process.pid % 1000);
  const driver = spawn(GECKODRIVER, ['--port', String(port), '--log', 'error'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(`${base}/status`);
      break;
    } catch (e) {
      if (i > 100) throw new Error(`geckodriver did not start on ${base}: ${e}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const page = new Session(base);
  try {
    await page.start();
    await step('Firefox: the page loads the release model and classifies a review', async () => {
      await page.goto(PAGE_URL);
      await page.waitFor(() => document.querySelector('.model .ready, .model .error'), 240_000);
      assert.equal(await page.evaluate(() => document.querySelector('.model .error')?.textContent ?? null), null);
      await page.evaluate((text) => {
        const box = document.getElementById('review');
        box.value = text;
        box.dispatchEvent(new Event('input', { bubbles: true }));
      }, NEGATIVE);
      await page.waitFor(() => !document.getElementById('classify').disabled, 30_000);
      await page.evaluate(() => document.getElementById('classify').click());
      await page.waitFor(() => document.querySelector('[data-testid=label]'), 120_000);
      assert.match(await page.evaluate(() => document.querySelector('[data-testid=label]').textContent), /^Negative, [<>]?[\d.]+% confidence$/);
      assert.match(await page.evaluate(() => document.querySelector('[data-testid=meta]').textContent), /on CPU/);
    });
    await step('Firefox: the embed example classifies what is typed', async () => {
      await page.goto(new URL('examples/embed/', PAGE_URL).href);
      await page.waitFor(() => /confidence/.test(document.querySelector('[data-testid=answer]').textContent), 240_000);
      assert.match(await page.evaluate(() => document.querySelector('[data-testid=answer]').textContent), /^positive \(\d+\.\d% confidence\)$/);
      await page.evaluate((text) => {
        const box = document.getElementById('review');
        box.value = text;
        box.dispatchEvent(new Event('input', { bubbles: true }));
      }, NEGATIVE);
      await page.waitFor(() => /^negative/.test(document.querySelector('[data-testid=answer]').textContent), 60_000);
    });
    await page.evaluate(async () => {
      window.lib = await import('/lib/bert-sentiment.js');
    });
    await apiSteps(page, (selector, files) => page.upload(selector, files), TEXTS, EXPECTED, { prefix: 'firefox', browser: 'Firefox' });
  } finally {
    await page.end();
    driver.kill();
  }
  finish('library-firefox');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
