import { launch, NEGATIVE } from './harness.mjs';
const r = await launch();
const page = await r.context.newPage();
let T0 = 0;
const stamp = (what) => console.log(String(Date.now() - T0).padStart(6), what);
page.on('worker', (w) => { stamp('worker created'); w.on('console', (m) => stamp('[worker] ' + m.text().slice(0, 100))); });
page.on('console', (m) => { if (m.text().startsWith('T ')) stamp('[page] ' + m.text()); });
page.on('request', (q) => { if (/wasm|model|worker|web\.js/.test(q.url())) stamp('req ' + q.url().replace(process.env.PAGE_URL, '')); });
page.on('requestfinished', (q) => { if (/wasm|model\//.test(q.url())) stamp('done ' + q.url().replace(process.env.PAGE_URL, '')); });
await page.goto(process.env.PAGE_URL);
await page.waitForSelector('.model .ready', { timeout: 120000 });
await page.waitForTimeout(1500);
for (let i = 0; i < 2; i++) {
  T0 = Date.now();
  console.log('--- warm navigation');
  await page.goto(process.env.PAGE_URL);
  stamp('goto returned');
  await page.waitForSelector('.model .ready', { timeout: 120000 });
  stamp('ready');
  await page.fill('#review', NEGATIVE);
  await page.click('#classify');
  await page.waitForFunction(() => { const b = document.querySelector('#classify'); return document.querySelector('[data-testid=label]') && b && !b.disabled; });
  stamp('first prediction');
}
await r.browser.close();
