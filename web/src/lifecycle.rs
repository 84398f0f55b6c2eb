//! The model's lifecycle in the page: fetch the bundle (or take it from files the
//! user picked), check every file against the manifest's hashes, build the
//! classifier on the chosen engine, warm it up, and fail over from WebGPU to the
//! CPU when the GPU gives out mid-session.
//!
//! No view lives here: the lifecycle reports through the signals of [`ModelState`],
//! which the panels read, so it never depends on them.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use leptos::prelude::*;
use model_core::bundle::{MANIFEST_FILE, Manifest};
use model_core::tokenizer::Encoded;
use model_core::{Classifier, MatmulPrecision, Prediction};

use crate::engine::{Engine, best_device, device_for, webgpu_lost};
use crate::fetch::{fetch_bytes, keep_offline, now_ms, under_service_worker, yield_now};

/// Where the page gets its model.
#[derive(Clone)]
pub enum ModelSource {
    /// A folder URL (ending in `/`) holding `manifest.json` and the files it lists.
    Url(String),
    /// Files already in memory, by name (tests, and bundles opened from disk).
    Files(Rc<HashMap<String, Vec<u8>>>),
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

/// The model's state: copyable handles, provided to the panels as context.
///
/// The bundle and the model themselves stay private: the panels reach them only
/// through this module's functions, which handle a lost WebGPU device.
#[derive(Clone, Copy)]
pub struct ModelState {
    source: StoredValue<ModelSource, LocalStorage>,
    bundle: StoredValue<Option<Rc<Bundle>>, LocalStorage>,
    model: StoredValue<Option<Rc<Model>>, LocalStorage>,
    /// Where loading stands.
    pub status: RwSignal<Status>,
    /// The engine the model runs (or will run) on; `None` while choosing.
    pub engine: RwSignal<Option<Engine>>,
    /// Why the page does not start on WebGPU, when it does not.
    pub webgpu_note: RwSignal<Option<String>>,
    /// An engine switch or failover to tell the user about.
    pub notice: RwSignal<Option<String>>,
    /// The model's labels, in class order.
    pub labels: RwSignal<Vec<String>>,
    /// One line describing the loaded model.
    pub model_info: RwSignal<Option<String>>,
    /// A job (one review, an explanation, a batch) is using the model: the page
    /// runs one at a time.
    pub busy: RwSignal<bool>,
    /// When the model first became ready, in page milliseconds.
    pub first_prediction_ms: RwSignal<Option<f64>>,
}

impl ModelState {
    /// Nothing loaded yet; [`load`] loads from `source`.
    pub fn new(source: ModelSource) -> Self {
        Self {
            source: StoredValue::new_local(source),
            bundle: StoredValue::new_local(None),
            model: StoredValue::new_local(None),
            status: RwSignal::new(Status::Starting),
            engine: RwSignal::new(None),
            webgpu_note: RwSignal::new(None),
            notice: RwSignal::new(None),
            labels: RwSignal::new(Vec::new()),
            model_info: RwSignal::new(None),
            busy: RwSignal::new(false),
            first_prediction_ms: RwSignal::new(None),
        }
    }
}

/// Pick the engine the page starts on (before the first [`load`]).
pub async fn pick_engine(state: ModelState) {
    let (engine, _, why) = best_device().await;
    state.engine.set(Some(engine));
    state.webgpu_note.set(why);
}

/// Make `source` the page's source, for the next [`load`].
pub fn set_source(state: ModelState, source: ModelSource) {
    state.source.set_value(source);
}

/// Load the bundle from the page's source, then build the model.
pub async fn load(state: ModelState) {
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
async fn fetch_bundle(state: ModelState, base: &str) -> Result<Bundle, String> {
    state.status.set(Status::Downloading {
        file: "manifest.json".into(),
        done: 0,
        total: 0,
    });
    // Requests made before the service worker controls the page never reach its
    // offline cache: those files are handed to it once downloaded and verified.
    let unseen = !under_service_worker();
    let manifest_bytes = fetch_bytes(&format!("{base}manifest.json"), true, |_| {}).await?;
    let manifest = Manifest::parse(&manifest_bytes, &format!("{base}manifest.json"))
        .map_err(|e| e.to_string())?;
    if unseen {
        keep_offline(
            &format!("{base}manifest.json"),
            &manifest_bytes,
            "application/json",
        );
    }
    let total = manifest.total_bytes();
    let mut done = 0u64;
    let mut files = HashMap::new();
    for f in manifest.files.clone() {
        // The hash in the URL makes each model version its own cache entry, so the
        // service worker can serve model files cache-first without going stale.
        let url = format!("{base}{}?v={}", f.name, &f.sha256[..16.min(f.sha256.len())]);
        let before = done;
        let name = f.name.clone();
        let unseen = !under_service_worker();
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
        if unseen {
            keep_offline(&url, &bytes, "application/octet-stream");
        }
        done += bytes.len() as u64;
        files.insert(f.name.clone(), bytes);
    }
    // With its manifest the files are a bundle to `Classifier::open`.
    files.insert(MANIFEST_FILE.into(), manifest_bytes);
    Ok(Bundle { manifest, files })
}

/// A bundle from files already in memory; `Classifier::open` checks each file
/// against the manifest's hash when it builds the model.
fn bundle_from_files(files: &HashMap<String, Vec<u8>>) -> Result<Bundle, String> {
    let manifest_bytes = files.get(MANIFEST_FILE).ok_or(
        "manifest.json is missing: pick every file of a `trainer export --format web` folder",
    )?;
    let manifest = Manifest::parse(manifest_bytes, MANIFEST_FILE).map_err(|e| e.to_string())?;
    Ok(Bundle {
        manifest,
        files: files.clone(),
    })
}

/// Build the classifier on the current engine, warm it up, and make it current.
async fn install(state: ModelState, bundle: Rc<Bundle>) {
    state.status.set(Status::Building);
    yield_now().await;
    let engine = state.engine.get_untracked().unwrap_or(Engine::Cpu);
    match build(&bundle, engine).await {
        Ok(model) => {
            let m = &bundle.manifest;
            state.labels.set(m.labels.clone());
            // The CPU engine computes an int8 export's projections in int8
            // (model_core::MatmulPrecision); WebGPU computes in f32.
            let int8 = model.engine == Engine::Cpu
                && model.classifier.matmul_precision() == MatmulPrecision::Int8;
            state.model_info.set(Some(describe(m, int8)));
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

/// The footer's line about the model; `int8` when it computes in int8.
fn describe(m: &Manifest, int8: bool) -> String {
    let accuracy = m
        .metrics
        .get("accuracy")
        .and_then(|a| a.as_f64())
        .map(|a| format!(", test accuracy {:.2}%", a * 100.0))
        .unwrap_or_default();
    let bytes: u64 = m.total_bytes();
    let arithmetic = if int8 { " (int8 arithmetic)" } else { "" };
    format!(
        "Model: {} labels ({}), {} weights{arithmetic}, {:.1} MB, max {} tokens ({}){accuracy}.",
        m.labels.len(),
        m.labels.join(", "),
        m.dtype,
        bytes as f64 / 1e6,
        m.max_len,
        m.truncation,
    )
}

async fn build(bundle: &Bundle, engine: Engine) -> Result<Model, String> {
    let device = device_for(engine).await?;
    let options = bundle.manifest.options(16);
    let (classifier, _) =
        Classifier::open(&bundle.files, &device, Some(options)).map_err(|e| e.to_string())?;
    // The first pass compiles GPU pipelines and touches every weight: do it now,
    // not when the user presses Classify.
    classifier
        .predict_async(&["warm up"])
        .await
        .map_err(|e| format!("{engine}: {e}"))?;
    Ok(Model { classifier, engine })
}

/// Rebuild the model on `engine`; on failure the model keeps its engine.
pub async fn switch_engine(state: ModelState, engine: Engine) -> Result<(), String> {
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

/// Run the model; if WebGPU fails mid-session (device lost...), rebuild on the CPU
/// and try once more.
pub async fn predict(state: ModelState, texts: &[&str]) -> Result<Vec<Prediction>, String> {
    let model = state.model.get_value().ok_or("the model is not loaded")?;
    let encoded = model.classifier.encode(texts).map_err(|e| e.to_string())?;
    predict_encoded(state, encoded).await
}

/// [`predict`] on reviews already tokenized.
async fn predict_encoded(
    state: ModelState,
    encoded: Vec<Encoded>,
) -> Result<Vec<Prediction>, String> {
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

/// The number of tokens the model sees for `text` (1 when it cannot tell), which
/// sizes the runs of an explanation.
pub fn token_count(state: ModelState, text: &str) -> usize {
    state
        .model
        .get_value()
        .and_then(|m| m.classifier.encode(&[text]).ok())
        .map_or(1, |e| e[0].ids.len())
}

/// One review as the model read it.
pub struct Reading {
    /// What the model says.
    pub prediction: Prediction,
    /// The engine it ran on (the CPU after a failover).
    pub engine: Engine,
    /// The bundle's token budget, to explain a truncated review.
    pub max_len: usize,
    /// The bundle's truncation (`head`, `head+tail`), likewise.
    pub truncation: String,
    /// Byte ranges of the review the model read (all of it, unless truncated).
    pub windows: Vec<Range<usize>>,
}

/// Classify one review, however long, without freezing the page; `None` when the
/// model went away meanwhile.
pub async fn classify_review(state: ModelState, text: &str) -> Result<Option<Reading>, String> {
    let (encoded, windows) = read_review(state, text).await?;
    let mut p = predict_encoded(state, vec![encoded]).await?;
    let model = state.model.get_value();
    let bundle = state.bundle.get_value();
    Ok(match (model, bundle, p.pop()) {
        (Some(model), Some(bundle), Some(prediction)) => Some(Reading {
            prediction,
            engine: model.engine,
            max_len: bundle.manifest.max_len,
            truncation: bundle.manifest.truncation.to_string(),
            windows,
        }),
        _ => None,
    })
}

/// Tokenize one review piece by piece, yielding to the browser between pieces,
/// and work out which parts of it the model reads.
async fn read_review(
    state: ModelState,
    text: &str,
) -> Result<(Encoded, Vec<Range<usize>>), String> {
    let model = state.model.get_value().ok_or("the model is not loaded")?;
    crate::explain::read_review(&model.classifier, text, yield_now).await
}
