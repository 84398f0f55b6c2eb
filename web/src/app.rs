//! The page: a Leptos (client-side rendered) app around [`model_core::Classifier`].
//!
//! State lives in one [`State`] of signals shared through the component tree.
//! Model work runs in `spawn_local` tasks and yields to the browser between
//! chunks, so the page keeps painting and taking input while it classifies.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use model_core::bundle::Manifest;
use model_core::tokenizer::Encoded;
use model_core::{Classifier, Prediction, Products};

use crate::engine::{Engine, best_device, device_for, webgpu_lost};
use crate::fetch::{download, fetch_bytes, now_ms, read_file, yield_now};
use crate::text::{
    BatchItem, BatchRow, capitalize, confusion, kept_windows, parse_batch, phrases, pieces,
    positive_index, results_csv, without, word_spans,
};

/// A review is tokenized in pieces of this many bytes, with a yield to the browser
/// between pieces, so that a pasted novel never freezes the page.
const PIECE_BYTES: usize = 16 * 1024;

/// Where the page gets its model.
#[derive(Clone)]
pub enum ModelSource {
    /// A folder URL (ending in `/`) holding `manifest.json` and the files it lists.
    Url(String),
    /// Files already in memory, by name (tests, and bundles opened from disk).
    Files(Rc<HashMap<String, Vec<u8>>>),
}

/// A verified bundle: the manifest and its files.
struct Bundle {
    manifest: Manifest,
    files: HashMap<String, Vec<u8>>,
}

/// The classifier and the engine it runs on.
struct Model {
    classifier: Classifier,
    engine: Engine,
}

/// Where loading stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Choosing a backend.
    Starting,
    /// Downloading `file`; `done` of `total` bytes of the whole bundle.
    Downloading { file: String, done: u64, total: u64 },
    /// Building the model on the device and warming it up.
    Building,
    /// Ready to classify.
    Ready,
    /// Loading failed; the message says what and why.
    Failed(String),
}

/// The answer shown for one review.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    prediction: Prediction,
    latency_ms: f64,
    engine: Engine,
    max_len: usize,
    truncation: String,
    /// Byte ranges of the review the model read (all of it, unless truncated).
    windows: Vec<Range<usize>>,
}

/// Occlusion result: each phrase with the change in p(positive) when it is removed.
#[derive(Debug, Clone, PartialEq)]
struct Explanation {
    /// The text explained: the review, or for a truncated one the parts the model
    /// read, joined by spaces.
    text: String,
    spans: Vec<(Range<usize>, f32)>,
    positive: String,
    /// Where `text` skips part of the review: (byte position, characters left out).
    gaps: Vec<(usize, usize)>,
}

/// The page's state: copyable handles to signals.
#[derive(Clone, Copy)]
struct State {
    source: StoredValue<ModelSource, LocalStorage>,
    bundle: StoredValue<Option<Rc<Bundle>>, LocalStorage>,
    model: StoredValue<Option<Rc<Model>>, LocalStorage>,
    status: RwSignal<Status>,
    engine: RwSignal<Option<Engine>>,
    webgpu_note: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
    labels: RwSignal<Vec<String>>,
    model_info: RwSignal<Option<String>>,
    text: RwSignal<String>,
    busy: RwSignal<bool>,
    shown: RwSignal<Option<Shown>>,
    error: RwSignal<Option<String>>,
    explaining: RwSignal<Option<(usize, usize)>>,
    explanation: RwSignal<Option<Explanation>>,
    batch_text: RwSignal<String>,
    batch_rows: RwSignal<Vec<BatchRow>>,
    batch_progress: RwSignal<Option<(usize, usize)>>,
    batch_error: RwSignal<Option<String>>,
    first_prediction_ms: RwSignal<Option<f64>>,
}

/// Mount the page on `<body>` with the model served next to it in `model/`.
pub fn mount() {
    console_error_panic_hook_lite();
    crate::fetch::register_service_worker("./sw.js");
    leptos::mount::mount_to_body(|| view! { <App source=ModelSource::Url("model/".into()) /> })
}

/// Report Rust panics on the console instead of an opaque "unreachable".
fn console_error_panic_hook_lite() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("panic: {info}").into());
    }));
}

#[component]
pub fn App(source: ModelSource) -> impl IntoView {
    let state = State {
        source: StoredValue::new_local(source),
        bundle: StoredValue::new_local(None),
        model: StoredValue::new_local(None),
        status: RwSignal::new(Status::Starting),
        engine: RwSignal::new(None),
        webgpu_note: RwSignal::new(None),
        notice: RwSignal::new(None),
        labels: RwSignal::new(Vec::new()),
        model_info: RwSignal::new(None),
        text: RwSignal::new(String::new()),
        busy: RwSignal::new(false),
        shown: RwSignal::new(None),
        error: RwSignal::new(None),
        explaining: RwSignal::new(None),
        explanation: RwSignal::new(None),
        batch_text: RwSignal::new(String::new()),
        batch_rows: RwSignal::new(Vec::new()),
        batch_progress: RwSignal::new(None),
        batch_error: RwSignal::new(None),
        first_prediction_ms: RwSignal::new(None),
    };
    spawn_local(async move {
        let (engine, _, why) = best_device().await;
        state.engine.set(Some(engine));
        state.webgpu_note.set(why);
        load(state).await;
    });
    view! {
        <header class="top">
            <h1>"Review sentiment"</h1>
            <p class="tagline">
                "A BERT model fine-tuned with this project's Rust trainer, running in your browser. "
                "Your text never leaves this device."
            </p>
            <EngineBar state />
        </header>
        <main>
            <ModelPanel state />
            <SingleReview state />
            <BatchPanel state />
        </main>
        <footer>
            <span>{move || state.model_info.get().unwrap_or_default()}</span>
        </footer>
    }
}

/// Load the bundle from the page's source, then build the model.
async fn load(state: State) {
    state.error.set(None);
    let result = match state.source.get_value() {
        ModelSource::Url(base) => fetch_bundle(state, &base).await,
        ModelSource::Files(files) => bundle_from_files(&files),
    };
    match result {
        Ok(bundle) => install(state, Rc::new(bundle)).await,
        Err(e) => state.status.set(Status::Failed(e)),
    }
}

/// Download `manifest.json` and the files it lists, each checked against its hash.
async fn fetch_bundle(state: State, base: &str) -> Result<Bundle, String> {
    state.status.set(Status::Downloading {
        file: "manifest.json".into(),
        done: 0,
        total: 0,
    });
    let manifest_bytes = fetch_bytes(&format!("{base}manifest.json"), true, |_| {}).await?;
    let manifest = Manifest::parse(&manifest_bytes, &format!("{base}manifest.json"))
        .map_err(|e| e.to_string())?;
    let total = manifest.total_bytes();
    let mut done = 0u64;
    let mut files = HashMap::new();
    for f in manifest.files.clone() {
        // The hash in the URL makes each model version its own cache entry, so the
        // service worker can serve model files cache-first without going stale.
        let url = format!("{base}{}?v={}", f.name, &f.sha256[..16.min(f.sha256.len())]);
        let before = done;
        let name = f.name.clone();
        let bytes = fetch_bytes(&url, false, |n| {
            state.status.set(Status::Downloading {
                file: name.clone(),
                done: before + n,
                total,
            })
        })
        .await?;
        manifest
            .verify(&f.name, &bytes)
            .map_err(|e| format!("{base}{e}"))?;
        done += bytes.len() as u64;
        files.insert(f.name.clone(), bytes);
    }
    Ok(Bundle { manifest, files })
}

fn bundle_from_files(files: &HashMap<String, Vec<u8>>) -> Result<Bundle, String> {
    let manifest_bytes = files.get("manifest.json").ok_or(
        "manifest.json is missing: pick every file of a `trainer export --format web` folder",
    )?;
    let manifest = Manifest::parse(manifest_bytes, "manifest.json").map_err(|e| e.to_string())?;
    for f in &manifest.files {
        let bytes = files
            .get(&f.name)
            .ok_or_else(|| format!("{} is missing (the manifest lists it)", f.name))?;
        manifest.verify(&f.name, bytes).map_err(|e| e.to_string())?;
    }
    Ok(Bundle {
        manifest,
        files: files.clone(),
    })
}

/// Build the classifier on the current engine, warm it up, and make it current.
async fn install(state: State, bundle: Rc<Bundle>) {
    state.status.set(Status::Building);
    yield_now().await;
    let engine = state.engine.get_untracked().unwrap_or(Engine::Cpu);
    match build(&bundle, engine).await {
        Ok(model) => {
            let m = &bundle.manifest;
            state.labels.set(m.labels.clone());
            let accuracy = m
                .metrics
                .get("accuracy")
                .and_then(|a| a.as_f64())
                .map(|a| format!(", test accuracy {:.2}%", a * 100.0))
                .unwrap_or_default();
            let bytes: u64 = m.total_bytes();
            // The CPU engine computes an int8 export's projections in int8
            // (model_core::Products); WebGPU computes in f32.
            let arithmetic =
                if model.engine == Engine::Cpu && model.classifier.products() == Products::Int8 {
                    " (int8 arithmetic)"
                } else {
                    ""
                };
            state.model_info.set(Some(format!(
                "Model: {} labels ({}), {} weights{arithmetic}, {:.1} MB, max {} tokens ({}){accuracy}.",
                m.labels.len(),
                m.labels.join(", "),
                m.dtype,
                bytes as f64 / 1e6,
                m.max_len,
                m.truncation,
            )));
            state.model.set_value(Some(Rc::new(model)));
            state.bundle.set_value(Some(bundle));
            state.status.set(Status::Ready);
            if state.first_prediction_ms.get_untracked().is_none() {
                state.first_prediction_ms.set(Some(now_ms()));
            }
        }
        Err(e) => state.status.set(Status::Failed(e)),
    }
}

async fn build(bundle: &Bundle, engine: Engine) -> Result<Model, String> {
    let device = device_for(engine).await?;
    let (classifier, _) = Classifier::from_bundle(
        &bundle.manifest,
        |name| bundle.files.get(name).map(Vec::as_slice),
        &device,
        16,
    )
    .map_err(|e| e.to_string())?;
    // The first pass compiles GPU pipelines and touches every weight: do it now,
    // not when the user presses Classify.
    classifier
        .predict_async(&["warm up"])
        .await
        .map_err(|e| format!("{engine}: {e}"))?;
    Ok(Model { classifier, engine })
}

/// Run the model; if WebGPU fails mid-session (device lost...), rebuild on the CPU
/// and try once more.
async fn predict(state: State, texts: &[&str]) -> Result<Vec<Prediction>, String> {
    let model = state.model.get_value().ok_or("the model is not loaded")?;
    let encoded = model.classifier.encode(texts).map_err(|e| e.to_string())?;
    predict_encoded(state, encoded).await
}

/// [`predict`] on reviews already tokenized.
async fn predict_encoded(state: State, encoded: Vec<Encoded>) -> Result<Vec<Prediction>, String> {
    let mut model = state.model.get_value().ok_or("the model is not loaded")?;
    if model.engine == Engine::WebGpu
        && let Some(why) = webgpu_lost()
    {
        // Never call into a dead device: move to the CPU first.
        state.notice.set(Some(format!(
            "WebGPU failed (the GPU device was lost: {why}); switched to the CPU."
        )));
        switch_engine(state, Engine::Cpu).await?;
        model = state.model.get_value().ok_or("the model is not loaded")?;
    }
    match model
        .classifier
        .predict_encoded_async(encoded.clone())
        .await
    {
        Ok(p) => Ok(p),
        Err(e) if model.engine == Engine::WebGpu => {
            state
                .notice
                .set(Some(format!("WebGPU failed ({e}); switched to the CPU.")));
            switch_engine(state, Engine::Cpu).await?;
            let model = state.model.get_value().ok_or("the model is not loaded")?;
            model
                .classifier
                .predict_encoded_async(encoded)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Tokenize one review piece by piece, yielding to the browser between pieces,
/// and work out which parts of it the model reads.
async fn read_review(state: State, text: &str) -> Result<(Encoded, Vec<Range<usize>>), String> {
    let model = state.model.get_value().ok_or("the model is not loaded")?;
    let c = &model.classifier;
    let parts = pieces(text, PIECE_BYTES);
    let many = parts.len() > 1;
    let (mut ids, mut offsets) = (Vec::new(), Vec::new());
    for r in parts {
        let (i, o) = c
            .tokenizer
            .content_ids_with_offsets(&text[r.clone()])
            .map_err(|e| e.to_string())?;
        ids.extend(i);
        offsets.extend(o.into_iter().map(|(a, b)| (a + r.start, b + r.start)));
        if many {
            yield_now().await;
        }
    }
    let (max_len, truncation) = (c.options.max_len, c.options.truncation);
    let (head, tail) = truncation.split(max_len.saturating_sub(c.tokenizer.num_special()));
    let windows = kept_windows(&offsets, text.len(), head, tail);
    let encoded = c
        .tokenizer
        .wrap(ids, max_len, truncation)
        .map_err(|e| e.to_string())?;
    Ok((encoded, windows))
}

async fn switch_engine(state: State, engine: Engine) -> Result<(), String> {
    if engine == Engine::WebGpu
        && let Some(why) = webgpu_lost()
    {
        return Err(format!(
            "the GPU device was lost ({why}); reload the page to use WebGPU again"
        ));
    }
    let bundle = state.bundle.get_value().ok_or("the model is not loaded")?;
    state.status.set(Status::Building);
    match build(&bundle, engine).await {
        Ok(model) => {
            state.model.set_value(Some(Rc::new(model)));
            state.engine.set(Some(engine));
            state.status.set(Status::Ready);
            Ok(())
        }
        Err(e) => {
            // Keep the model we had.
            state.status.set(Status::Ready);
            Err(e)
        }
    }
}

#[component]
fn EngineBar(state: State) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        let wanted = if event_target_value(&ev) == "webgpu" {
            Engine::WebGpu
        } else {
            Engine::Cpu
        };
        if state.engine.get_untracked() == Some(wanted) {
            return;
        }
        spawn_local(async move {
            match switch_engine(state, wanted).await {
                Ok(()) => state.notice.set(None),
                Err(e) => state.notice.set(Some(e)),
            }
        });
    };
    view! {
        <div class="engine">
            <label for="engine">"Runs on "</label>
            <select
                id="engine"
                on:change=on_change
                prop:value=move || match state.engine.get() {
                    Some(Engine::WebGpu) => "webgpu",
                    _ => "cpu",
                }
                disabled=move || state.status.get() != Status::Ready
            >
                <option value="webgpu">"WebGPU"</option>
                <option value="cpu">"CPU (wasm)"</option>
            </select>
            <span class="engine-name" data-testid="engine">
                {move || state.engine.get().map(|e| e.to_string()).unwrap_or_else(|| "…".into())}
            </span>
            {move || state.webgpu_note.get().map(|n| view! { <span class="note">{n}</span> })}
            {move || state.notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
        </div>
    }
}

#[component]
fn ModelPanel(state: State) -> impl IntoView {
    let open_bundle = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(list) = input.files() else { return };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        spawn_local(async move {
            let mut map = HashMap::new();
            for f in files {
                match read_file(&f).await {
                    Ok(bytes) => {
                        map.insert(f.name(), bytes);
                    }
                    Err(e) => {
                        state.status.set(Status::Failed(e));
                        return;
                    }
                }
            }
            state.source.set_value(ModelSource::Files(Rc::new(map)));
            load(state).await;
        });
    };
    view! {
        <section class="model" aria-label="Model">
            {move || match state.status.get() {
                Status::Starting => view! { <p>"Starting…"</p> }.into_any(),
                Status::Downloading { file, done, total } => {
                    let caption = format!(
                        "Downloading the model ({file}): {:.1} of {:.1} MB",
                        done as f64 / 1e6,
                        total as f64 / 1e6,
                    );
                    progress_view("download", caption, done as f64, total as f64).into_any()
                }
                Status::Building => view! { <p>"Preparing the model…"</p> }.into_any(),
                Status::Ready => view! { <p class="ready">"Model ready."</p> }.into_any(),
                Status::Failed(e) => {
                    view! {
                        <div class="error" role="alert">
                            <p>"The model could not be loaded: " {e}</p>
                            <button on:click=move |_| spawn_local(load(state))>"Retry"</button>
                        </div>
                    }
                        .into_any()
                }
            }}
            <details>
                <summary>"Use your own model"</summary>
                <p>
                    "Pick all files of a folder made by "
                    <code>"trainer export --format web"</code>
                    " (manifest.json, config.json, tokenizer.json and the weights). They are read locally."
                </p>
                <input
                    type="file"
                    multiple
                    aria-label="Model bundle files"
                    on:change=open_bundle
                />
            </details>
        </section>
    }
}

/// A labelled progress bar.
fn progress_view(id: &'static str, caption: String, done: f64, total: f64) -> impl IntoView {
    view! {
        <label for=id>{caption}</label>
        <progress id=id max=total.max(1.0) value=done></progress>
    }
}

fn classify(state: State) {
    let text = state.text.get_untracked();
    if text.trim().is_empty() || state.busy.get_untracked() {
        return;
    }
    state.busy.set(true);
    state.error.set(None);
    state.explanation.set(None);
    spawn_local(async move {
        let t0 = now_ms();
        let result = match read_review(state, &text).await {
            Ok((encoded, windows)) => predict_encoded(state, vec![encoded])
                .await
                .map(|p| (p, windows)),
            Err(e) => Err(e),
        };
        let latency_ms = now_ms() - t0;
        match result {
            Ok((mut p, windows)) => {
                let model = state.model.get_value();
                let bundle = state.bundle.get_value();
                if let (Some(model), Some(bundle), Some(prediction)) = (model, bundle, p.pop()) {
                    state.shown.set(Some(Shown {
                        prediction,
                        latency_ms,
                        engine: model.engine,
                        max_len: bundle.manifest.max_len,
                        truncation: bundle.manifest.truncation.to_string(),
                        windows,
                    }));
                }
            }
            Err(e) => state.error.set(Some(e)),
        }
        state.busy.set(false);
    });
}

/// Occlusion: remove each phrase in turn and record how p(positive) moves.
fn explain(state: State) {
    let Some(shown) = state.shown.get_untracked() else {
        return;
    };
    let review = state.text.get_untracked();
    let labels = state.labels.get_untracked();
    let pos = positive_index(&labels);
    let whole = shown.windows.len() == 1 && shown.windows[0] == (0..review.len());
    // A truncated review is explained on what the model read: its kept parts.
    let (text, gaps) = if whole {
        (review, Vec::new())
    } else {
        read_parts(&review, &shown.windows)
    };
    let groups = phrases_between(&text, &gaps, 48);
    state.busy.set(true);
    state.explaining.set(Some((0, groups.len())));
    spawn_local(async move {
        let base = if whole {
            shown.prediction.probabilities[pos].1
        } else {
            match predict(state, &[text.as_str()]).await {
                Ok(p) => {
                    yield_now().await;
                    p[0].probabilities[pos].1
                }
                Err(e) => {
                    state.error.set(Some(e));
                    state.explaining.set(None);
                    state.busy.set(false);
                    return;
                }
            }
        };
        // Variants go through the model a few at a time (about 256 tokens per run),
        // with a yield between runs, so the page stays responsive while it explains.
        let tokens = state
            .model
            .get_value()
            .and_then(|m| m.classifier.encode(&[text.as_str()]).ok())
            .map_or(1, |e| e[0].ids.len());
        let per_run = (256 / tokens.max(1)).clamp(1, 8);
        let mut spans = Vec::with_capacity(groups.len());
        for chunk in groups.chunks(per_run) {
            let variants: Vec<String> = chunk.iter().map(|g| without(&text, g)).collect();
            let refs: Vec<&str> = variants.iter().map(String::as_str).collect();
            match predict(state, &refs).await {
                Ok(preds) => {
                    for (g, p) in chunk.iter().zip(preds) {
                        spans.push((g.clone(), base - p.probabilities[pos].1));
                    }
                }
                Err(e) => {
                    state.error.set(Some(e));
                    break;
                }
            }
            state.explaining.set(Some((spans.len(), groups.len())));
            yield_now().await;
        }
        if spans.len() == groups.len() {
            state.explanation.set(Some(Explanation {
                text,
                spans,
                positive: labels[pos].clone(),
                gaps,
            }));
        }
        state.explaining.set(None);
        state.busy.set(false);
    });
}

/// The parts of `review` in `windows`, joined by spaces, and where the result skips
/// text: (byte position, characters left out).
fn read_parts(review: &str, windows: &[Range<usize>]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut gaps = Vec::new();
    let mut prev = 0;
    for w in windows {
        if w.start > prev {
            gaps.push((text.len(), review[prev..w.start].chars().count()));
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&review[w.clone()]);
        prev = w.end;
    }
    if prev < review.len() {
        gaps.push((text.len(), review[prev..].chars().count()));
    }
    (text, gaps)
}

/// Phrases for occlusion that never straddle a gap: each stretch between gaps gets
/// its share of the `max` phrases.
fn phrases_between(text: &str, gaps: &[(usize, usize)], max: usize) -> Vec<Range<usize>> {
    let words = word_spans(text);
    let mut bounds: Vec<usize> = gaps.iter().map(|g| g.0).collect();
    bounds.push(usize::MAX);
    let mut out = Vec::new();
    let mut rest = &words[..];
    for b in bounds {
        let n = rest.iter().take_while(|w| w.start < b).count();
        let (stretch, after) = rest.split_at(n);
        let share = (max * stretch.len()).div_ceil(words.len().max(1)).max(1);
        out.extend(phrases(stretch, share));
        rest = after;
    }
    out
}

#[component]
fn SingleReview(state: State) -> impl IntoView {
    let ready = move || state.status.get() == Status::Ready;
    let empty = move || state.text.with(|t| t.trim().is_empty());
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if (ev.ctrl_key() || ev.meta_key()) && ev.key() == "Enter" {
            ev.prevent_default();
            classify(state);
        }
    };
    view! {
        <section class="single" aria-labelledby="single-title">
            <h2 id="single-title">"One review"</h2>
            <label for="review">"Review text"</label>
            <textarea
                id="review"
                rows="7"
                placeholder="Paste or type a movie review…"
                prop:value=move || state.text.get()
                on:input=move |ev| state.text.set(event_target_value(&ev))
                on:keydown=on_key
            ></textarea>
            <div class="actions">
                <button
                    id="classify"
                    class="primary"
                    on:click=move |_| classify(state)
                    disabled=move || !ready() || empty() || state.busy.get()
                >
                    "Classify"
                </button>
                <span class="hint">
                    {move || {
                        if !ready() {
                            "Waiting for the model…"
                        } else if empty() {
                            "Type a review to classify it."
                        } else {
                            "Ctrl+Enter classifies."
                        }
                    }}
                </span>
            </div>
            <div class="result" aria-live="polite" data-testid="result">
                {move || state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {move || state.shown.get().map(|s| result_view(state, s))}
            </div>
            {move || {
                state.explaining.get().map(|(done, total)| {
                    let caption = format!("Explaining: {done} of {total} phrases");
                    progress_view("explain-progress", caption, done as f64, total as f64)
                })
            }}
            {move || state.explanation.get().map(explanation_view)}
        </section>
    }
}

fn result_view(state: State, s: Shown) -> impl IntoView {
    let p = &s.prediction;
    let pct = p.confidence * 100.0;
    let kind = if p.label.eq_ignore_ascii_case("positive") {
        "positive"
    } else if p.label.eq_ignore_ascii_case("negative") {
        "negative"
    } else {
        "other"
    };
    let headline = format!("{}, {:.0}% confidence", capitalize(&p.label), pct);
    let probs = p
        .probabilities
        .iter()
        .map(|(l, v)| format!("{l} {:.1}%", v * 100.0))
        .collect::<Vec<_>>()
        .join(" · ");
    let truncated = p.truncated.then(|| {
        let budget = s.max_len.saturating_sub(2);
        let how = if s.truncation == "head" {
            "kept the beginning"
        } else {
            "kept the beginning and the end"
        };
        format!(
            "This review has {} tokens; the model reads at most {budget}, so it {how} ({} truncation).",
            p.tokens, s.truncation
        )
    });
    view! {
        <div class=format!("verdict {kind}")>
            <p class="label" data-testid="label">{headline}</p>
            <div
                class="bar"
                role="meter"
                aria-label="Confidence"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=format!("{pct:.0}")
            >
                <div class="fill" style:width=format!("{pct:.1}%")></div>
            </div>
            <p class="probs">{probs}</p>
            <p class="meta" data-testid="meta">
                {format!("{:.0} ms on {}", s.latency_ms, s.engine)}
            </p>
            {truncated.map(|t| view! { <p class="notice">{t}</p> })}
            <button
                id="explain"
                on:click=move |_| explain(state)
                disabled=move || state.busy.get()
            >
                "Why?"
            </button>
        </div>
    }
}

fn explanation_view(e: Explanation) -> impl IntoView {
    let max = e.spans.iter().fold(1e-6f32, |m, (_, d)| m.max(d.abs()));
    // Plain text, highlighted phrases, and markers where a truncated review skips text.
    enum Piece {
        Plain(String),
        Phrase(String, f32),
        Gap(usize),
    }
    let mut pieces = Vec::new();
    let mut gaps = e.gaps.iter().peekable();
    // Phrases never straddle a gap, so each gap falls in a stretch of plain text.
    let mut plain = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        let mut at = from;
        while let Some(&&(pos, chars)) = gaps.peek() {
            if pos > to {
                break;
            }
            if pos > at {
                pieces.push(Piece::Plain(e.text[at..pos].to_string()));
                at = pos;
            }
            pieces.push(Piece::Gap(chars));
            gaps.next();
        }
        if to > at {
            pieces.push(Piece::Plain(e.text[at..to].to_string()));
        }
    };
    let mut at = 0;
    for (range, delta) in &e.spans {
        plain(&mut pieces, at, range.start);
        pieces.push(Piece::Phrase(e.text[range.clone()].to_string(), *delta));
        at = range.end;
    }
    plain(&mut pieces, at, e.text.len());
    let positive = e.positive.clone();
    let rendered = pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Plain(s) => view! { <span>{s}</span> }.into_any(),
            Piece::Gap(chars) => view! {
                <span class="omitted">
                    {format!(" [… {chars} characters the model does not read …] ")}
                </span>
            }
            .into_any(),
            Piece::Phrase(s, d) => {
                let strength = (d.abs() / max).clamp(0.0, 1.0);
                let hue = if d >= 0.0 {
                    "var(--pos-rgb)"
                } else {
                    "var(--neg-rgb)"
                };
                let style = format!("background: rgba({hue}, {:.2})", 0.08 + 0.6 * strength);
                let title = format!("removing this changes p({positive}) by {:+.3}", -d);
                view! { <mark style=style title=title>{s}</mark> }.into_any()
            }
        })
        .collect_view();
    view! {
        <div class="explanation" data-testid="explanation">
            <h3>"Why"</h3>
            <p class="legend">
                <mark class="legend-pos">"green"</mark>
                " pushed towards "
                {e.positive.clone()}
                ", "
                <mark class="legend-neg">"red"</mark>
                " pushed away from it; stronger colour, stronger effect (how much p("
                {e.positive.clone()}
                ") drops when the phrase is removed)."
            </p>
            <p class="explained">{rendered}</p>
        </div>
    }
}

fn run_batch(state: State, items: Vec<BatchItem>) {
    if items.is_empty() || state.busy.get_untracked() {
        return;
    }
    state.busy.set(true);
    state.batch_rows.set(Vec::new());
    state.batch_error.set(None);
    let total = items.len();
    state.batch_progress.set(Some((0, total)));
    spawn_local(async move {
        for chunk in items.chunks(16) {
            let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
            match predict(state, &texts).await {
                Ok(preds) => state.batch_rows.update(|rows| {
                    rows.extend(chunk.iter().zip(preds).map(|(item, p)| BatchRow {
                        text: item.text.clone(),
                        expected: item.label.clone(),
                        label: p.label,
                        confidence: p.confidence,
                    }))
                }),
                Err(e) => {
                    state.batch_error.set(Some(e));
                    break;
                }
            }
            let done = state.batch_rows.with_untracked(Vec::len);
            state.batch_progress.set(Some((done, total)));
            yield_now().await;
        }
        state.busy.set(false);
    });
}

#[component]
fn BatchPanel(state: State) -> impl IntoView {
    let ready = move || state.status.get() == Status::Ready;
    let classify_pasted = move |_| {
        let labels = state.labels.get_untracked();
        match parse_batch("pasted", &state.batch_text.get_untracked(), &labels) {
            Ok(items) => run_batch(state, items),
            Err(e) => state.batch_error.set(Some(e)),
        }
    };
    let open_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|l| l.get(0)) else {
            return;
        };
        spawn_local(async move {
            let labels = state.labels.get_untracked();
            let parsed = read_file(&file).await.and_then(|bytes| {
                let text = String::from_utf8(bytes)
                    .map_err(|e| format!("{}: not UTF-8 text ({e})", file.name()))?;
                parse_batch(&file.name(), &text, &labels)
            });
            match parsed {
                Ok(items) if items.is_empty() => state
                    .batch_error
                    .set(Some(format!("{}: no reviews found", file.name()))),
                Ok(items) => run_batch(state, items),
                Err(e) => state.batch_error.set(Some(e)),
            }
        });
    };
    let save_csv = move |_| {
        let csv = state.batch_rows.with_untracked(|r| results_csv(r));
        if let Err(e) = download("sentiment-results.csv", "text/csv", &csv) {
            state.batch_error.set(Some(e));
        }
    };
    view! {
        <section class="batch" aria-labelledby="batch-title">
            <h2 id="batch-title">"Many reviews"</h2>
            <label for="batch-input">"One review per line"</label>
            <textarea
                id="batch-input"
                rows="5"
                placeholder="One review per line…"
                prop:value=move || state.batch_text.get()
                on:input=move |ev| state.batch_text.set(event_target_value(&ev))
            ></textarea>
            <div class="actions">
                <button
                    id="classify-batch"
                    on:click=classify_pasted
                    disabled=move || {
                        !ready() || state.busy.get()
                            || state.batch_text.with(|t| t.trim().is_empty())
                    }
                >
                    "Classify all"
                </button>
                <label class="file">
                    "or open a .txt, .jsonl or .csv file "
                    <input
                        id="batch-file"
                        type="file"
                        accept=".txt,.jsonl,.csv,.ndjson"
                        on:change=open_file
                        disabled=move || !ready()
                    />
                </label>
            </div>
            {move || state.batch_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || {
                state.batch_progress.get().map(|(done, total)| {
                    let caption = format!("{done} of {total} reviews classified");
                    progress_view("batch-progress", caption, done as f64, total as f64)
                })
            }}
            {move || {
                let labels = state.labels.get();
                state
                    .batch_rows
                    .with(|rows| confusion(rows, &labels))
                    .map(move |(acc, m)| confusion_view(labels, acc, m))
            }}
            <Show when=move || state.batch_rows.with(|r| !r.is_empty())>
                <button id="download-csv" on:click=save_csv>"Download results (CSV)"</button>
                <table class="results" data-testid="batch-results">
                    <thead>
                        <tr>
                            <th scope="col">"#"</th>
                            <th scope="col">"Review"</th>
                            <th scope="col">"Label"</th>
                            <th scope="col">"Confidence"</th>
                            <th scope="col">"Expected"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            state.batch_rows.with(|rows| {
                                rows.iter()
                                    .enumerate()
                                    .take(2000)
                                    .map(|(i, r)| {
                                        let short: String = r.text.chars().take(140).collect();
                                        let wrong = r.expected.as_ref().is_some_and(|e| *e != r.label);
                                        view! {
                                            <tr class:wrong=wrong>
                                                <td>{i + 1}</td>
                                                <td class="text">{short}</td>
                                                <td>{r.label.clone()}</td>
                                                <td>{format!("{:.1}%", r.confidence * 100.0)}</td>
                                                <td>{r.expected.clone().unwrap_or_default()}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            })
                        }}
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

fn confusion_view(labels: Vec<String>, accuracy: f64, matrix: Vec<Vec<usize>>) -> impl IntoView {
    let header = labels
        .iter()
        .map(|l| view! { <th scope="col">{format!("predicted {l}")}</th> })
        .collect_view();
    let rows = labels
        .iter()
        .zip(matrix)
        .map(|(l, row)| {
            let cells = row
                .into_iter()
                .map(|n| view! { <td>{n}</td> })
                .collect_view();
            view! {
                <tr>
                    <th scope="row">{format!("expected {l}")}</th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="metrics" data-testid="batch-metrics">
            <p>{format!("Accuracy on labelled reviews: {:.1}%", accuracy * 100.0)}</p>
            <table class="confusion">
                <thead>
                    <tr>
                        <th></th>
                        {header}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
