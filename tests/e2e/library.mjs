// End-to-end test of the JS library (`lib/bert-sentiment.js`) in headless Chromium,
// through its public API only, as another web page would use it: web/examples/embed/
// classifies what is typed, then every check of library-api.mjs (firefox.mjs runs
// those in Firefox). Run through `cargo xtask e2e`, which sets PAGE_URL, ARTIFACTS,
// TEXTS (one text per line) and EXPECTED (`trainer predict`'s JSONL for them).
import { readFileSync } from 'node:fs';
import { strict as assert } from 'node:assert';
import { NEGATIVE, PAGE_URL, assertSameOrigin, finish, launch, step, tinyBundle } from './harness.mjs';
import { apiSteps } from './library-api.mjs';
import { ruleExamples } from './library-tune.mjs';

const TEXTS = readFileSync(process.env.TEXTS, 'utf8').split('\n').filter((l) => l !== '');
const EXPECTED = readFileSync(process.env.EXPECTED, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

async function main() {
  const run = await launch({ serviceWorkers: 'block' });
  const page = await run.context.newPage();

  await step('the embed example classifies what is typed', async () => {
    await page.goto(new URL('examples/embed/', PAGE_URL).href);
    await page.waitForFunction(() => /confidence/.test(document.querySelector('[data-testid=answer]').textContent), null, { timeout: 240_000 });
    assert.match(await page.innerText('[data-testid=answer]'), /^positive \(\d+\.\d% confidence\)$/);
    await page.fill('#review', NEGATIVE);
    await page.waitForFunction(() => /^negative/.test(document.querySelector('[data-testid=answer]').textContent), null, { timeout: 60_000 });
  });

  // The rest calls the module from this page's console, as a developer would.
  await page.evaluate(async () => {
    window.lib = await import('/lib/bert-sentiment.js');
  });

  await apiSteps(page, (selector, files) => page.setInputFiles(selector, files), TEXTS, EXPECTED);

  await step('a full storage quota stops a fine-tune\'s checkpoints, not the run, and says why', async () => {
    // A fresh context, its origin's quota set to 64 KB (DevTools protocol) before the
    // library first opens its storage: the tiny model's checkpoints (about 330 KB) do
    // not fit, as on a full disk.
    const context = await run.browser.newContext({ serviceWorkers: 'block' });
    const p = await context.newPage();
    await p.goto(new URL('no-such-page', PAGE_URL).href);
    const cdp = await context.newCDPSession(p);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(PAGE_URL).origin, quotaSize: 64 * 1024 });
    const files = tinyBundle().map((f) => [f.name, Array.from(f.buffer)]);
    const r = await p.evaluate(async ({ files, examples }) => {
      const lib = await import('/lib/bert-sentiment.js');
      const map = new Map(files.map(([name, bytes]) => [name, new Uint8Array(bytes)]));
      const clf = await lib.SentimentClassifier.load({ files: map }, { engine: 'cpu', threads: 1 });
      const warnings = [];
      const report = await clf.fineTune(examples, { epochs: 1, batchSize: 8, validation: 0.25, seed: 7 }, {
        checkpoint: { steps: 2 },
        onProgress: (q) => { if (q.warning) warnings.push(q.warning); },
      });
      const answers = await clf.classify(['the story two a dull ending']);
      clf.dispose();
      return { report, warnings, answers };
    }, { files, examples: ruleExamples(80) });
    await context.close();
    assert.match(r.report.warning ?? '', /^checkpoints stopped at step 2: the browser's storage quota for this site is full/);
    assert.ok(r.warnings.length > 0 && r.warnings.every((w) => w === r.report.warning), JSON.stringify(r.warnings));
    assert.equal(r.report.steps, Math.ceil(60 / 8));
    assert.ok(r.report.after.accuracy > 0, JSON.stringify(r.report));
    assert.equal(r.answers.length, 1);
  });

  await step('no request left the origin', async () => assertSameOrigin(run.requests));
  await run.browser.close();
  finish('library');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
