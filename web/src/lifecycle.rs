//! The model's lifecycle in the page, through the JS library ([`crate::client`]):
//! load the bundle (from its URL or from files the user picked) on the chosen
//! engine, switch engines, classify. The library's worker downloads, checks every
//! file against the manifest's hashes, builds, warms up, and fails over from WebGPU
//! to the CPU when the GPU gives out; this module turns what it reports into the
//! signals of [`ModelState`], which the panels read.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use leptos::prelude::*;
use model_core::Prediction;

use crate::client::{Classified, Info, Remote, SavedTune, Source, Tune, TuneProgress, TuneReport};
use crate::engine::Engine;
use crate::fetch::now_ms;
use crate::kept_model;
use crate::text::byte_range;

/// Where the page gets its model.
#[derive(Clone)]
pub enum ModelSource {
    /// A folder URL (ending in `/`) holding `manifest.json` and the files it lists.
    Url(String),
    /// Files already in memory, by name (tests, and bundles opened from disk).
    Files(Rc<HashMap<String, Vec<u8>>>),
    /// The model fine-tuned in this page ([`crate::kept_model`] keeps it across
    /// reloads).
    FineTuned(Rc<HashMap<String, Vec<u8>>>),
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

/// The model's state: copyable handles, provided to the panels as context.
///
/// The library's handle stays private: the panels reach the model only through
/// this module's functions.
#[derive(Clone, Copy)]
pub struct ModelState {
    source: StoredValue<ModelSource, LocalStorage>,
    remote: StoredValue<Option<Rc<Remote>>, LocalStorage>,
    info: StoredValue<Option<Info>, LocalStorage>,
    /// Where loading stands.
    pub status: RwSignal<Status>,
    /// The engine the model runs (or will run) on; `None` until the first model
    /// is loaded (the library then picks: WebGPU on a hardware adapter, else the CPU).
    pub engine: RwSignal<Option<Engine>>,
    /// Why the page does not start on WebGPU, when it does not.
    pub webgpu_note: RwSignal<Option<String>>,
    /// An engine switch or failover to tell the user about.
    pub notice: RwSignal<Option<String>>,
    /// The model's labels, in class order.
    pub labels: RwSignal<Vec<String>>,
    /// One line describing the loaded model.
    pub model_info: RwSignal<Option<String>>,
    /// The CPU threads the model runs on.
    pub threads: RwSignal<Option<usize>>,
    /// A job (one review, an explanation, a batch) is using the model: the page
    /// runs one at a time.
    pub busy: RwSignal<bool>,
    /// When the model first became ready, in page milliseconds.
    pub first_prediction_ms: RwSignal<Option<f64>>,
    /// The model is one fine-tuned in this page (not the page's source).
    pub personal: RwSignal<bool>,
}

impl ModelState {
    /// Nothing loaded yet; [`load`] loads from `source`.
    pub fn new(source: ModelSource) -> Self {
        Self {
            source: StoredValue::new_local(source),
            remote: StoredValue::new_local(None),
            info: StoredValue::new_local(None),
            status: RwSignal::new(Status::Starting),
            engine: RwSignal::new(None),
            webgpu_note: RwSignal::new(None),
            notice: RwSignal::new(None),
            labels: RwSignal::new(Vec::new()),
            model_info: RwSignal::new(None),
            threads: RwSignal::new(None),
            busy: RwSignal::new(false),
            first_prediction_ms: RwSignal::new(None),
            personal: RwSignal::new(false),
        }
    }
}

/// Make `source` the page's source, for the next [`load`].
pub fn set_source(state: ModelState, source: ModelSource) {
    state.source.set_value(source);
}

fn engine_name(engine: Option<Engine>) -> &'static str {
    match engine {
        None => "auto",
        Some(Engine::WebGpu) => "webgpu",
        Some(Engine::Cpu) => "cpu",
    }
}

/// Load the model from the page's source on the current engine (the library's
/// pick at first), with download progress in [`ModelState::status`].
pub async fn load(state: ModelState) {
    let wanted = state.engine.get_untracked();
    state.status.set(Status::Downloading {
        file: "manifest.json".into(),
        done: 0,
        total: 0,
    });
    let progress = move |p: crate::client::Progress| {
        state.status.set(if p.stage == "build" {
            Status::Building
        } else {
            Status::Downloading {
                file: p.file.unwrap_or_default(),
                done: p.loaded as u64,
                total: p.total as u64,
            }
        })
    };
    match open(state, engine_name(wanted), progress).await {
        Ok(info) => {
            if wanted.is_none() {
                state.webgpu_note.set(info.note.clone());
            }
            state.status.set(Status::Ready);
            if state.first_prediction_ms.get_untracked().is_none() {
                state.first_prediction_ms.set(Some(now_ms()));
            }
        }
        Err(e) => state.status.set(Status::Failed(e)),
    }
}

/// Load the page's source on `engine` and make it current (the model before it is
/// disposed); on failure the model before stays.
async fn open(
    state: ModelState,
    engine: &str,
    progress: impl FnMut(crate::client::Progress) + 'static,
) -> Result<Info, String> {
    let source = state.source.get_value();
    let remote = match &source {
        ModelSource::Url(url) => Remote::load(Source::Url(url), engine, progress).await?,
        ModelSource::Files(files) | ModelSource::FineTuned(files) => {
            Remote::load(Source::Files(files), engine, progress).await?
        }
    };
    let info = remote.info()?;
    if let Some(old) = state.remote.get_value() {
        old.dispose();
    }
    let personal = matches!(source, ModelSource::FineTuned(_));
    state.remote.set_value(Some(Rc::new(remote)));
    state.personal.set(personal);
    state.labels.set(info.labels.clone());
    state.model_info.set(Some(describe(&info, personal)));
    state.engine.set(Some(info.engine()));
    state.threads.set(Some(info.threads));
    state.info.set_value(Some(info.clone()));
    Ok(info)
}

/// The footer's line about the model (`personal`: fine-tuned in this page, whose
/// accuracy is on the held-out part of the user's examples).
fn describe(info: &Info, personal: bool) -> String {
    let scored_on = if personal { "held-out" } else { "test" };
    let accuracy = info
        .accuracy
        .map(|a| format!(", {scored_on} accuracy {:.2}%", a * 100.0))
        .unwrap_or_default();
    let arithmetic = if info.products == "int8" {
        " (int8 arithmetic)"
    } else {
        ""
    };
    let calibrated = if info.temperature == 1.0 && info.exponent == 1.0 {
        ""
    } else {
        ", confidence calibrated on held-out data"
    };
    format!(
        "Model: {} labels ({}), {} weights{arithmetic}, {:.1} MB, max {} tokens ({}){accuracy}{calibrated}.",
        info.labels.len(),
        info.labels.join(", "),
        info.dtype,
        info.bytes as f64 / 1e6,
        info.max_len,
        info.truncation,
    )
}

/// Load the model again on `engine`; on failure the model keeps its engine.
pub async fn switch_engine(state: ModelState, engine: Engine) -> Result<(), String> {
    if state.remote.get_value().is_none() {
        return Err("the model is not loaded".into());
    }
    state.status.set(Status::Building);
    let result = open(state, engine_name(Some(engine)), |_| {}).await;
    state.status.set(Status::Ready);
    result.map(|_| ())
}

/// After a request: when the library moved the model to the CPU (WebGPU failed),
/// follow it and say why.
fn follow(state: ModelState, remote: &Remote) {
    let Ok(info) = remote.info() else { return };
    if Some(info.engine()) != state.engine.get_untracked() {
        state.engine.set(Some(info.engine()));
        state.notice.set(info.note.clone());
        state
            .model_info
            .set(Some(describe(&info, state.personal.get_untracked())));
    }
    state.info.set_value(Some(info));
}

fn prediction(c: Classified, labels: &[String]) -> Prediction {
    let probabilities = labels
        .iter()
        .map(|l| (l.clone(), c.probabilities.get(l).copied().unwrap_or(0.0)))
        .collect();
    Prediction {
        label: c.label,
        confidence: c.confidence,
        probabilities,
        tokens: c.tokens,
        truncated: c.truncated,
    }
}

/// Classify `texts` in the library's worker (`spans`: with the parts read).
async fn classify(
    state: ModelState,
    texts: &[&str],
    spans: bool,
) -> Result<Vec<Classified>, String> {
    let remote = state.remote.get_value().ok_or("the model is not loaded")?;
    let out = remote.classify(texts, spans).await;
    follow(state, &remote);
    out
}

/// Run the model on `texts`.
pub async fn predict(state: ModelState, texts: &[&str]) -> Result<Vec<Prediction>, String> {
    let labels = state.labels.get_untracked();
    Ok(classify(state, texts, false)
        .await?
        .into_iter()
        .map(|c| prediction(c, &labels))
        .collect())
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

/// Classify one review, however long (the worker reads it; the page only waits).
pub async fn classify_review(state: ModelState, text: &str) -> Result<Option<Reading>, String> {
    let labels = state.labels.get_untracked();
    let Some(mut c) = classify(state, &[text], true).await?.pop() else {
        return Ok(None);
    };
    let windows = c
        .read
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|r| byte_range(text, r))
        .collect();
    let Some(info) = state.info.get_value() else {
        return Ok(None);
    };
    Ok(Some(Reading {
        prediction: prediction(c, &labels),
        engine: info.engine(),
        max_len: info.max_len,
        truncation: info.truncation,
        windows,
    }))
}

/// Fine-tune the page's model in the library's worker (a new run, or the kept one
/// going on), keeping checkpoints as `checkpoint` says, progress to `on_progress`,
/// cancelled by `signal`. The fine-tuned model answers from then on; on failure or
/// cancel the model before stays.
pub async fn fine_tune(
    state: ModelState,
    tune: Tune<'_>,
    checkpoint: &wasm_bindgen::JsValue,
    on_progress: impl FnMut(TuneProgress) + 'static,
    signal: &web_sys::AbortSignal,
) -> Result<TuneReport, String> {
    let remote = state.remote.get_value().ok_or("the model is not loaded")?;
    state.busy.set(true);
    let out = remote
        .fine_tune(tune, checkpoint, on_progress, signal)
        .await;
    state.busy.set(false);
    let report = out?;
    let info = remote.info()?;
    state.personal.set(true);
    state.labels.set(info.labels.clone());
    state.model_info.set(Some(describe(&info, true)));
    state.info.set_value(Some(info));
    // The fine-tuned model is the page's model from now on: an engine switch loads it
    // again, and so does the next visit.
    let files = remote.export_bundle().await?;
    if let Err(e) = kept_model::keep(&files).await {
        state.notice.set(Some(format!(
            "The fine-tuned model answers in this tab, but it was not kept for your next visit ({e}): download it to keep it."
        )));
    }
    set_source(
        state,
        ModelSource::FineTuned(Rc::new(files.into_iter().collect())),
    );
    Ok(report)
}

/// The page's first load: the model fine-tuned here on an earlier visit, when one is
/// kept and the page's source is its usual URL, else that source.
pub async fn first_load(state: ModelState) {
    let usual = state.source.get_value();
    if !matches!(usual, ModelSource::Url(_)) {
        return load(state).await;
    }
    match kept_model::kept().await {
        Ok(Some(files)) => {
            crate::client::discard_preload();
            set_source(state, ModelSource::FineTuned(Rc::new(files)));
        }
        Ok(None) => return load(state).await,
        Err(e) => {
            web_sys::console::warn_1(&format!("no kept fine-tuned model: {e}").into());
            return load(state).await;
        }
    }
    load(state).await;
    // A kept model that no longer opens (stored by another version of the page, say)
    // must not keep the page from starting: it goes, and the usual model loads.
    if let Status::Failed(e) = state.status.get_untracked() {
        state.notice.set(Some(format!(
            "The model fine-tuned on an earlier visit could not be opened ({e}), so it was dropped and the release model loaded."
        )));
        replace_fine_tuned(state, usual).await;
    }
}

/// Make `source` the page's model in place of the fine-tuned one, which is then no
/// longer kept for the next visit, and load it.
pub async fn replace_fine_tuned(state: ModelState, source: ModelSource) {
    if let Err(e) = kept_model::forget().await {
        web_sys::console::warn_1(&format!("the fine-tuned model is still kept: {e}").into());
    }
    set_source(state, source);
    load(state).await;
}

/// The fine-tuning run of the page's model kept in the browser's storage, if any.
pub async fn saved_fine_tune(state: ModelState) -> Result<Option<SavedTune>, String> {
    let remote = state.remote.get_value().ok_or("the model is not loaded")?;
    remote.saved_fine_tune().await
}

/// Drop the kept fine-tuning run.
pub async fn discard_fine_tune(state: ModelState) -> Result<(), String> {
    let remote = state.remote.get_value().ok_or("the model is not loaded")?;
    remote.discard_fine_tune().await
}

/// The page's model as a web bundle, file by file.
pub async fn export_bundle(state: ModelState) -> Result<Vec<(String, Vec<u8>)>, String> {
    let remote = state.remote.get_value().ok_or("the model is not loaded")?;
    remote.export_bundle().await
}
