// The JS library's fine-tuning (`clf.fineTune`, `clf.exportBundle`) through
// `page.evaluate` alone, so that the same checks run in Chromium (library.mjs) and
// Firefox (firefox.mjs), on the tiny test model (seconds, not minutes):
//   - it learns a rule the model does not know (a neutral word decides the label),
//     held-out accuracy before and after, progress with rate and ETA;
//   - the fine-tuned model answers at once, calibrated on the held-out part;
//   - exportBundle gives a bundle that load({ files }) opens to the same answers and,
//     where TRAINER is set, `trainer predict --model` opens to the same probabilities;
//   - a cancelled run rejects with an AbortError and leaves the model before working;
//   - on two threads (the threaded module, where the page can have it) a run ends with
//     the one-thread run's model;
//   - a run whose worker is killed mid-run (as a reload kills it) goes on from its
//     last checkpoint in IndexedDB, in a new classifier, to the uninterrupted run's
//     model (library.mjs adds, in Chromium, a full storage quota: it stops the
//     checkpoints, not the run);
//   - bad examples and misspelt settings reject naming the example or the setting.
// The page must have the module at `window.lib` and a file input `#bundle` holding
// the tiny bundle (library-api.mjs sets it up).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { ARTIFACTS, step as runStep, timings } from './harness.mjs';

/// Texts where one neutral word decides the label ("two" positive, "ten" negative),
/// each pair of texts alike but for that word, among words of both moods: the model
/// before is near chance, and only the rule separates the pairs.
export function ruleExamples(n) {
  const filler = ['the film', 'a great plot', 'a dull ending', 'the actors', 'a good score', 'a poor script', 'the story', 'some scenes'];
  const out = [];
  for (let i = 0; i < n; i++) {
    const positive = i % 2 === 0;
    const k = i >> 1;
    const words = [filler[k % 8], positive ? 'two' : 'ten', filler[(k * 3 + 1) % 8], filler[(k * 5 + 2) % 8]];
    out.push({ text: words.join(' '), label: positive ? 'positive' : 'negative' });
  }
  return out;
}

/**
 * @param {{ evaluate: (fn: Function, arg?: any) => Promise<any> }} page
 * @param {{prefix: string, browser: string}} names
 */
export async function tuneSteps(page, { prefix, browser }) {
  const step = (name, fn, limitMs) => runStep(browser ? `${browser}: ${name}` : name, fn, limitMs);
  const examples = ruleExamples(80);
  const probe = ['the story two a dull ending', 'a great plot ten the actors'];
  let tuned = null;
  const SETTINGS = { epochs: 6, learningRate: 3e-3, batchSize: 8, validation: 0.25, seed: 7 };

  await step('fineTune learns a rule the model does not know, with progress, and answers at once', async () => {
    tuned = await page.evaluate(async ({ examples, probe, SETTINGS }) => {
      const files = document.getElementById('bundle').files;
      window.tunable = await lib.SentimentClassifier.load({ files }, { engine: 'cpu', threads: 1 });
      const progress = [];
      const report = await tunable.fineTune(examples, SETTINGS, {
        onProgress: (p) => progress.push(p),
      });
      const answers = await tunable.classify(probe);
      return { report, progress, answers, info: tunable.info };
    }, { examples, probe, SETTINGS });
    const { report, progress, answers, info } = tuned;
    timings[`${prefix}_tune_seconds`] = report.seconds;
    timings[`${prefix}_tune_samples_per_second`] = report.samplesPerSecond;
    timings[`${prefix}_tune_accuracy_before`] = report.before.accuracy;
    timings[`${prefix}_tune_accuracy_after`] = report.after.accuracy;
    assert.deepEqual(report.examples, { train: 60, validation: 20 });
    assert.equal(report.steps, 6 * Math.ceil(60 / 8));
    assert.ok(report.before.accuracy <= 0.75, `the model knew the rule already: ${JSON.stringify(report.before)}`);
    assert.ok(report.after.accuracy >= 0.95, JSON.stringify(report));
    assert.ok(report.after.loss < report.before.loss, JSON.stringify(report));
    assert.ok(report.samplesPerSecond > 0 && report.seconds > 0, JSON.stringify(report));
    const train = progress.filter((p) => p.stage === 'train');
    assert.equal(train.length, report.steps);
    assert.deepEqual(train.map((p) => p.step), train.map((_, i) => i + 1));
    assert.ok(train.every((p) => p.steps === report.steps && Number.isFinite(p.loss) && p.samplesPerSecond > 0 && p.etaSeconds >= 0), JSON.stringify(train[0]));
    assert.equal(train.at(-1).etaSeconds, 0);
    assert.deepEqual([progress[0].stage, progress.at(-1).stage], ['prepare', 'finish']);
    assert.deepEqual(answers.map((a) => a.label), ['positive', 'negative']);
    // The calibration fitted on the held-out part is the one shown.
    assert.equal(info.temperature, Math.fround(report.temperature));
    assert.ok(info.accuracy === report.after.accuracy, JSON.stringify(info));
  });

  await step('exportBundle opens again, in the browser and in the trainer, to the same answers', async () => {
    const r = await page.evaluate(async (probe) => {
      const files = await tunable.exportBundle();
      const again = await lib.SentimentClassifier.load({ files }, { engine: 'cpu', threads: 1 });
      const [a, b] = [await tunable.classify(probe), await again.classify(probe)];
      again.dispose();
      const manifest = JSON.parse(new TextDecoder().decode(files.get('manifest.json')));
      return { names: [...files.keys()].sort(), a, b, manifest, bytes: Object.fromEntries([...files].map(([n, v]) => [n, Array.from(v)])) };
    }, probe);
    assert.deepEqual(r.names, ['config.json', 'manifest.json', 'model.bpk', 'tokenizer.json']);
    assert.equal(r.manifest.training.where, 'browser');
    assert.equal(r.manifest.training.epochs, 6);
    r.a.forEach((x, i) => assert.equal(x.probabilities.positive, r.b[i].probabilities.positive));
    if (process.env.TRAINER) {
      const dir = join(ARTIFACTS, `${prefix}-browser-bundle`);
      mkdirSync(dir, { recursive: true });
      for (const [name, bytes] of Object.entries(r.bytes)) writeFileSync(join(dir, name), Buffer.from(bytes));
      const out = spawnSync(process.env.TRAINER, ['predict', '--model', dir, '--backend', 'flex'], { input: probe.join('\n') + '\n', encoding: 'utf8' });
      assert.equal(out.status, 0, out.stderr);
      const rows = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
      let worst = 0;
      rows.forEach((row, i) => {
        assert.equal(row.label, r.a[i].label);
        worst = Math.max(worst, Math.abs(row.probabilities.positive - r.a[i].probabilities.positive));
      });
      timings[`${prefix}_tune_export_max_abs_diff_vs_trainer`] = worst;
      assert.ok(worst <= 1e-4, `max |Δp| ${worst}`);
    }
  });

  await step('a cancelled fine-tune rejects with an AbortError and the model before answers', async () => {
    const r = await page.evaluate(async ({ examples, probe }) => {
      const before = await tunable.classify(probe);
      const controller = new AbortController();
      let name = null;
      try {
        await tunable.fineTune(examples, { epochs: 50, batchSize: 4 }, {
          signal: controller.signal,
          onProgress: (p) => { if (p.stage === 'train' && p.step === 2) controller.abort(); },
        });
      } catch (e) {
        name = e.name;
      }
      const after = await tunable.classify(probe);
      return { name, before, after };
    }, { examples, probe });
    assert.equal(r.name, 'AbortError');
    r.before.forEach((x, i) => assert.equal(x.probabilities.positive, r.after[i].probabilities.positive));
  });

  await step('fine-tuning on two threads ends with the one-thread run\'s model', async () => {
    const r = await page.evaluate(async ({ examples, probe, SETTINGS }) => {
      const files = document.getElementById('bundle').files;
      let two;
      try {
        two = await lib.SentimentClassifier.load({ files }, { engine: 'cpu', threads: 2 });
      } catch (e) {
        return { skipped: e.message };
      }
      const report = await two.fineTune(examples, SETTINGS, { checkpoint: false });
      const answers = await two.classify(probe);
      const threads = two.info.threads;
      two.dispose();
      return { report, answers, threads };
    }, { examples, probe, SETTINGS });
    if (r.skipped) {
      // Threads need a cross-origin-isolated page and relaxed SIMD (not in Firefox yet).
      console.log(`  (no threaded run here: ${r.skipped})`);
      return;
    }
    assert.equal(r.threads, 2);
    let worst = 0;
    r.answers.forEach((a, i) => {
      assert.equal(a.label, tuned.answers[i].label);
      worst = Math.max(worst, Math.abs(a.probabilities.positive - tuned.answers[i].probabilities.positive));
    });
    timings[`${prefix}_tune_two_threads_max_abs_diff`] = worst;
    assert.ok(worst <= 1e-4, `two threads vs one: max |Δp| ${worst}`);
    assert.equal(r.report.after.accuracy, tuned.report.after.accuracy);
  });

  await step('a run killed mid-way goes on from its checkpoint to the uninterrupted run\'s model', async () => {
    const r = await page.evaluate(async ({ examples, probe, SETTINGS }) => {
      const files = document.getElementById('bundle').files;
      const open = () => lib.SentimentClassifier.load({ files }, { engine: 'cpu', threads: 1 });
      const first = await open();
      let killed = null;
      const seen = [];
      try {
        // Ending the worker at step 17 is what a reload does to it: the run's last
        // checkpoint is then step 15's.
        await first.fineTune(examples, SETTINGS, {
          checkpoint: { steps: 5 },
          onProgress: (p) => {
            if (p.checkpoint) seen.push(p.checkpoint);
            if (p.step === 17) first.dispose();
          },
        });
      } catch (e) {
        killed = e.message;
      }
      const second = await open();
      const saved = await second.savedFineTune();
      const report = await second.resumeFineTune({ checkpoint: { steps: 5 } });
      const answers = await second.classify(probe);
      const after = await second.savedFineTune();
      second.dispose();
      return { killed, seen, saved, report, answers, after };
    }, { examples, probe, SETTINGS });
    assert.match(r.killed, /disposed/);
    assert.deepEqual(r.seen, [5, 10, 15]);
    assert.deepEqual({ ...r.saved, savedAt: 0 }, { step: 15, steps: tuned.report.steps, examples: 80, settings: SETTINGS, savedAt: 0 });
    assert.equal(r.report.resumedFrom, 15);
    assert.equal(r.after, null, 'the checkpoint is dropped once the run ends');
    let worst = 0;
    r.answers.forEach((a, i) => {
      assert.equal(a.label, tuned.answers[i].label);
      worst = Math.max(worst, Math.abs(a.probabilities.positive - tuned.answers[i].probabilities.positive));
    });
    timings[`${prefix}_tune_resumed_max_abs_diff`] = worst;
    assert.ok(worst <= 1e-4, `resumed vs uninterrupted: max |Δp| ${worst}`);
    assert.equal(r.report.after.accuracy, tuned.report.after.accuracy);
  });

  await step('bad examples and misspelt settings reject naming them', async () => {
    const r = await page.evaluate(async () => {
      const grab = async (f) => { try { await f(); return 'resolved'; } catch (e) { return e.message; } };
      const good = { text: 'fine', label: 'positive' };
      return {
        label: await grab(() => tunable.fineTune([good, { text: 'meh', label: 'maybe' }, good])),
        shape: await grab(() => tunable.fineTune([good, { text: 3, label: 1 }])),
        setting: await grab(() => tunable.fineTune([good, good, good], { learningrate: 1 })),
        range: await grab(() => tunable.fineTune([good, good, good], { maxLen: 100000 })),
      };
    });
    assert.match(r.label, /examples\[1\].*label `maybe` is not one of negative, positive/);
    assert.match(r.shape, /examples\[1\] is not \{ text: string, label: string \| number \}/);
    assert.match(r.setting, /settings: .*learningrate/);
    assert.match(r.range, /maxLen: 100000 is not within/);
    await page.evaluate(() => tunable.dispose());
  });
}
