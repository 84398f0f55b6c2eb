// Many reviews in the page: REVIEWS of the IMDb test split's 25,000 (evenly spaced in
// archive order; all of them for the benchmark) as one JSONL file, classified by the
// page's batch mode in headless Chromium on the CPU engine. Checks what a user relies
// on with a file of that size:
//   - the run completes, with progress (rate and time left) on the way;
//   - a reload a third of the way through loses nothing: the page shows the rows
//     classified, and opening the file again goes on from there;
//   - the table holds one page of rows, not the file;
//   - the CSV it saves has a row per review in input order, with the lines, ids,
//     tokens and truncation of `trainer predict --products int8` on the same file,
//     and its probabilities within 1e-4;
//   - the tab's memory (its renderer processes' RSS) before and after.
// Run by `cargo xtask e2e` (REVIEWS=2000) and `cargo xtask bench-page-batch [N]`, which
// set PAGE_URL, ARTIFACTS, TRAINER (the trainer binary), MODEL and REVIEWS. The data
// is $IMDB_ARCHIVE, else the dev machine's shared copy; without it the test says so
// and passes nothing off as run.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { ARTIFACTS, PAGE_URL, finish, launch, rendererRss, step, timings, waitReady } from './harness.mjs';
import { ARCHIVE, imdbReviews } from './imdb.mjs';

const REVIEWS = Number(process.env.REVIEWS || 2000);
const TRAINER = process.env.TRAINER;
const MODEL = process.env.MODEL;

async function memory(page) {
  const dom = await page.evaluate(() => ({
    jsHeapMb: Math.round((performance.memory?.usedJSHeapSize || 0) / 1048576),
    domNodes: document.getElementsByTagName('*').length,
    tableRows: document.querySelectorAll('[data-testid=batch-results] tbody tr').length,
  }));
  return { rendererRssMb: rendererRss(), ...dom };
}

/// Rows of a CSV file whose rows are one line each (both writers keep them so).
function parseCsv(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = [];
    let i = 0;
    while (i <= line.length) {
      if (line[i] === '"') {
        let v = '';
        i++;
        for (;;) {
          const q = line.indexOf('"', i);
          if (line[q + 1] === '"') { v += line.slice(i, q + 1); i = q + 2; } else { v += line.slice(i, q); i = q + 1; break; }
        }
        fields.push(v);
        i++;
      } else {
        const c = line.indexOf(',', i);
        const end = c < 0 ? line.length : c;
        fields.push(line.slice(i, end));
        i = end + 1;
      }
    }
    rows.push(fields);
  }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, k) => [h, r[k]])));
}

async function status(page) {
  return page.$eval('[data-testid=batch-status]', (s) => ({ done: Number(s.dataset.done), finished: s.dataset.finished === 'true', text: s.innerText }));
}

async function main() {
  if (!existsSync(ARCHIVE)) {
    console.log(`skipped: the IMDb archive is not at ${ARCHIVE} (set IMDB_ARCHIVE)`);
    return;
  }
  assert.ok(TRAINER && MODEL, 'TRAINER and MODEL are not set: run `cargo xtask e2e`');
  const file = join(ARTIFACTS, `imdb-test-${REVIEWS}.jsonl`);
  const trainerCsv = join(ARTIFACTS, `imdb-test-${REVIEWS}-trainer.csv`);
  const pageCsv = join(ARTIFACTS, `imdb-test-${REVIEWS}-page.csv`);
  const limit = 300_000 + REVIEWS * 2_000;
  timings.reviews = REVIEWS;

  await step(`${REVIEWS} IMDb test reviews as one JSONL file`, async () => {
    const all = imdbReviews(ARCHIVE, 'test').map(({ id, text, label }) => ({ id, text, label }));
    assert.equal(all.length, 25_000, 'the test split');
    const every = Math.max(1, Math.floor(all.length / REVIEWS));
    const picked = all.filter((_, i) => i % every === 0).slice(0, REVIEWS);
    writeFileSync(file, picked.map((r) => JSON.stringify(r)).join('\n') + '\n');
    timings.file_mb = Math.round(readFileSync(file).length / 1e5) / 10;
  });

  await step('trainer predict --products int8 on the same file', async () => {
    rmSync(trainerCsv, { force: true });
    const t0 = Date.now();
    const r = spawnSync(TRAINER, ['predict', '--model', MODEL, '--products', 'int8', '--backend', 'flex', '--data', file, '--format', 'csv', '--out', trainerCsv], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    timings.trainer_seconds = (Date.now() - t0) / 1000;
    timings.trainer_reviews_per_s = Math.round(REVIEWS / timings.trainer_seconds * 100) / 100;
  }, limit);

  const run = await launch({ webgpu: false, serviceWorkers: 'block' });
  const page = await run.context.newPage();
  const seconds = { page: 0 };

  await step('the page classifies the file, a reload on the way loses nothing', async () => {
    await page.goto(PAGE_URL);
    await waitReady(page);
    timings.memory_before = await memory(page);
    let t0 = Date.now();
    await page.setInputFiles('#batch-file', file);
    // A third of the way, with the rate and time left shown.
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=batch-status]')?.dataset.done) >= n, Math.ceil(REVIEWS / 3), { timeout: limit, polling: 1000 });
    const going = await status(page);
    assert.match(going.text, /of (about )?[\d,]+ reviews classified · [\d.]+ reviews\/s · about .+ left/);
    timings.progress_shown = going.text;
    timings.memory_during = await memory(page);
    assert.ok(timings.memory_during.tableRows <= 50, `${timings.memory_during.tableRows} rows in the table`);
    seconds.page += (Date.now() - t0) / 1000;
    await page.reload();
    await waitReady(page);
    await page.waitForFunction(() => document.querySelector('[data-testid=batch-status]')?.dataset.done > 0);
    const kept = await status(page);
    assert.ok(!kept.finished && kept.done >= going.done, JSON.stringify({ going, kept }));
    assert.match(kept.text, /stopped before line [\d,]+\. Open imdb-test-\d+\.jsonl again to go on/);
    timings.kept_after_reload = kept.done;
    t0 = Date.now();
    await page.setInputFiles('#batch-file', file);
    await page.waitForFunction((n) => {
      const s = document.querySelector('[data-testid=batch-status]');
      return s?.dataset.finished === 'true' && s.dataset.done === String(n);
    }, REVIEWS, { timeout: limit, polling: 1000 });
    seconds.page += (Date.now() - t0) / 1000;
    timings.page_seconds = Math.round(seconds.page);
    timings.page_reviews_per_s = Math.round(REVIEWS / seconds.page * 100) / 100;
    timings.page_summary = (await status(page)).text;
    timings.memory_after = await memory(page);
    assert.ok(timings.memory_after.tableRows <= 50);
    timings.page_accuracy = await page.innerText('[data-testid=batch-metrics] p');
  }, 2 * limit);

  await step('its CSV equals trainer predict --products int8, row for row', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    await download.saveAs(pageCsv);
    const got = parseCsv(readFileSync(pageCsv, 'utf8'));
    const want = parseCsv(readFileSync(trainerCsv, 'utf8'));
    assert.equal(got.length, REVIEWS);
    assert.equal(want.length, REVIEWS);
    const diffs = [];
    const flipped = [];
    got.forEach((g, i) => {
      const w = want[i];
      assert.equal(g.line, w.line, `row ${i}`);
      assert.equal(g.id, w.id, `row ${i}`);
      assert.equal(g.tokens, w.tokens, `line ${g.line}`);
      assert.equal(g.truncated, w.truncated, `line ${g.line}`);
      diffs.push(Math.max(...['p_negative', 'p_positive'].map((k) => Math.abs(Number(g[k]) - Number(w[k])))));
      if (g.label !== w.label) flipped.push({ line: g.line, page: g.p_positive, trainer: w.p_positive });
    });
    const sorted = [...diffs].sort((a, b) => a - b);
    const within = diffs.filter((d) => d <= 1e-4).length;
    timings.max_abs_diff_vs_trainer = sorted[sorted.length - 1];
    timings.median_abs_diff_vs_trainer = sorted[Math.floor(sorted.length / 2)];
    timings.within_1e4 = `${within} of ${REVIEWS}`;
    timings.labels_differing = flipped;
    // Both sides compute the same int8 products, and the f32 work around them
    // (LayerNorm, softmax, attention's products, GELU) sums in one order with no fused
    // multiply-adds on every target, so the activations each product quantizes are the
    // same bits: every probability agrees to 1e-4 (the CSV's rounding is what is left).
    assert.ok(timings.max_abs_diff_vs_trainer <= 1e-4, `max |Δp| ${timings.max_abs_diff_vs_trainer}`);
    assert.deepEqual(flipped, [], 'labels differ from the trainer');
  });

  await run.browser.close();
  finish(`many-${REVIEWS}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
