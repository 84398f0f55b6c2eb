// The JS library's public API, step by step, through `page.evaluate` alone (and
// `upload` for a file input), so that the same checks run in Chromium through
// Playwright (library.mjs) and in Firefox through WebDriver (firefox.mjs):
//   - load (URL and files from disk), classify, explain, info, dispose;
//   - the release model's labels equal `trainer predict --products int8`'s and its
//     probabilities are within 1e-4 (`expected`: that command's JSONL for `texts`);
//   - faults: a bad URL, a wrong hash, classify before load and after dispose, empty
//     input, an aborted request, a worker that dies mid-request;
//   - the main thread never blocks while the worker classifies 64 reviews;
//   - fine-tuning and exportBundle (library-tune.mjs), on the tiny bundle from disk.
// The page must have the module at `window.lib`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { NEGATIVE, POSITIVE, TINY, startHeartbeat, step as runStep, stopHeartbeat, timings, tinyBundle } from './harness.mjs';
import { tuneSteps } from './library-tune.mjs';

/**
 * @param {{ evaluate: (fn: Function, arg?: any) => Promise<any> }} page
 * @param {(selector: string, files: {name: string, buffer: Buffer}[]) => Promise<void>} upload
 * @param {string[]} texts
 * @param {{label: string, probabilities: Record<string, number>}[]} expected
 * @param {{prefix: string, browser: string}} names  the timings' prefix, and the browser named in the steps' names ('' for Chromium, the default)
 */
export async function apiSteps(page, upload, texts, expected, { prefix, browser } = { prefix: 'library', browser: '' }) {
  const TEXTS = texts;
  const EXPECTED = expected;
  const step = (name, fn, limitMs) => runStep(browser ? `${browser}: ${name}` : name, fn, limitMs);
  await step('load from a URL: progress, then info', async () => {
    const r = await page.evaluate(async () => {
      const stages = new Set();
      let last = null;
      const t0 = performance.now();
      window.clf = await lib.SentimentClassifier.load('/model/', {
        engine: 'cpu',
        threads: 1,
        onProgress: (p) => { stages.add(p.stage); last = p; },
      });
      return { ms: performance.now() - t0, stages: [...stages], last, info: clf.info };
    });
    timings[`${prefix}_load_ms`] = Math.round(r.ms);
    assert.deepEqual(r.stages, ['download', 'build']);
    assert.equal(r.info.engine, 'cpu');
    assert.deepEqual(r.info.labels, ['negative', 'positive']);
    assert.match(r.info.dtype, /^int8/);
    assert.ok(r.info.accuracy > 0.9, JSON.stringify(r.info));
    assert.equal(r.info.note, null);
    assert.equal(r.info.products, 'int8');
    // The release model is calibrated (a fine-tuned BERT is over-confident): the
    // library applies the manifest's calibration, and `classify` below matches
    // `trainer predict`, which applies it too.
    const manifest = await page.evaluate(async () => (await fetch('/model/manifest.json')).json());
    assert.ok(manifest.temperature !== 1 || manifest.exponent !== 1, JSON.stringify(manifest));
    assert.equal(r.info.temperature, Math.fround(manifest.temperature));
    assert.equal(r.info.exponent, Math.fround(manifest.exponent ?? 1));
    assert.equal(r.info.threads, 1);
    assert.ok(r.info.maxLen >= 128, JSON.stringify(r.info));
    assert.ok(r.info.bytes > 1e6, JSON.stringify(r.info));
  });

  // Both compute the same int8 products, and the f32 work around them sums in one
  // order with no fused multiply-adds on every target (model-core's kernels), so each
  // product quantizes the same activations: the same probabilities, to 1e-4.
  await step('classify equals trainer predict --products int8: same labels, within 1e-4', async () => {
    const got = await page.evaluate((texts) => clf.classify(texts), TEXTS);
    assert.equal(got.length, EXPECTED.length);
    let worst = 0;
    got.forEach((g, i) => {
      const want = EXPECTED[i];
      assert.equal(g.label, want.label, `text ${i}`);
      for (const [label, p] of Object.entries(want.probabilities)) {
        worst = Math.max(worst, Math.abs(g.probabilities[label] - p));
      }
      assert.equal(typeof g.tokens, 'number');
      assert.equal(typeof g.truncated, 'boolean');
    });
    timings[`${prefix}_max_abs_diff_vs_trainer`] = worst;
    assert.ok(worst <= 1e-4, `max |Δp| ${worst}`);
  });

  // The threaded module (rayon's pool of Web Workers on shared memory) splits each
  // product into blocks of whole rows, so a row's sums run in the same order on any
  // number of threads: the probabilities must equal one thread's exactly.
  await step("threads 'auto': every core where the page is isolated, the same probabilities as one thread", async () => {
    const r = await page.evaluate(async (texts) => {
      const one = await clf.classify(texts);
      const t0 = performance.now();
      const many = await lib.SentimentClassifier.load('/model/', { engine: 'cpu' });
      const ms = performance.now() - t0;
      const got = await many.classify(texts);
      const info = many.info;
      many.dispose();
      const threaded = globalThis.crossOriginIsolated && (await import('/wasm-features.js'), globalThis.bertSentimentWasmDir.includes('relaxed'));
      const want = threaded ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
      return { ms, info, want, same: got.every((g, i) => g.probabilities.positive === one[i].probabilities.positive && g.label === one[i].label) };
    }, TEXTS);
    timings[`${prefix}_threads`] = r.info.threads;
    timings[`${prefix}_threaded_load_ms`] = Math.round(r.ms);
    assert.equal(r.info.threads, r.want, JSON.stringify(r));
    assert.equal(r.info.engine, 'cpu');
    assert.ok(r.same, 'the threaded probabilities differ from one thread\'s');
  });

  await step('spans: a truncated text says which parts the model read', async () => {
    const long = `${POSITIVE} `.repeat(40) + 'The ending, though, was dreadful.';
    const [short, cut] = await page.evaluate((t) => clf.classify(t, { spans: true }), [POSITIVE, long]);
    assert.deepEqual(short.read, [[0, POSITIVE.length]]);
    assert.equal(cut.truncated, true);
    assert.ok(cut.read.length >= 1 && cut.read.length <= 2, JSON.stringify(cut.read));
    const covered = cut.read.reduce((n, [a, b]) => n + b - a, 0);
    assert.ok(covered > 200 && covered < long.length, `${covered} of ${long.length}`);
    for (const [a, b] of cut.read) assert.ok(a >= 0 && a < b && b <= long.length);
    // head+tail truncation reads the end, where the verdict is.
    if (cut.read.length === 2) assert.equal(cut.read[1][1], long.length);
  });

  await step('explain: phrases that slice out of the text, the right ones positive', async () => {
    const parts = await page.evaluate((t) => clf.explain(t), POSITIVE);
    assert.ok(parts.length >= 10, `${parts.length} phrases`);
    for (const p of parts) assert.equal(POSITIVE.slice(p.start, p.end), p.text);
    const best = parts.reduce((a, b) => (b.delta > a.delta ? b : a));
    assert.ok(best.delta > 0, JSON.stringify(best));
  });

  await step('empty input; classify before load and after dispose reject clearly', async () => {
    const r = await page.evaluate(async () => {
      const errors = {};
      const empty = await clf.classify([]);
      const emptyExplain = await clf.explain('   ');
      try { await new lib.SentimentClassifier().classify(['x']); } catch (e) { errors.before = e.message; }
      try { await clf.classify([42]); } catch (e) { errors.type = e.message; }
      return { empty, emptyExplain, errors };
    });
    assert.deepEqual(r.empty, []);
    assert.deepEqual(r.emptyExplain, []);
    assert.match(r.errors.before, /not loaded/);
    assert.match(r.errors.type, /array of strings/);
  });

  await step('an aborted request rejects at once with AbortError; the next one works', async () => {
    const r = await page.evaluate(async (text) => {
      const controller = new AbortController();
      const many = Array.from({ length: 256 }, (_, i) => `${text} ${i}`);
      const t0 = performance.now();
      const pending = clf.classify(many, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      let name = null;
      try { await pending; } catch (e) { name = e.name; }
      const abortMs = performance.now() - t0;
      const after = await clf.classify(['A wonderful film.']);
      return { name, abortMs, after: after[0].label };
    }, POSITIVE);
    assert.equal(r.name, 'AbortError');
    assert.ok(r.abortMs < 5_000, `abort took ${r.abortMs} ms`);
    assert.equal(r.after, 'positive');
  });

  await step('a worker that dies mid-request: the call rejects, the next one recovers', async () => {
    const r = await page.evaluate(async (text) => {
      const many = Array.from({ length: 128 }, (_, i) => `${text} ${i}`);
      const pending = clf.classify(many);
      await new Promise((ok) => setTimeout(ok, 30));
      clf.worker.terminate();
      let message = null;
      try { await pending; } catch (e) { message = e.message; }
      const after = await clf.classify(['Dreadful and boring.']);
      return { message, after: after[0].label };
    }, POSITIVE);
    assert.match(r.message, /worker stopped/);
    assert.equal(r.after, 'negative');
  }, 60_000);

  await step('64 reviews in the worker: the main thread never blocks', async () => {
    await startHeartbeat(page);
    const r = await page.evaluate(async ([pos, neg]) => {
      const texts = Array.from({ length: 64 }, (_, i) => (i % 2 ? pos : neg));
      const t0 = performance.now();
      const out = await clf.classify(texts);
      return { ms: performance.now() - t0, positives: out.filter((o) => o.label === 'positive').length };
    }, [POSITIVE, NEGATIVE]);
    timings[`${prefix}_64_reviews_ms`] = Math.round(r.ms);
    const watched = await stopHeartbeat(page);
    timings[`${prefix}_64_longest_main_thread_task_ms`] = watched.task;
    timings[`${prefix}_64_longest_heartbeat_gap_ms`] = watched.gap;
    assert.equal(r.positives, 32);
    assert.ok(watched.task <= 50, `the main thread ran a ${watched.task} ms task`);
    assert.ok(watched.gap <= 70, `the main thread's 20 ms ticks stopped for ${watched.gap} ms`);
  });

  await step('a bad URL rejects naming the URL', async () => {
    const msg = await page.evaluate(async () => {
      try { await lib.SentimentClassifier.load('/no-such-model/'); return 'loaded'; } catch (e) { return e.message; }
    });
    assert.match(msg, /\/no-such-model\/manifest\.json: HTTP 404/);
  });

  await step('a bundle from disk (FileList) loads and matches PyTorch; a wrong hash is refused by name', async () => {
    await page.evaluate(() => {
      const input = document.createElement('input');
      input.type = 'file';
      input.multiple = true;
      input.id = 'bundle';
      document.body.append(input);
    });
    await upload('#bundle', tinyBundle());
    const golden = JSON.parse(readFileSync(join(TINY, 'golden.json'), 'utf8'));
    const r = await page.evaluate(async (text) => {
      const files = document.getElementById('bundle').files;
      const own = await lib.SentimentClassifier.load({ files }, { engine: 'cpu' });
      const [p] = await own.classify([text]);
      const info = own.info;
      // The same files with one byte of tokenizer.json changed.
      const map = new Map();
      for (const f of files) map.set(f.name, new Uint8Array(await f.arrayBuffer()));
      map.get('tokenizer.json')[10] ^= 0x20;
      let refused = null;
      try { await lib.SentimentClassifier.load({ files: map }); } catch (e) { refused = e.message; }
      own.dispose();
      let disposed = null;
      try { await own.classify(['x']); } catch (e) { disposed = e.message; }
      return { p, info, refused, disposed };
    }, golden.texts[0]);
    assert.equal(r.info.maxLen, 64);
    assert.ok(Math.abs(r.p.probabilities.positive - golden.probabilities[0][1]) < 6e-4, `${JSON.stringify(r.p)} vs PyTorch ${golden.probabilities[0]}`);
    assert.match(r.refused, /tokenizer\.json: integrity check failed: SHA-256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    assert.match(r.disposed, /disposed/);
  });

  await tuneSteps(page, { prefix, browser });
}
