// bert-sentiment: a BERT sentiment classifier you trained yourself, running on the
// user's device in a Web Worker (WebGPU or WebAssembly), with nothing sent anywhere.
//
//   import { SentimentClassifier } from './lib/bert-sentiment.js';
//   const clf = await SentimentClassifier.load('./model/');
//   const [r] = await clf.classify(['I loved it.']);   // r.label, r.confidence, ...
//
// Every failure is a rejected promise with an Error that names what failed.

/**
 * @typedef {'auto' | 'webgpu' | 'cpu'} Engine
 *
 * @typedef {object} LoadProgress
 * @property {'download' | 'build'} stage
 * @property {string | null} file  the file being downloaded
 * @property {number} loaded  bytes of the whole bundle so far
 * @property {number} total  bytes of the whole bundle
 *
 * @typedef {object} LoadOptions
 * @property {Engine} [engine]  'auto' (default): WebGPU where the browser has a hardware adapter, else the CPU
 * @property {'auto' | number} [threads]  CPU threads for the CPU engine: 'auto' (default) takes `navigator.hardwareConcurrency` (at most 8) in a cross-origin-isolated page and one elsewhere; a number above 1 needs a cross-origin-isolated page (COOP `same-origin`, COEP `require-corp`) and a browser with relaxed SIMD
 * @property {(p: LoadProgress) => void} [onProgress]
 * @property {CompiledModule | Promise<CompiledModule>} [compiled]  the library's WebAssembly module, compiled already (a page that runs the same module shares it: the worker then neither downloads nor compiles it)
 * @property {string} [offlineCache]  keep the downloaded bundle, once checked, in this Cache Storage cache (under the URLs it was fetched from), so that a service worker answering from `caches.match` serves it offline without downloading it again
 *
 * @typedef {object} CompiledModule
 * @property {WebAssembly.Module} module  compiled from a `web_bg.wasm` of this library's build
 * @property {string} glue  the URL of the `web.js` beside that `web_bg.wasm`
 *
 * @typedef {object} BundleFiles
 * @property {FileList | File[] | Map<string, Uint8Array>} files  every file of a `trainer export --format web` folder (or a Hugging Face folder)
 *
 * @typedef {object} Classification
 * @property {string} label  the most probable label
 * @property {number} confidence  its probability
 * @property {Record<string, number>} probabilities  every label's probability
 * @property {number} tokens  the text's tokens before truncation
 * @property {boolean} truncated  whether the text was longer than the model reads
 * @property {[number, number][]} [read]  with `{ spans: true }`: the parts of the text the model read, as [start, end) UTF-16 indices (the whole text unless truncated)
 *
 * @typedef {object} ExplainedPhrase
 * @property {string} text  the phrase
 * @property {number} start  where it starts in the text (UTF-16 index, as String.slice takes)
 * @property {number} end  where it ends
 * @property {number} delta  p(positive) with the phrase minus p(positive) without it
 *
 * @typedef {object} ClassifierInfo
 * @property {'webgpu' | 'cpu'} engine
 * @property {number} threads
 * @property {string[]} labels
 * @property {number} maxLen  tokens the model reads per text
 * @property {string} truncation  how longer texts are shortened ('head' or 'head+tail')
 * @property {string} dtype  how the weights are stored (f32, f16, int8)
 * @property {'f32' | 'int8'} products  the arithmetic of the matrix products
 * @property {number} temperature  what the (centred, raised) logits are divided by before the softmax: fitted on held-out data when the model was calibrated, 1 otherwise
 * @property {number} exponent  the power each centred logit is raised to, keeping its sign, before that: fitted with the temperature, 1 for plain temperature scaling
 * @property {number} bytes  the model's size in bytes
 * @property {number | null} accuracy  the test accuracy the bundle's manifest records, if any
 * @property {string | null} note  why the engine is not WebGPU (with engine 'auto'), or why it stopped being WebGPU (the GPU failed mid-session and the model moved to the CPU)
 *
 * @typedef {object} RequestOptions
 * @property {AbortSignal} [signal]  abort the request: its promise rejects with an AbortError
 *
 * @typedef {object} LabelledExample
 * @property {string} text
 * @property {string | number} label  one of the model's labels (any case), or its class index
 *
 * @typedef {object} FineTuneSettings
 * @property {number} [epochs]  passes over the training examples (default 2)
 * @property {number} [learningRate]  peak learning rate: warmup over the first 10% of steps, then linear decay (default 5e-5, the trainer's)
 * @property {number} [batchSize]  examples per step (default 16)
 * @property {number} [maxLen]  tokens per training text (default 128)
 * @property {'all' | 'head' | number} [layers]  what trains: every parameter (default), the head (pooler and classifier) only, or the top N transformer layers and the head
 * @property {number} [validation]  the fraction of the examples held out (stratified, seeded) to score the model before and after and to fit its calibration (default 0.2; 0 holds none out)
 * @property {number} [seed]  of the split, the data order and dropout (default 42)
 *
 * @typedef {object} FineTuneProgress
 * @property {'prepare' | 'train' | 'finish'} stage
 * @property {number} step  steps done
 * @property {number} steps  steps of the whole run
 * @property {number} [epoch]  the epoch (0-based) of the last step
 * @property {number} [loss]  the last step's mean cross-entropy
 * @property {number} [samplesPerSecond]  training examples per second so far
 * @property {number} [etaSeconds]  the time the remaining steps will take at that rate
 * @property {number} [checkpoint]  with a checkpoint: the step it kept
 * @property {string} [warning]  why checkpoints stopped (a full storage quota, the WebGPU engine), when they did
 *
 * @typedef {object} CheckpointOptions
 * @property {number} [steps]  keep one every this many steps
 * @property {number} [seconds]  keep one when this many seconds passed since the last (default 30)
 *
 * @typedef {object} FineTuneOptions
 * @property {(p: FineTuneProgress) => void} [onProgress]
 * @property {AbortSignal} [signal]  cancel the run between two steps: its promise rejects with an AbortError, the model before stays and the run's checkpoint is dropped
 * @property {CheckpointOptions | false} [checkpoint]  keep the run (weights, optimizer state, step; with its examples and settings) in the browser's storage (IndexedDB) as it goes, one run at a time, so that after a reload `resumeFineTune` goes on from the last checkpoint; on the CPU engine (default { seconds: 30 }; false: none)
 *
 * @typedef {object} SavedFineTune
 * @property {number} step  steps done when it was kept
 * @property {number} steps  steps of the whole run
 * @property {number} examples  how many labelled examples it runs on
 * @property {FineTuneSettings} settings
 * @property {number} savedAt  when it was kept (ms since the epoch)
 *
 * @typedef {object} HeldOutScores
 * @property {number} accuracy
 * @property {number} loss  mean cross-entropy of the raw logits
 * @property {number} [ece]  after: expected calibration error with the fitted calibration
 * @property {number} [eceUncalibrated]  after: the same with the raw logits
 *
 * @typedef {object} FineTuneReport
 * @property {HeldOutScores | null} before  the model before, on the held-out examples (null when none are held out)
 * @property {HeldOutScores | null} after  the fine-tuned model, on the same examples
 * @property {number} steps
 * @property {{train: number, validation: number}} examples
 * @property {number} seconds  the whole run, scoring and packaging included
 * @property {number} samplesPerSecond  training examples per second of the steps
 * @property {number} temperature  the fitted calibration (1 with nothing held out)
 * @property {number} exponent
 * @property {number} resumedFrom  the step a kept checkpoint let the run start from (0: from the start)
 * @property {string} [warning]  why checkpoints stopped, when they did
 *
 * @typedef {object} ClassifyOptions
 * @property {AbortSignal} [signal]  abort the request: its promise rejects with an AbortError
 * @property {boolean} [spans]  also say which parts of each text the model read (`read`)
 */

let workers = 0;

/** A sentiment classifier running in its own Web Worker. */
export class SentimentClassifier {
  /** @type {Worker | null} */
  #worker = null;
  /** @type {Promise<boolean> | null} */
  #ready = null;
  #nextId = 1;
  /** @type {Map<number, {resolve: Function, reject: Function, onProgress?: Function}>} */
  #pending = new Map();
  /** @type {{source: object, engine: Engine, offlineCache: string | null, threads: number, strictThreads: boolean} | null} */
  #source = null;
  /** @type {ClassifierInfo | null} */
  #info = null;
  #disposed = false;
  /** @type {CompiledModule | Promise<CompiledModule> | null} */
  #compiled = null;

  /** Use {@link SentimentClassifier.load}. */
  constructor() {}

  /**
   * Load a model: the URL of a web bundle folder (`manifest.json` and the files it
   * lists, each checked against its SHA-256), or the files of one opened from disk.
   * @param {string | URL | BundleFiles} source
   * @param {LoadOptions} [options]
   * @returns {Promise<SentimentClassifier>}
   */
  static async load(source, options = {}) {
    const engine = options.engine ?? 'auto';
    if (!['auto', 'webgpu', 'cpu'].includes(engine)) {
      throw new Error(`engine '${engine}': expected 'auto', 'webgpu' or 'cpu'`);
    }
    const threads = options.threads ?? 'auto';
    if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) {
      throw new Error(`threads ${threads}: expected 'auto' or a whole number from 1`);
    }
    const isolated = globalThis.crossOriginIsolated === true;
    if (threads !== 'auto' && threads > 1 && !isolated) {
      throw new Error(`threads ${threads}: this page is not cross-origin isolated, so WebAssembly has no shared memory for threads (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, or let a service worker add them)`);
    }
    const count = threads === 'auto' ? (isolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1) : threads;
    const offlineCache = options.offlineCache ?? null;
    if (offlineCache !== null && typeof offlineCache !== 'string') {
      throw new TypeError('offlineCache: expected the name of a Cache Storage cache');
    }
    const clf = new SentimentClassifier();
    clf.#compiled = options.compiled ?? null;
    clf.#source = { source: await describeSource(source), engine, offlineCache, threads: count, strictThreads: threads !== 'auto' };
    try {
      await clf.#load(options.onProgress);
    } catch (e) {
      clf.dispose();
      throw e;
    }
    return clf;
  }

  /** What was loaded and where it runs. @returns {ClassifierInfo} */
  get info() {
    if (!this.#info) throw new Error('the classifier is not loaded');
    return { ...this.#info, labels: [...this.#info.labels] };
  }

  /**
   * The worker running the model, for advanced use (it is replaced if it dies).
   * @returns {Worker | null}
   */
  get worker() {
    return this.#worker;
  }

  /**
   * Classify each text.
   * @param {string | string[]} texts
   * @param {ClassifyOptions} [options]
   * @returns {Promise<Classification[]>}
   */
  async classify(texts, options = {}) {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) {
      throw new TypeError('classify: expected a string or an array of strings');
    }
    if (list.length === 0) return [];
    return this.#request({ op: 'classify', texts: list, spans: !!options.spans }, options);
  }

  /**
   * Which phrases of `text` moved the answer, and how much (occlusion: each phrase
   * removed in turn).
   * @param {string} text
   * @param {RequestOptions} [options]
   * @returns {Promise<ExplainedPhrase[]>}
   */
  async explain(text, options = {}) {
    if (typeof text !== 'string') throw new TypeError('explain: expected a string');
    if (text.trim() === '') return [];
    return this.#request({ op: 'explain', text }, options);
  }

  /**
   * Fine-tune the model on labelled examples, in its worker, on its engine. The
   * fine-tuned model (in the model's own dtype, calibrated on the held-out part) is
   * used from then on; until the run ends, and after a cancelled or failed one, the
   * model before answers.
   * @param {LabelledExample[]} examples
   * @param {FineTuneSettings} [settings]
   * @param {FineTuneOptions} [options]
   * @returns {Promise<FineTuneReport>}
   */
  async fineTune(examples, settings = {}, options = {}) {
    if (!Array.isArray(examples)) throw new TypeError('fineTune: expected an array of { text, label }');
    examples.forEach((e, i) => {
      if (typeof e?.text !== 'string' || !(typeof e.label === 'string' || Number.isInteger(e.label))) {
        throw new TypeError(`fineTune: examples[${i}] is not { text: string, label: string | number }`);
      }
    });
    return this.#fineTune({ op: 'fineTune', examples, settings }, options);
  }

  /**
   * The fine-tuning run of this model kept in the browser's storage (by a `fineTune`
   * with checkpoints that did not end: the page was reloaded or closed), or null.
   * @param {RequestOptions} [options]
   * @returns {Promise<SavedFineTune | null>}
   */
  async savedFineTune(options = {}) {
    return this.#request({ op: 'savedFineTune' }, options);
  }

  /**
   * Go on with the kept run (`savedFineTune`) from its last checkpoint, on its own
   * examples and settings, to the model an uninterrupted run gives; rejects when
   * none of this model is kept.
   * @param {FineTuneOptions} [options]
   * @returns {Promise<FineTuneReport>}
   */
  async resumeFineTune(options = {}) {
    return this.#fineTune({ op: 'fineTune', resume: true }, options);
  }

  /**
   * Drop the kept run, if any.
   * @param {RequestOptions} [options]
   * @returns {Promise<void>}
   */
  async discardFineTune(options = {}) {
    await this.#request({ op: 'discardFineTune' }, options);
  }

  async #fineTune(message, options) {
    const checkpoint = options.checkpoint === false ? null : { seconds: 30, ...(options.checkpoint ?? {}) };
    const report = await this.#request({ ...message, checkpoint }, options, options.onProgress);
    // A worker started after this one dies loads the fine-tuned model, not the one before.
    const files = await this.#request({ op: 'exportBundle' });
    this.#source = { ...this.#source, source: { files } };
    return report;
  }

  /**
   * The model's web bundle, as `trainer export --format web` writes it (`manifest.json`
   * with every file's SHA-256, the weights, `tokenizer.json`, `config.json`): what
   * `trainer predict --model`, `load({ files })` and the page's "Use your own model"
   * open.
   * @param {RequestOptions} [options]
   * @returns {Promise<Map<string, Uint8Array>>}
   */
  async exportBundle(options = {}) {
    return this.#request({ op: 'exportBundle' }, options);
  }

  /** End the worker and free the model. Later calls reject. */
  dispose() {
    this.#disposed = true;
    this.#stop(new Error('the classifier was disposed'));
  }

  async #load(onProgress) {
    this.#start();
    this.#info = await this.#send({ op: 'load', ...this.#source }, onProgress);
  }

  // A fresh worker; `#ready` settles when its module started (or failed to).
  #start() {
    // The worker's name is the Web Lock it holds (not a URL parameter: a service
    // worker answering from its cache gives the worker the cached URL).
    const lock = `bert-sentiment-worker-${Date.now()}-${workers++}-${Math.random()}`;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: lock });
    this.#worker = worker;
    this.#ready = new Promise((resolve, reject) => {
      worker.addEventListener('message', (e) => {
        if (e.data?.ready === true) resolve(e.data.locked);
        else if (e.data?.ready === false) reject(new Error(e.data.error));
      });
      worker.addEventListener('error', (e) => {
        e.preventDefault?.();
        reject(new Error(`the classifier's worker failed to start: ${e.message || 'script error'}`));
      });
    });
    // Its module: the one compiled already, if it was given and compiled, else its own.
    Promise.resolve(this.#compiled)
      .catch(() => null)
      .then((c) => worker.postMessage(c?.module && c.glue ? { op: 'start', module: c.module, glue: String(c.glue) } : { op: 'start' }));
    worker.addEventListener('message', (e) => this.#receive(e.data));
    worker.addEventListener('error', (e) => this.#died(worker, e.message || 'script error'));
    this.#ready.then((locked) => {
      // Granted only once the worker has ended, however it ended.
      if (locked) navigator.locks.request(lock, () => this.#died(worker, 'it was terminated or crashed'));
    }, () => {});
  }

  #died(worker, why) {
    if (worker !== this.#worker) return;
    this.#stop(new Error(`the classifier's worker stopped (${why}); the next call starts a new one`));
  }

  #stop(error) {
    const worker = this.#worker;
    this.#worker = null;
    this.#ready = null;
    worker?.terminate();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }

  #receive(msg) {
    const p = this.#pending.get(msg?.id);
    if (!p) return;
    if (msg.progress) {
      try {
        p.onProgress?.(msg.progress);
      } catch (e) {
        console.error(e);
      }
      return;
    }
    this.#pending.delete(msg.id);
    if (msg.info) this.#info = msg.info;
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  }

  /**
   * @param {object} message
   * @param {RequestOptions} [options]
   * @param {Function} [onProgress]
   */
  async #request(message, { signal } = {}, onProgress = undefined) {
    if (this.#disposed) throw new Error('the classifier was disposed');
    if (!this.#info) throw new Error('the classifier is not loaded: await SentimentClassifier.load() first');
    signal?.throwIfAborted();
    if (!this.#worker) {
      // The last worker died: start another with the same model.
      await this.#load();
    }
    return this.#send(message, onProgress, signal);
  }

  // Posted at once, before the worker has started: it queues the request (a bundle
  // then downloads while the worker's module compiles).
  async #send(message, onProgress, signal) {
    const worker = this.#worker;
    if (!worker) throw new Error("the classifier's worker stopped");
    signal?.throwIfAborted();
    const id = this.#nextId++;
    // A worker that fails to start never answers: its start error is the answer.
    this.#ready?.catch((e) => {
      const p = this.#pending.get(id);
      this.#pending.delete(id);
      p?.reject(e);
    });
    return new Promise((resolve, reject) => {
      const abort = () => {
        if (!this.#pending.delete(id)) return;
        worker.postMessage({ op: 'cancel', id });
        reject(signal.reason ?? new DOMException('the request was aborted', 'AbortError'));
      };
      const done = (f) => (v) => {
        signal?.removeEventListener('abort', abort);
        f(v);
      };
      this.#pending.set(id, { resolve: done(resolve), reject: done(reject), onProgress });
      signal?.addEventListener('abort', abort, { once: true });
      worker.postMessage({ id, ...message });
    });
  }
}

/** @param {unknown} value  @returns {string} its built-in type, as `Object.prototype.toString` names it */
function tag(value) {
  return Object.prototype.toString.call(value).slice(8, -1);
}

// The source as the worker takes it: a URL resolved against this page, or a Map of
// file name to bytes.
async function describeSource(source) {
  if (typeof source === 'string' || source instanceof URL) {
    return { url: String(source), from: globalThis.location?.href ?? import.meta.url };
  }
  if (source && source.files) {
    const files = new Map();
    // By their tags rather than instanceof, so that a Map or a Uint8Array made in
    // another realm (an iframe, a test driver's script) is taken too.
    if (tag(source.files) === 'Map') {
      for (const [name, bytes] of source.files) {
        if (tag(bytes) !== 'Uint8Array') throw new TypeError(`files: ${name} is not a Uint8Array`);
        files.set(name, bytes);
      }
    } else {
      for (const file of Array.from(source.files)) {
        files.set(file.name, new Uint8Array(await file.arrayBuffer()));
      }
    }
    if (files.size === 0) throw new Error('files: no files given');
    return { files };
  }
  throw new TypeError("load: expected a bundle folder's URL or { files }");
}
