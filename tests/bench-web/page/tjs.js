// The Transformers.js side of the browser benchmark: the release model, exported to ONNX by
// tools/export_onnx.py, run by Transformers.js from local files only.
import { env, pipeline } from '/transformers/transformers.min.js';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/models/';
env.useBrowserCache = false;
env.backends.onnx.wasm.wasmPaths = '/ort/';
// As many threads as our page gets (bench.mjs's THREADS, in the URL): one unless the page is
// cross-origin isolated, which ORT Web needs for threads too. Said explicitly, not left to its default.
env.backends.onnx.wasm.numThreads = Number(new URLSearchParams(location.search).get('threads') || 1);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/// Load the model on `device` ('wasm' or 'webgpu') at `dtype` ('fp32' or 'q8'), then time one
/// review `reps` times (after a warm-up) and the `many` reviews in one call.
window.benchTjs = async ({ device, dtype, one, many, reps }) => {
  const t0 = performance.now();
  const classify = await pipeline('text-classification', 'release', { device, dtype });
  const loadMs = performance.now() - t0;
  const first = await classify(one);
  const single = [];
  // bench.mjs's COUNT_GPU, evaluated in this page, counts WebGPU work into self.__gpu (ORT
  // Web's WebGPU provider runs on the page's thread).
  const gpu = self.__gpu ?? { dispatches: 0, submits: 0 };
  let perReview = null;
  for (let i = 0; i < reps; i++) {
    const before = { ...gpu };
    const t = performance.now();
    await classify(one);
    single.push(performance.now() - t);
    perReview ??= { dispatches: gpu.dispatches - before.dispatches, submits: gpu.submits - before.submits };
  }
  const t1 = performance.now();
  const out = await classify(many);
  const manyMs = performance.now() - t1;
  await classify.dispose?.();
  return {
    load_ms: loadMs,
    single_ms: single,
    single_median_ms: median(single),
    many_ms: manyMs,
    many_reviews_per_s: many.length / (manyMs / 1000),
    // WebGPU work for one review (the first timed run, after the warm-up); zero on wasm.
    gpu_per_review: perReview,
    one_label: first[0].label,
    one_score: first[0].score,
    many_labels: out.map((o) => o.label),
  };
};
window.tjsReady = true;
