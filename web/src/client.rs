//! The page's handle on the JS library (`static/lib/bert-sentiment.js`): the page
//! runs its model exactly as any other page would, through `SentimentClassifier`,
//! whose Web Worker holds the model. So the page has no model lifecycle of its own
//! and its main thread never runs the model. `static/boot.js` imports the library
//! and leaves the class at `globalThis.bertSentiment.SentimentClassifier`.

use std::collections::HashMap;

use js_sys::{Array, Function, Map, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::engine::Engine;

/// What the library says about a loaded model (`clf.info`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub engine: String,
    pub threads: usize,
    pub labels: Vec<String>,
    pub max_len: usize,
    pub truncation: String,
    pub dtype: String,
    pub products: String,
    pub temperature: f32,
    pub exponent: f32,
    pub bytes: u64,
    pub accuracy: Option<f64>,
    pub note: Option<String>,
}

impl Info {
    /// The engine, as the page names it.
    pub fn engine(&self) -> Engine {
        if self.engine == "webgpu" {
            Engine::WebGpu
        } else {
            Engine::Cpu
        }
    }
}

/// One result of `clf.classify`.
#[derive(Debug, Clone, Deserialize)]
pub struct Classified {
    pub label: String,
    pub confidence: f32,
    pub probabilities: HashMap<String, f32>,
    pub tokens: usize,
    pub truncated: bool,
    /// With `spans`: the UTF-16 ranges of the text the model read.
    #[serde(default)]
    pub read: Option<Vec<[usize; 2]>>,
}

/// `onProgress`'s argument while loading.
#[derive(Debug, Clone, Deserialize)]
pub struct Progress {
    pub stage: String,
    pub file: Option<String>,
    pub loaded: f64,
    pub total: f64,
}

/// `fineTune`'s `onProgress` argument.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuneProgress {
    pub stage: String,
    pub step: usize,
    pub steps: usize,
    #[serde(default)]
    pub loss: Option<f64>,
    #[serde(default)]
    pub samples_per_second: Option<f64>,
    #[serde(default)]
    pub eta_seconds: Option<f64>,
    /// Why checkpoints stopped, once they did.
    #[serde(default)]
    pub warning: Option<String>,
}

/// A fine-tuning run kept in the browser's storage (`savedFineTune`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedTune {
    pub step: usize,
    pub steps: usize,
    pub examples: usize,
    pub saved_at: f64,
}

/// A new fine-tuning run, or the kept one going on.
pub enum Tune<'a> {
    /// `fineTune(examples, settings)`: JS `{ text, label }` objects and the settings
    /// as the library names them.
    New {
        examples: &'a JsValue,
        settings: &'a JsValue,
    },
    /// `resumeFineTune()`.
    Resume,
}

/// Held-out scores in `fineTune`'s report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOut {
    pub accuracy: f64,
    pub loss: f64,
    #[serde(default)]
    pub ece: Option<f64>,
    #[serde(default)]
    pub ece_uncalibrated: Option<f64>,
}

/// How many examples trained and how many were held out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Split {
    pub train: usize,
    pub validation: usize,
}

/// What `fineTune` resolves to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuneReport {
    pub before: Option<HeldOut>,
    pub after: Option<HeldOut>,
    pub steps: usize,
    pub examples: Split,
    pub seconds: f64,
    pub samples_per_second: f64,
    /// The checkpoint's step the run went on from (0: the start).
    #[serde(default)]
    pub resumed_from: usize,
    /// Why checkpoints stopped, when they did.
    #[serde(default)]
    pub warning: Option<String>,
}

/// Where to load a model from.
pub enum Source<'a> {
    /// A bundle folder's URL, relative to the page.
    Url(&'a str),
    /// A bundle's files by name (opened from disk).
    Files(&'a HashMap<String, Vec<u8>>),
}

/// A loaded `SentimentClassifier` (its worker ends with [`Remote::dispose`]).
pub struct Remote(JsValue);

/// The message of a rejected promise (an `Error`'s, else its string).
fn message(e: JsValue) -> String {
    Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn method(target: &JsValue, name: &str) -> Result<Function, String> {
    Reflect::get(target, &name.into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| format!("the JS library has no `{name}`: is lib/bert-sentiment.js loaded?"))
}

async fn settle(value: Result<JsValue, JsValue>) -> Result<JsValue, String> {
    let promise: Promise = value.map_err(message)?.unchecked_into();
    JsFuture::from(promise).await.map_err(message)
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(target, &key.into(), value);
}

/// The load `static/boot.js` started for `url` on `engine` before the page's module
/// ran, if there is one nobody took yet: its promise, with `progress` receiving what it
/// reports from now on (and the last report at once). Taken once.
fn take_preload(
    library: &JsValue,
    url: &str,
    engine: &str,
    progress: &Closure<dyn FnMut(JsValue)>,
) -> Option<JsValue> {
    let preload = Reflect::get(library, &"preload".into()).ok()?;
    let field = |key: &str| Reflect::get(&preload, &key.into()).ok();
    if field("url")?.as_string()? != url || field("engine")?.as_string()? != engine {
        return None;
    }
    let promise = field("promise").filter(|p| p.is_object())?;
    let _ = Reflect::set(library, &"preload".into(), &JsValue::NULL);
    let _ = Reflect::set(&preload, &"listener".into(), progress.as_ref());
    if let Some(last) = field("last").filter(|l| l.is_object()) {
        let _ = progress
            .as_ref()
            .unchecked_ref::<Function>()
            .call1(&JsValue::NULL, &last);
    }
    Some(promise)
}

/// Stop the load `static/boot.js` started, if nobody took it: the page loads another
/// model (its own fine-tuned one), and that load's worker would hold the release model.
pub fn discard_preload() {
    let Ok(library) = Reflect::get(&js_sys::global(), &"bertSentiment".into()) else {
        return;
    };
    let Some(promise) = Reflect::get(&library, &"preload".into())
        .ok()
        .and_then(|p| Reflect::get(&p, &"promise".into()).ok())
        .and_then(|p| p.dyn_into::<Promise>().ok())
    else {
        return;
    };
    let _ = Reflect::set(&library, &"preload".into(), &JsValue::NULL);
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(clf) = JsFuture::from(promise).await
            && let Ok(dispose) = method(&clf, "dispose")
        {
            let _ = dispose.call0(&clf);
        }
    });
}

impl Remote {
    /// `SentimentClassifier.load(source, { engine, onProgress })`.
    pub async fn load(
        source: Source<'_>,
        engine: &str,
        mut on_progress: impl FnMut(Progress) + 'static,
    ) -> Result<Remote, String> {
        let library = Reflect::get(&js_sys::global(), &"bertSentiment".into()).map_err(message)?;
        let class = Reflect::get(&library, &"SentimentClassifier".into())
            .ok()
            .filter(|c| c.is_function())
            .ok_or("the JS library (lib/bert-sentiment.js) is not loaded")?;
        let progress = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
            if let Ok(p) = serde_wasm_bindgen::from_value::<Progress>(p) {
                on_progress(p);
            }
        });
        if let Source::Url(url) = &source
            && let Some(preloaded) = take_preload(&library, url, engine, &progress)
        {
            let clf = settle(Ok(preloaded)).await;
            drop(progress);
            return clf.map(Remote);
        }
        let source: JsValue = match source {
            Source::Url(url) => url.into(),
            Source::Files(files) => {
                let map = Map::new();
                for (name, bytes) in files {
                    map.set(&name.into(), &Uint8Array::from(bytes.as_slice()));
                }
                let o = Object::new();
                set(&o, "files", &map);
                o.into()
            }
        };
        let options = Object::new();
        set(&options, "engine", &engine.into());
        set(&options, "onProgress", progress.as_ref());
        // What boot.js set up for every load: the cache the page's service worker
        // serves the model offline from, and the module the page compiled (it holds
        // the library's exports too), which a new worker reuses instead of
        // downloading and compiling its own.
        for key in ["offlineCache", "compiled"] {
            if let Ok(value) = Reflect::get(&library, &key.into())
                && !value.is_undefined()
                && !value.is_null()
            {
                set(&options, key, &value);
            }
        }
        let load = method(&class, "load")?;
        let clf = settle(load.call2(&class, &source, &options)).await?;
        // Loading is over: no more progress calls.
        drop(progress);
        Ok(Remote(clf))
    }

    /// `clf.info`.
    pub fn info(&self) -> Result<Info, String> {
        let info = Reflect::get(&self.0, &"info".into()).map_err(message)?;
        serde_wasm_bindgen::from_value(info).map_err(|e| format!("clf.info: {e}"))
    }

    /// `clf.classify(texts, { spans })`.
    pub async fn classify(&self, texts: &[&str], spans: bool) -> Result<Vec<Classified>, String> {
        let list: Array = texts.iter().map(|t| JsValue::from_str(t)).collect();
        let options = Object::new();
        set(&options, "spans", &spans.into());
        let classify = method(&self.0, "classify")?;
        let out = settle(classify.call2(&self.0, &list, &options)).await?;
        serde_wasm_bindgen::from_value(out).map_err(|e| format!("clf.classify: {e}"))
    }

    /// `clf.fineTune(examples, settings, options)` or `clf.resumeFineTune(options)`,
    /// with `{ onProgress, signal, checkpoint }`.
    pub async fn fine_tune(
        &self,
        tune: Tune<'_>,
        checkpoint: &JsValue,
        mut on_progress: impl FnMut(TuneProgress) + 'static,
        signal: &web_sys::AbortSignal,
    ) -> Result<TuneReport, String> {
        let progress = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
            if let Ok(p) = serde_wasm_bindgen::from_value::<TuneProgress>(p) {
                on_progress(p);
            }
        });
        let options = Object::new();
        set(&options, "onProgress", progress.as_ref());
        set(&options, "signal", signal);
        set(&options, "checkpoint", checkpoint);
        let out = match tune {
            Tune::New { examples, settings } => {
                let fine_tune = method(&self.0, "fineTune")?;
                settle(fine_tune.call3(&self.0, examples, settings, &options)).await
            }
            Tune::Resume => {
                let resume = method(&self.0, "resumeFineTune")?;
                settle(resume.call1(&self.0, &options)).await
            }
        };
        drop(progress);
        serde_wasm_bindgen::from_value(out?).map_err(|e| format!("clf.fineTune: {e}"))
    }

    /// `clf.savedFineTune()`: the run of this model kept in the browser's storage.
    pub async fn saved_fine_tune(&self) -> Result<Option<SavedTune>, String> {
        let saved = method(&self.0, "savedFineTune")?;
        let out = settle(saved.call0(&self.0)).await?;
        serde_wasm_bindgen::from_value(out).map_err(|e| format!("clf.savedFineTune: {e}"))
    }

    /// `clf.discardFineTune()`.
    pub async fn discard_fine_tune(&self) -> Result<(), String> {
        let discard = method(&self.0, "discardFineTune")?;
        settle(discard.call0(&self.0)).await.map(|_| ())
    }

    /// `clf.exportBundle()`: the model's bundle, file by file.
    pub async fn export_bundle(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let export = method(&self.0, "exportBundle")?;
        let map: Map = settle(export.call0(&self.0)).await?.unchecked_into();
        let mut files = Vec::new();
        for entry in map.entries() {
            let pair: Array = entry.map_err(message)?.unchecked_into();
            let name = pair
                .get(0)
                .as_string()
                .ok_or("exportBundle: a file without a name")?;
            let bytes: Uint8Array = pair.get(1).unchecked_into();
            files.push((name, bytes.to_vec()));
        }
        Ok(files)
    }

    /// `clf.dispose()`: the worker and its model go.
    pub fn dispose(&self) {
        if let Ok(dispose) = method(&self.0, "dispose") {
            let _ = dispose.call0(&self.0);
        }
    }
}
