/** A sentiment classifier running in its own Web Worker. */
export class SentimentClassifier {
    /**
     * Load a model: the URL of a web bundle folder (`manifest.json` and the files it
     * lists, each checked against its SHA-256), or the files of one opened from disk.
     * @param {string | URL | BundleFiles} source
     * @param {LoadOptions} [options]
     * @returns {Promise<SentimentClassifier>}
     */
    static load(source: string | URL | BundleFiles, options?: LoadOptions): Promise<SentimentClassifier>;
    /** What was loaded and where it runs. @returns {ClassifierInfo} */
    get info(): ClassifierInfo;
    /**
     * The worker running the model, for advanced use (it is replaced if it dies).
     * @returns {Worker | null}
     */
    get worker(): Worker | null;
    /**
     * Classify each text.
     * @param {string | string[]} texts
     * @param {ClassifyOptions} [options]
     * @returns {Promise<Classification[]>}
     */
    classify(texts: string | string[], options?: ClassifyOptions): Promise<Classification[]>;
    /**
     * Which phrases of `text` moved the answer, and how much (occlusion: each phrase
     * removed in turn).
     * @param {string} text
     * @param {RequestOptions} [options]
     * @returns {Promise<ExplainedPhrase[]>}
     */
    explain(text: string, options?: RequestOptions): Promise<ExplainedPhrase[]>;
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
    fineTune(examples: LabelledExample[], settings?: FineTuneSettings, options?: FineTuneOptions): Promise<FineTuneReport>;
    /**
     * The fine-tuning run of this model kept in the browser's storage (by a `fineTune`
     * with checkpoints that did not end: the page was reloaded or closed), or null.
     * @param {RequestOptions} [options]
     * @returns {Promise<SavedFineTune | null>}
     */
    savedFineTune(options?: RequestOptions): Promise<SavedFineTune | null>;
    /**
     * Go on with the kept run (`savedFineTune`) from its last checkpoint, on its own
     * examples and settings, to the model an uninterrupted run gives; rejects when
     * none of this model is kept.
     * @param {FineTuneOptions} [options]
     * @returns {Promise<FineTuneReport>}
     */
    resumeFineTune(options?: FineTuneOptions): Promise<FineTuneReport>;
    /**
     * Drop the kept run, if any.
     * @param {RequestOptions} [options]
     * @returns {Promise<void>}
     */
    discardFineTune(options?: RequestOptions): Promise<void>;
    /**
     * The model's web bundle, as `trainer export --format web` writes it (`manifest.json`
     * with every file's SHA-256, the weights, `tokenizer.json`, `config.json`): what
     * `trainer predict --model`, `load({ files })` and the page's "Use your own model"
     * open.
     * @param {RequestOptions} [options]
     * @returns {Promise<Map<string, Uint8Array>>}
     */
    exportBundle(options?: RequestOptions): Promise<Map<string, Uint8Array>>;
    /** End the worker and free the model. Later calls reject. */
    dispose(): void;
    #private;
}
export type Engine = "auto" | "webgpu" | "cpu";
export type LoadProgress = {
    stage: "download" | "build";
    /**
     * the file being downloaded
     */
    file: string | null;
    /**
     * bytes of the whole bundle so far
     */
    loaded: number;
    /**
     * bytes of the whole bundle
     */
    total: number;
};
export type LoadOptions = {
    /**
     * 'auto' (default): WebGPU where the browser has a hardware adapter, else the CPU
     */
    engine?: Engine;
    /**
     * CPU threads for the CPU engine: 'auto' (default) takes `navigator.hardwareConcurrency` (at most 8) in a cross-origin-isolated page and one elsewhere; a number above 1 needs a cross-origin-isolated page (COOP `same-origin`, COEP `require-corp`) and a browser with relaxed SIMD
     */
    threads?: "auto" | number;
    onProgress?: (p: LoadProgress) => void;
    /**
     * the library's WebAssembly module, compiled already (a page that runs the same module shares it: the worker then neither downloads nor compiles it)
     */
    compiled?: CompiledModule | Promise<CompiledModule>;
    /**
     * keep the downloaded bundle, once checked, in this Cache Storage cache (under the URLs it was fetched from), so that a service worker answering from `caches.match` serves it offline without downloading it again
     */
    offlineCache?: string;
};
export type CompiledModule = {
    /**
     * compiled from a `web_bg.wasm` of this library's build
     */
    module: WebAssembly.Module;
    /**
     * the URL of the `web.js` beside that `web_bg.wasm`
     */
    glue: string;
};
export type BundleFiles = {
    /**
     * every file of a `trainer export --format web` folder (or a Hugging Face folder)
     */
    files: FileList | File[] | Map<string, Uint8Array>;
};
export type Classification = {
    /**
     * the most probable label
     */
    label: string;
    /**
     * its probability
     */
    confidence: number;
    /**
     * every label's probability
     */
    probabilities: Record<string, number>;
    /**
     * the text's tokens before truncation
     */
    tokens: number;
    /**
     * whether the text was longer than the model reads
     */
    truncated: boolean;
    /**
     * with `{ spans: true }`: the parts of the text the model read, as [start, end) UTF-16 indices (the whole text unless truncated)
     */
    read?: [number, number][];
};
export type ExplainedPhrase = {
    /**
     * the phrase
     */
    text: string;
    /**
     * where it starts in the text (UTF-16 index, as String.slice takes)
     */
    start: number;
    /**
     * where it ends
     */
    end: number;
    /**
     * p(positive) with the phrase minus p(positive) without it
     */
    delta: number;
};
export type ClassifierInfo = {
    engine: "webgpu" | "cpu";
    threads: number;
    labels: string[];
    /**
     * tokens the model reads per text
     */
    maxLen: number;
    /**
     * how longer texts are shortened ('head' or 'head+tail')
     */
    truncation: string;
    /**
     * how the weights are stored (f32, f16, int8)
     */
    dtype: string;
    /**
     * the arithmetic of the matrix products
     */
    products: "f32" | "int8";
    /**
     * what the (centred, raised) logits are divided by before the softmax: fitted on held-out data when the model was calibrated, 1 otherwise
     */
    temperature: number;
    /**
     * the power each centred logit is raised to, keeping its sign, before that: fitted with the temperature, 1 for plain temperature scaling
     */
    exponent: number;
    /**
     * the model's size in bytes
     */
    bytes: number;
    /**
     * the test accuracy the bundle's manifest records, if any
     */
    accuracy: number | null;
    /**
     * why the engine is not WebGPU (with engine 'auto'), or why it stopped being WebGPU (the GPU failed mid-session and the model moved to the CPU)
     */
    note: string | null;
};
export type RequestOptions = {
    /**
     * abort the request: its promise rejects with an AbortError
     */
    signal?: AbortSignal;
};
export type LabelledExample = {
    text: string;
    /**
     * one of the model's labels (any case), or its class index
     */
    label: string | number;
};
export type FineTuneSettings = {
    /**
     * passes over the training examples (default 2)
     */
    epochs?: number;
    /**
     * peak learning rate: warmup over the first 10% of steps, then linear decay (default 5e-5, the trainer's)
     */
    learningRate?: number;
    /**
     * examples per step (default 16)
     */
    batchSize?: number;
    /**
     * tokens per training text (default 128)
     */
    maxLen?: number;
    /**
     * what trains: every parameter (default), the head (pooler and classifier) only, or the top N transformer layers and the head
     */
    layers?: "all" | "head" | number;
    /**
     * the fraction of the examples held out (stratified, seeded) to score the model before and after and to fit its calibration (default 0.2; 0 holds none out)
     */
    validation?: number;
    /**
     * of the split, the data order and dropout (default 42)
     */
    seed?: number;
};
export type FineTuneProgress = {
    stage: "prepare" | "train" | "finish";
    /**
     * steps done
     */
    step: number;
    /**
     * steps of the whole run
     */
    steps: number;
    /**
     * the epoch (0-based) of the last step
     */
    epoch?: number;
    /**
     * the last step's mean cross-entropy
     */
    loss?: number;
    /**
     * training examples per second so far
     */
    samplesPerSecond?: number;
    /**
     * the time the remaining steps will take at that rate
     */
    etaSeconds?: number;
    /**
     * with a checkpoint: the step it kept
     */
    checkpoint?: number;
    /**
     * why checkpoints stopped (a full storage quota, the WebGPU engine), when they did
     */
    warning?: string;
};
export type CheckpointOptions = {
    /**
     * keep one every this many steps
     */
    steps?: number;
    /**
     * keep one when this many seconds passed since the last (default 30)
     */
    seconds?: number;
};
export type FineTuneOptions = {
    onProgress?: (p: FineTuneProgress) => void;
    /**
     * cancel the run between two steps: its promise rejects with an AbortError, the model before stays and the run's checkpoint is dropped
     */
    signal?: AbortSignal;
    /**
     * keep the run (weights, optimizer state, step; with its examples and settings) in the browser's storage (IndexedDB) as it goes, one run at a time, so that after a reload `resumeFineTune` goes on from the last checkpoint; on the CPU engine (default { seconds: 30 }; false: none)
     */
    checkpoint?: CheckpointOptions | false;
};
export type SavedFineTune = {
    /**
     * steps done when it was kept
     */
    step: number;
    /**
     * steps of the whole run
     */
    steps: number;
    /**
     * how many labelled examples it runs on
     */
    examples: number;
    settings: FineTuneSettings;
    /**
     * when it was kept (ms since the epoch)
     */
    savedAt: number;
};
export type HeldOutScores = {
    accuracy: number;
    /**
     * mean cross-entropy of the raw logits
     */
    loss: number;
    /**
     * after: expected calibration error with the fitted calibration
     */
    ece?: number;
    /**
     * after: the same with the raw logits
     */
    eceUncalibrated?: number;
};
export type FineTuneReport = {
    /**
     * the model before, on the held-out examples (null when none are held out)
     */
    before: HeldOutScores | null;
    /**
     * the fine-tuned model, on the same examples
     */
    after: HeldOutScores | null;
    steps: number;
    examples: {
        train: number;
        validation: number;
    };
    /**
     * the whole run, scoring and packaging included
     */
    seconds: number;
    /**
     * training examples per second of the steps
     */
    samplesPerSecond: number;
    /**
     * the fitted calibration (1 with nothing held out)
     */
    temperature: number;
    exponent: number;
    /**
     * the step a kept checkpoint let the run start from (0: from the start)
     */
    resumedFrom: number;
    /**
     * why checkpoints stopped, when they did
     */
    warning?: string;
};
export type ClassifyOptions = {
    /**
     * abort the request: its promise rejects with an AbortError
     */
    signal?: AbortSignal;
    /**
     * also say which parts of each text the model read (`read`)
     */
    spans?: boolean;
};
