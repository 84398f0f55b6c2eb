// The release model learns in the browser something it cannot do yet: IMDb training
// reviews rated 10 ("positive") against those rated 7 or 8 ("negative"), which it calls
// positive alike. `clf.fineTune` in headless Chromium on the CPU engine (the threaded
// module on every core, the page being cross-origin isolated), max length 128, batch 16,
// two epochs over 400 examples, 200 more held out (stratified, seeded); checks that the
// held-out accuracy rises at least 5 points above the release model's, and records the
// time, the rate and the tab's memory (its renderer processes' peak RSS).
// Run by `cargo xtask e2e` (PAGE_URL, ARTIFACTS) and `cargo xtask bench-tune`, which also
// sets TRAINER (a release trainer, which finds MiniLM through HF_HOME): the native
// trainer's training step on the same reviews, same length and batch, before and after
// the browser run, for the ratio. The data is $IMDB_ARCHIVE, else the dev machine's shared copy; without it the
// test says so and passes nothing off as run.
import { existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { ARTIFACTS, PAGE_URL, finish, launch, rendererRss, step, timings } from './harness.mjs';
import { ARCHIVE, imdbReviews } from './imdb.mjs';

const PER_CLASS = 300;
const SETTINGS = { epochs: 2, learningRate: 1e-4, batchSize: 16, maxLen: 128, validation: 1 / 3, seed: 42 };
const { TRAINER } = process.env;

/// `n` reviews evenly spaced through `list` (archive order): the same ones every run.
function spaced(list, n) {
  return Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]);
}

/// The native trainer's training-step rate on `file` (samples/s, median of its steps).
function nativeRate(file) {
  const out = spawnSync(TRAINER, ['bench', '--what', 'train-step', '--max-len', '128', '--batch', '16', '--steps', '8', '--texts', file], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const line = out.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((r) => r.what === 'train_samples_per_s');
  return line.median;
}

async function main() {
  if (!existsSync(ARCHIVE)) {
    console.log(`skipped: the IMDb archive is not at ${ARCHIVE} (set IMDB_ARCHIVE)`);
    return;
  }
  const train = imdbReviews(ARCHIVE, 'train');
  const tens = spaced(train.filter((r) => r.rating === 10), PER_CLASS);
  const goods = spaced(train.filter((r) => r.rating === 7 || r.rating === 8), PER_CLASS);
  const examples = [...tens.map((r) => ({ text: r.text, label: 'positive' })), ...goods.map((r) => ({ text: r.text, label: 'negative' }))];
  const file = join(ARTIFACTS, 'tune-imdb.jsonl');
  writeFileSync(file, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
  timings.examples = examples.length;
  timings.settings = SETTINGS;
  if (TRAINER) timings.native_samples_per_second_before = nativeRate(file);

  const run = await launch({ webgpu: false, serviceWorkers: 'block' });
  const page = await run.context.newPage();
  // A plain document of the page's origin (cross-origin isolated, as the page is): only
  // the library's worker runs a model.
  await page.goto(new URL('tune-imdb', PAGE_URL).href);
  let peakRss = 0;
  const watch = setInterval(() => {
    peakRss = Math.max(peakRss, rendererRss() ?? 0);
  }, 500);
  await step('the release model learns in the browser what it could not do (10 against 7-8)', async () => {
    const r = await page.evaluate(async ({ examples, settings }) => {
      const lib = await import('/lib/bert-sentiment.js');
      const clf = await lib.SentimentClassifier.load('/model/', { engine: 'cpu' });
      const progress = [];
      const report = await clf.fineTune(examples, settings, { onProgress: (p) => { if (p.stage === 'train') progress.push(p); } });
      const info = clf.info;
      clf.dispose();
      return { report, info, last: progress.at(-1), isolated: self.crossOriginIsolated };
    }, { examples, settings: SETTINGS });
    const { report, info } = r;
    Object.assign(timings, {
      engine: `${info.engine}, ${info.threads} threads`,
      isolated: r.isolated,
      accuracy_before: report.before.accuracy,
      accuracy_after: report.after.accuracy,
      loss_before: report.before.loss,
      loss_after: report.after.loss,
      ece_after: report.after.ece,
      steps: report.steps,
      train_examples: report.examples.train,
      held_out: report.examples.validation,
      seconds: report.seconds,
      browser_samples_per_second: report.samplesPerSecond,
    });
    assert.deepEqual(report.examples, { train: 400, validation: 200 });
    assert.equal(report.steps, 2 * 25);
    assert.ok(report.after.accuracy >= report.before.accuracy + 0.05, `held-out accuracy ${report.before.accuracy} -> ${report.after.accuracy}: not 5 points better`);
  }, 900_000);
  clearInterval(watch);
  timings.renderer_peak_rss_mb = peakRss;
  await run.browser.close();
  if (TRAINER) {
    timings.native_samples_per_second_after = nativeRate(file);
    const native = (timings.native_samples_per_second_before + timings.native_samples_per_second_after) / 2;
    timings.browser_vs_native = timings.browser_samples_per_second / native;
  }
  finish('tune-imdb');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
