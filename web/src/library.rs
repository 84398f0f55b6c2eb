//! The classifier as the JS library's Web Worker calls it (`static/lib/worker.js`):
//! open a model from its files, classify, explain, describe, dispose.
//!
//! These are the wasm module's exports; the page's module and the worker's are the
//! same file (a worker has no `window`, so the page does not mount there), which a
//! first visit downloads once. One model per worker, held here; values cross to JS
//! through `serde-wasm-bindgen` as plain objects.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use js_sys::{Map, Uint8Array};
use model_core::bundle::{MANIFEST_FILE, Manifest};
use model_core::{Classifier, MatmulPrecision, Prediction};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::engine::{Engine, best_device, device_for};
use crate::explain::{Phrase, explain_review};

/// The model a worker holds.
struct Loaded {
    classifier: Classifier,
    engine: Engine,
    manifest: Option<Manifest>,
    bytes: u64,
}

thread_local! {
    static MODEL: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

fn current() -> Result<Rc<Loaded>, JsError> {
    MODEL
        .with(|m| m.borrow().clone())
        .ok_or_else(|| JsError::new("no model is loaded: await SentimentClassifier.load() first"))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// What `clf.info` shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    engine: &'static str,
    threads: usize,
    labels: Vec<String>,
    max_len: usize,
    truncation: String,
    dtype: String,
    products: String,
    bytes: u64,
}

/// Open the model in `files` (name → `Uint8Array`: a web bundle with its
/// `manifest.json`, or a Hugging Face folder) on `engine` (`auto`, `webgpu` or
/// `cpu`), warm it up, and describe it. Replaces the model held before.
#[wasm_bindgen(js_name = openModel)]
pub async fn open_model(files: Map, engine: String) -> Result<JsValue, JsError> {
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
    let (engine, device) = match engine.as_str() {
        "auto" => {
            let (engine, device, _) = best_device().await;
            (engine, device)
        }
        "webgpu" => (
            Engine::WebGpu,
            device_for(Engine::WebGpu)
                .await
                .map_err(|e| JsError::new(&format!("engine 'webgpu': {e}")))?,
        ),
        "cpu" => (Engine::Cpu, device_for(Engine::Cpu).await.expect("CPU")),
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
    let (classifier, _) =
        Classifier::open(&named, &device, None).map_err(|e| JsError::new(&e.to_string()))?;
    // The first pass compiles GPU pipelines and touches every weight: now, not on
    // the first request.
    classifier
        .predict_async(&["warm up"])
        .await
        .map_err(|e| JsError::new(&format!("engine '{engine}': {e}")))?;
    let loaded = Rc::new(Loaded {
        classifier,
        engine,
        manifest,
        bytes,
    });
    MODEL.with(|m| *m.borrow_mut() = Some(loaded.clone()));
    to_js(&info_of(&loaded))
}

fn info_of(m: &Loaded) -> Info {
    let c = &m.classifier;
    let int8 = m.engine == Engine::Cpu && c.matmul_precision() == MatmulPrecision::Int8;
    Info {
        engine: match m.engine {
            Engine::WebGpu => "webgpu",
            Engine::Cpu => "cpu",
        },
        threads: 1,
        labels: c.labels.clone(),
        max_len: c.options.max_len,
        truncation: c.options.truncation.to_string(),
        dtype: m
            .manifest
            .as_ref()
            .map_or_else(|| "f32".into(), |m| m.dtype.to_string()),
        products: if int8 { "int8" } else { "f32" }.into(),
        bytes: m.bytes,
    }
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
        }
    }
}

/// Classify `texts`, in order.
#[wasm_bindgen(js_name = classifyTexts)]
pub async fn classify_texts(texts: Vec<String>) -> Result<JsValue, JsError> {
    let m = current()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = m
        .classifier
        .predict_async(&refs)
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&predictions.iter().map(Classified::from).collect::<Vec<_>>())
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
            m.classifier
                .predict_async(&refs)
                .await
                .map_err(|e| e.to_string())
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

/// Drop the model (its weights and GPU buffers go with it).
#[wasm_bindgen(js_name = disposeModel)]
pub fn dispose_model() {
    MODEL.with(|m| m.borrow_mut().take());
}

/// A byte range of `text` as UTF-16 code units.
fn utf16_range(text: &str, range: &Range<usize>) -> Range<usize> {
    let units = |s: &str| s.encode_utf16().count();
    let start = units(&text[..range.start]);
    start..start + units(&text[range.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn ranges_count_utf16_units() {
        let text = "Très 😀 bien";
        let bien = text.find("bien").unwrap();
        let r = utf16_range(text, &(bien..text.len()));
        // "Très " is 5 units, the emoji 2, the space 1.
        assert_eq!(r, 8..12);
    }
}
