//! The classifier as the JS library's Web Worker calls it (`static/lib/worker.js`):
//! open a model from its files, classify, explain, describe, dispose.
//!
//! These are the wasm module's exports; the page's module and the worker's are the
//! same file (a worker has no `window`, so the page does not mount there), which a
//! first visit downloads once. One model per worker, held here; values cross to JS
//! through `serde-wasm-bindgen` as plain objects.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use js_sys::{Map, Uint8Array};
use model_core::bundle::{MANIFEST_FILE, Manifest};
use model_core::open::ModelFiles;
use model_core::tokenizer::Encoded;
use model_core::{Classifier, MatmulPrecision, Prediction};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::engine::{Engine, auto_engine, best_device, device_for, webgpu_lost};
use crate::explain::{Phrase, explain_review, read_review};
use crate::text::utf16_range;

/// A model's files by name, with the SHA-256s the worker had the browser compute
/// (WebCrypto, natively) for checking them against the bundle's manifest.
#[derive(Clone)]
pub(crate) struct Files {
    pub(crate) bytes: HashMap<String, Vec<u8>>,
    pub(crate) sha256: HashMap<String, String>,
}

impl ModelFiles for Files {
    fn location(&self) -> String {
        self.bytes.location()
    }

    fn read(&self, name: &str) -> model_core::Result<Option<Cow<'_, [u8]>>> {
        self.bytes.read(name)
    }

    fn sha256(&self, name: &str) -> Option<String> {
        self.sha256.get(name).cloned()
    }
}

/// The model a worker holds, with the files it came from (to rebuild it on the CPU
/// when the GPU gives out).
pub(crate) struct Loaded {
    pub(crate) classifier: Classifier,
    pub(crate) engine: Engine,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) files: Files,
    pub(crate) bytes: u64,
    /// Why the engine is not WebGPU, or why it stopped being WebGPU.
    pub(crate) note: Option<String>,
}

thread_local! {
    static MODEL: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

pub(crate) fn current() -> Result<Rc<Loaded>, JsError> {
    MODEL
        .with(|m| m.borrow().clone())
        .ok_or_else(|| JsError::new("no model is loaded: await SentimentClassifier.load() first"))
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// What `clf.info` shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Info {
    engine: &'static str,
    threads: usize,
    labels: Vec<String>,
    max_len: usize,
    truncation: String,
    dtype: String,
    products: String,
    temperature: f32,
    exponent: f32,
    bytes: u64,
    accuracy: Option<f64>,
    note: Option<String>,
}

/// Open the model in `files` (name → `Uint8Array`: a web bundle with its
/// `manifest.json`, or a Hugging Face folder) on `engine` (`auto`, `webgpu` or
/// `cpu`), warm it up, and describe it. Replaces the model held before. `sha256`
/// (name → hex), when given, holds the files' digests, computed by the browser.
#[wasm_bindgen(js_name = openModel)]
pub async fn open_model(
    files: Map,
    engine: String,
    sha256: Option<Map>,
) -> Result<JsValue, JsError> {
    let mut digests = HashMap::new();
    for entry in sha256.iter().flat_map(|m| m.entries()) {
        let pair: js_sys::Array = entry
            .map_err(|_| JsError::new("sha256: not iterable"))?
            .unchecked_into();
        if let (Some(name), Some(hex)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            digests.insert(name, hex);
        }
    }
    let mut named = HashMap::new();
    let mut bytes = 0u64;
    for entry in files.entries() {
        let pair: js_sys::Array = entry
            .map_err(|_| JsError::new("files: not iterable"))?
            .unchecked_into();
        let name = pair
            .get(0)
            .as_string()
            .ok_or_else(|| JsError::new("files: a key is not a file name"))?;
        let data: Uint8Array = pair
            .get(1)
            .dyn_into()
            .map_err(|_| JsError::new(&format!("files: {name} is not a Uint8Array")))?;
        bytes += u64::from(data.length());
        named.insert(name, data.to_vec());
    }
    let (engine, device, note) = match engine.as_str() {
        "auto" => best_device().await,
        "webgpu" => (
            Engine::WebGpu,
            device_for(Engine::WebGpu)
                .await
                .map_err(|e| JsError::new(&format!("engine 'webgpu': {e}")))?,
            None,
        ),
        "cpu" => (
            Engine::Cpu,
            device_for(Engine::Cpu).await.expect("CPU"),
            None,
        ),
        other => {
            return Err(JsError::new(&format!(
                "engine '{other}': expected 'auto', 'webgpu' or 'cpu'"
            )));
        }
    };
    let manifest = match named.get(MANIFEST_FILE) {
        Some(m) => {
            Some(Manifest::parse(m, MANIFEST_FILE).map_err(|e| JsError::new(&e.to_string()))?)
        }
        None => None,
    };
    let named = Files {
        bytes: named,
        sha256: digests,
    };
    let classifier = build(&named, engine, &device)
        .await
        .map_err(|e| JsError::new(&e))?;
    let loaded = install(Loaded {
        classifier,
        engine,
        manifest,
        files: named,
        bytes,
        note,
    });
    to_js(&info_of(&loaded))
}

/// Open `files` on `device` and warm the model up: the first pass compiles GPU
/// pipelines and touches every weight, now rather than on the first request.
pub(crate) async fn build(
    files: &Files,
    engine: Engine,
    device: &burn::tensor::Device,
) -> Result<Classifier, String> {
    let (classifier, _) = Classifier::open(files, device, None).map_err(|e| e.to_string())?;
    classifier
        .predict_async(&["warm up"])
        .await
        .map_err(|e| format!("engine '{engine}': {e}"))?;
    Ok(classifier)
}

/// The held model rebuilt on the CPU after WebGPU failed (`why`), made current.
async fn fail_over(from: &Loaded, why: String) -> Result<Rc<Loaded>, String> {
    let device = device_for(Engine::Cpu).await?;
    let classifier = build(&from.files, Engine::Cpu, &device).await?;
    let loaded = install(Loaded {
        classifier,
        engine: Engine::Cpu,
        manifest: from.manifest.clone(),
        files: from.files.clone(),
        bytes: from.bytes,
        note: Some(format!("WebGPU failed ({why}); switched to the CPU.")),
    });
    Ok(loaded)
}

/// Run the held model on `encoded`. WebGPU that failed (a lost device, an error
/// mid-run) moves the model to the CPU, which then answers: a caller never sees a
/// dead GPU, only `info.engine` and `info.note` changing.
async fn run(encoded: Vec<Encoded>) -> Result<Vec<Prediction>, String> {
    let mut m = current().map_err(|_| "no model is loaded".to_string())?;
    if m.engine == Engine::WebGpu
        && let Some(why) = webgpu_lost()
    {
        // Never call into a dead device.
        m = fail_over(&m, format!("the GPU device was lost: {why}")).await?;
    }
    match m.classifier.predict_encoded_async(encoded.clone()).await {
        Err(e) if m.engine == Engine::WebGpu => {
            let m = fail_over(&m, e.to_string()).await?;
            m.classifier
                .predict_encoded_async(encoded)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

pub(crate) fn info_of(m: &Loaded) -> Info {
    let c = &m.classifier;
    let int8 = m.engine == Engine::Cpu && c.matmul_precision() == MatmulPrecision::Int8;
    Info {
        engine: match m.engine {
            Engine::WebGpu => "webgpu",
            Engine::Cpu => "cpu",
        },
        // WebGPU runs on the GPU's threads; the CPU engine on the module's pool.
        threads: if m.engine == Engine::Cpu {
            model_core::kernels::threads()
        } else {
            1
        },
        labels: c.labels.clone(),
        max_len: c.options.max_len,
        truncation: c.options.truncation.to_string(),
        dtype: m
            .manifest
            .as_ref()
            .map_or_else(|| "f32".into(), |m| m.dtype.to_string()),
        products: if int8 { "int8" } else { "f32" }.into(),
        temperature: c.calibration.temperature,
        exponent: c.calibration.exponent,
        bytes: m.bytes,
        accuracy: m
            .manifest
            .as_ref()
            .and_then(|m| m.metrics.get("accuracy"))
            .and_then(|a| a.as_f64()),
        note: m.note.clone(),
    }
}

/// The engine `engine` (`auto`, `webgpu` or `cpu`) would run on, `webgpu` or `cpu`,
/// without opening it: the worker picks its module by it (only the single-threaded
/// one has WebGPU).
#[wasm_bindgen(js_name = chooseEngine)]
pub async fn choose_engine(engine: String) -> String {
    match engine.as_str() {
        "auto" if auto_engine().await.is_ok() => "webgpu",
        "webgpu" => "webgpu",
        _ => "cpu",
    }
    .into()
}

/// `clf.info`, again.
#[wasm_bindgen(js_name = modelInfo)]
pub fn model_info() -> Result<JsValue, JsError> {
    let m = current()?;
    to_js(&info_of(&m))
}

/// One result of `classify`.
#[derive(Serialize)]
struct Classified<'a> {
    label: &'a str,
    confidence: f32,
    probabilities: HashMap<&'a str, f32>,
    tokens: usize,
    truncated: bool,
    /// With `{ spans: true }`: the UTF-16 ranges of the text the model read.
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<Vec<[usize; 2]>>,
}

impl<'a> From<&'a Prediction> for Classified<'a> {
    fn from(p: &'a Prediction) -> Self {
        Classified {
            label: &p.label,
            confidence: p.confidence,
            probabilities: p
                .probabilities
                .iter()
                .map(|(l, p)| (l.as_str(), *p))
                .collect(),
            tokens: p.tokens,
            truncated: p.truncated,
            read: None,
        }
    }
}

/// Classify `texts`, in order; with `spans`, each result also says which parts of
/// its text the model read (all of it unless truncated), as UTF-16 ranges.
#[wasm_bindgen(js_name = classifyTexts)]
pub async fn classify_texts(texts: Vec<String>, spans: bool) -> Result<JsValue, JsError> {
    let m = current()?;
    let mut encoded = Vec::with_capacity(texts.len());
    let mut windows = Vec::new();
    if spans {
        for t in &texts {
            let (e, w) = read_review(&m.classifier, t, || async {})
                .await
                .map_err(|e| JsError::new(&e))?;
            encoded.push(e);
            windows.push(w);
        }
    } else {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        encoded = m
            .classifier
            .encode(&refs)
            .map_err(|e| JsError::new(&e.to_string()))?;
    }
    drop(m);
    let predictions = run(encoded).await.map_err(|e| JsError::new(&e))?;
    let mut out: Vec<Classified> = predictions.iter().map(Classified::from).collect();
    for ((c, w), t) in out.iter_mut().zip(&windows).zip(&texts) {
        c.read = Some(
            w.iter()
                .map(|r| {
                    let u = utf16_range(t, r);
                    [u.start, u.end]
                })
                .collect(),
        );
    }
    to_js(&out)
}

/// One phrase of an explanation, its range in UTF-16 code units (what JS's
/// `String.prototype.slice` takes).
#[derive(Serialize)]
struct JsPhrase {
    text: String,
    start: usize,
    end: usize,
    delta: f32,
}

/// Explain `text`: each phrase with how much it moves p(positive) (occlusion).
#[wasm_bindgen(js_name = explainText)]
pub async fn explain_text(text: String) -> Result<JsValue, JsError> {
    let m = current()?;
    let phrases = explain_review(&m.classifier, &text, |texts| {
        let m = m.clone();
        async move {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encoded = m.classifier.encode(&refs).map_err(|e| e.to_string())?;
            run(encoded).await
        }
    })
    .await
    .map_err(|e| JsError::new(&e))?;
    let out: Vec<JsPhrase> = phrases
        .into_iter()
        .map(|Phrase { range, delta }| {
            let Range { start, end } = utf16_range(&text, &range);
            JsPhrase {
                text: text[range].to_string(),
                start,
                end,
                delta,
            }
        })
        .collect();
    to_js(&out)
}

/// Make `loaded` the worker's model (the one before it is dropped).
pub(crate) fn install(loaded: Loaded) -> Rc<Loaded> {
    let loaded = Rc::new(loaded);
    MODEL.with(|m| *m.borrow_mut() = Some(loaded.clone()));
    loaded
}

/// Drop the model (its weights and GPU buffers go with it).
#[wasm_bindgen(js_name = disposeModel)]
pub fn dispose_model() {
    MODEL.with(|m| m.borrow_mut().take());
}
