// End-to-end test of the JS library (`lib/bert-sentiment.js`) in headless Chromium,
// through its public API only, as another web page would use it: web/examples/embed/
// classifies what is typed, then every check of library-api.mjs (firefox.mjs runs
// those in Firefox). Run through `cargo xtask e2e`, which sets PAGE_URL, ARTIFACTS,
// TEXTS (one text per line) and EXPECTED (`trainer predict`'s JSONL for them).
import { readFileSync } from 'node:fs';
import { strict as assert } from 'node:assert';
import { NEGATIVE, PAGE_URL, assertSameOrigin, finish, launch, step } from './harness.mjs';
import { apiSteps } from './library-api.mjs';

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

  await step('no request left the origin', async () => assertSameOrigin(run.requests));
  await run.browser.close();
  finish('library');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
