//! Fine-tuning in the library's worker (`clf.fineTune`) and the bundle of the model it
//! holds (`clf.exportBundle`).
//!
//! A run is model-core's in-memory session ([`FineTune`]: the trainer's step, epoch
//! order and schedule) on the engine the model runs on, driven a step at a time by
//! `static/lib/worker.js`, which reports progress and lets a cancel in between steps.
//! The model before stays current until the run ends: a cancelled or failed run
//! leaves it working. At the end the trained weights become a web bundle in the
//! model's own dtype (an int8 model is trained in f32 and quantised again by the
//! project's one quantiser), the calibration is fitted on the held-out examples, and
//! that bundle, the one `exportBundle` returns, is what the worker then runs. A run
//! in progress can be saved and restored ([`checkpoint`]), for the worker's
//! checkpoints in IndexedDB.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Map, Uint8Array};
use model_core::bundle::{MANIFEST_FILE, Manifest};
use model_core::calibration::{Calibration, Reliability};
use model_core::export::WeightDtype;
use model_core::input::labels::{RawLabel, map_label};
use model_core::input::split::split_validation;
use model_core::input::{Example, LabeledData};
use model_core::package::{BundleNotes, web_bundle};
use model_core::tokenizer::Encoded;
use model_core::training::session::{logits_async, scores};
use model_core::training::{FineTune, Layers, Scores, TuneSettings};
use model_core::{Classifier, InferenceOptions};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::library::{Files, Loaded, build, current, info_of, install, to_js};

pub mod checkpoint;

/// A label as JS passes it: a name (`"positive"`, any case) or a class index.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsLabel {
    Index(u64),
    Name(String),
}

#[derive(Deserialize)]
struct JsExample {
    text: String,
    label: JsLabel,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsLayers {
    Count(usize),
    Named(String),
}

/// `fineTune`'s settings, as the JS API names them ([`SETTINGS`]).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsSettings {
    epochs: Option<usize>,
    learning_rate: Option<f64>,
    batch_size: Option<usize>,
    max_len: Option<usize>,
    layers: Option<JsLayers>,
    validation: Option<f64>,
    seed: Option<u64>,
}

/// Every setting `fineTune` takes: a misspelt one is an error rather than a silent
/// default (serde-wasm-bindgen reads only the fields it knows).
const SETTINGS: [&str; 7] = [
    "epochs",
    "learningRate",
    "batchSize",
    "maxLen",
    "layers",
    "validation",
    "seed",
];

impl JsSettings {
    /// The settings in the JS object `value` (`undefined` or `null`: all defaults).
    fn read(value: JsValue) -> Result<Self, JsError> {
        if value.is_undefined() || value.is_null() {
            return Ok(Self::default());
        }
        if !value.is_object() {
            return Err(err("settings: expected an object"));
        }
        for key in js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if !SETTINGS.contains(&key.as_str()) {
                return Err(err(format!(
                    "settings: `{key}` is not a setting (they are {})",
                    SETTINGS.join(", ")
                )));
            }
        }
        serde_wasm_bindgen::from_value(value).map_err(|e| err(format!("settings: {e}")))
    }

    /// With the defaults filled in; the default length within the model's `max_positions`.
    fn settings(self, max_positions: usize) -> Result<TuneSettings, String> {
        let d = TuneSettings::default();
        let layers = match self.layers {
            None => d.layers,
            Some(JsLayers::Count(n)) => Layers::Top(n),
            Some(JsLayers::Named(s)) => Layers::parse(&s, "layers").map_err(|e| e.to_string())?,
        };
        Ok(TuneSettings {
            epochs: self.epochs.unwrap_or(d.epochs),
            learning_rate: self.learning_rate.unwrap_or(d.learning_rate),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            max_len: self.max_len.unwrap_or(d.max_len.min(max_positions)),
            layers,
            validation: self.validation.unwrap_or(d.validation),
            seed: self.seed.unwrap_or(d.seed),
        })
    }
}

/// A run between `fineTuneStart` and `fineTuneFinish`.
struct Run {
    tune: FineTune,
    settings: TuneSettings,
    base: Rc<Loaded>,
    held_out: (Vec<Encoded>, Vec<usize>),
    before: Option<Scores>,
    train: usize,
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// `f` on the run in progress.
fn with_run<T>(f: impl FnOnce(&mut Run) -> Result<T, JsError>) -> Result<T, JsError> {
    RUN.with(|r| match r.borrow_mut().as_mut() {
        Some(run) => f(run),
        None => Err(err("no fine-tuning run is in progress")),
    })
}

fn err(e: impl ToString) -> JsError {
    JsError::new(&e.to_string())
}

/// What `fineTuneStart` reports.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    steps: usize,
    train: usize,
    validation: usize,
    before: Option<Scores>,
}

/// Start a run on the current model: `examples` (`[{ text, label }]`, labels by the
/// page's rules: a label name in any case, or a class index), `settings` as the JS
/// API names them. Splits off the held-out part, scores the model on it, tokenizes,
/// and loads a trainable copy of the model on the same engine. A run started before
/// is dropped.
#[wasm_bindgen(js_name = fineTuneStart)]
pub async fn fine_tune_start(examples: JsValue, settings: JsValue) -> Result<JsValue, JsError> {
    RUN.with(|r| r.borrow_mut().take());
    let base = current()?;
    let settings = JsSettings::read(settings)?;
    let c = &base.classifier;
    let settings = settings
        .settings(c.config.max_position_embeddings)
        .map_err(err)?;
    settings
        .check(c.config.max_position_embeddings)
        .map_err(err)?;
    let examples: Vec<JsExample> = serde_wasm_bindgen::from_value(examples).map_err(|e| {
        err(format!(
            "examples: expected [{{ text, label }}] with a string text and a label name or index ({e})"
        ))
    })?;
    let mut data = LabeledData {
        examples: Vec::with_capacity(examples.len()),
        labels: c.labels.clone(),
    };
    for (i, e) in examples.into_iter().enumerate() {
        let raw = match e.label {
            JsLabel::Index(i) => RawLabel::Index(i),
            JsLabel::Name(n) => RawLabel::Name(n),
        };
        let label = map_label(&raw, &c.labels, &format!("examples[{i}]")).map_err(err)?;
        let label = c
            .labels
            .iter()
            .position(|l| *l == label)
            .expect("a model label");
        data.examples.push(Example {
            text: e.text,
            label,
        });
    }
    if data.examples.len() < 2 {
        return Err(err("examples: at least 2 are needed"));
    }
    let (train, held) = split_validation(data, settings.validation, settings.seed);
    // The held-out part is read as the model reads any text; training texts at the
    // run's max length.
    let held_texts: Vec<&str> = held.examples.iter().map(|e| e.text.as_str()).collect();
    let held_encoded = c.encode(&held_texts).map_err(err)?;
    let held_labels: Vec<usize> = held.examples.iter().map(|e| e.label).collect();
    let before = if held_encoded.is_empty() {
        None
    } else {
        let logits = logits_async(c, &held_encoded).await.map_err(err)?;
        Some(scores(logits, &held_labels).0)
    };
    let texts: Vec<&str> = train.examples.iter().map(|e| e.text.as_str()).collect();
    let encoded = c
        .tokenizer
        .encode_batch(&texts, settings.max_len, c.options.truncation)
        .map_err(err)?;
    let labels = train.examples.iter().map(|e| e.label).collect();
    let device = c.device.clone().autodiff();
    let (trainable, _) = Classifier::open(&base.files, &device, None).map_err(err)?;
    let tune = FineTune::new(
        trainable.model,
        encoded,
        labels,
        c.tokenizer.pad_id(),
        &settings,
    )
    .map_err(err)?;
    let started = Started {
        steps: tune.steps(),
        train: train.examples.len(),
        validation: held_labels.len(),
        before,
    };
    RUN.with(|r| {
        *r.borrow_mut() = Some(Run {
            tune,
            settings,
            base: base.clone(),
            held_out: (held_encoded, held_labels),
            before,
            train: started.train,
        })
    });
    to_js(&started)
}

/// What one step reports.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stepped {
    step: usize,
    steps: usize,
    epoch: usize,
    loss: f64,
    grad_norm: f32,
    learning_rate: f64,
    samples: usize,
}

fn take_run() -> Result<Run, JsError> {
    RUN.with(|r| r.borrow_mut().take())
        .ok_or_else(|| err("no fine-tuning run is in progress"))
}

/// The run's next step. A failed step ends the run (the model before stays).
#[wasm_bindgen(js_name = fineTuneStep)]
pub async fn fine_tune_step() -> Result<JsValue, JsError> {
    let mut run = take_run()?;
    let epoch = run.tune.epoch();
    let stats = run.tune.step().await.map_err(err)?;
    let out = Stepped {
        step: run.tune.done(),
        steps: run.tune.steps(),
        epoch,
        loss: stats.loss,
        grad_norm: stats.grad_norm,
        learning_rate: stats.lr,
        samples: stats.samples,
    };
    RUN.with(|r| *r.borrow_mut() = Some(run));
    to_js(&out)
}

/// Drop the run in progress, if any; the model before stays.
#[wasm_bindgen(js_name = fineTuneCancel)]
pub fn fine_tune_cancel() {
    RUN.with(|r| r.borrow_mut().take());
}

/// How the fine-tuned model does on the held-out examples.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct After {
    accuracy: f64,
    loss: f64,
    /// Expected calibration error with the raw logits, then with the fitted calibration.
    ece_uncalibrated: f64,
    ece: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Finished {
    after: Option<After>,
    temperature: f32,
    exponent: f32,
    info: crate::library::Info,
}

fn ece(pairs: &[(Vec<f32>, usize)], calibration: Calibration) -> f64 {
    let mut r = Reliability::default();
    for (logits, truth) in pairs {
        let p = calibration.probabilities(logits);
        let best = (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0);
        r.add(p[best], best == *truth);
    }
    r.ece()
}

/// End the run: the trained model as a bundle in the model's dtype, opened on the
/// engine, scored on the held-out part, calibrated on it, and made the worker's model.
#[wasm_bindgen(js_name = fineTuneFinish)]
pub async fn fine_tune_finish() -> Result<JsValue, JsError> {
    let run = take_run()?;
    if run.tune.done() < run.tune.steps() {
        return Err(err(format!(
            "the run has done {} of its {} steps",
            run.tune.done(),
            run.tune.steps()
        )));
    }
    let base = &run.base;
    let host = run.tune.model().to_host_async().await.map_err(err)?;
    let c = &base.classifier;
    let trained = Classifier {
        model: host,
        device: burn::tensor::Device::flex(),
        calibration: Calibration::NONE,
        ..c.clone()
    };
    let dtype = base.manifest.as_ref().map_or(WeightDtype::F32, |m| m.dtype);
    let bundle = web_bundle(&trained, dtype, BundleNotes::default()).map_err(err)?;
    drop(trained);
    let mut files = Files {
        bytes: bundle.into_iter().collect(),
        sha256: HashMap::new(),
    };
    let mut classifier = build(&files, base.engine, &c.device).await.map_err(err)?;
    let (held_encoded, held_labels) = &run.held_out;
    let (after, calibration) = if held_labels.is_empty() {
        (None, Calibration::NONE)
    } else {
        let logits = logits_async(&classifier, held_encoded).await.map_err(err)?;
        let (s, pairs) = scores(logits, held_labels);
        let calibration = Calibration::fit(&pairs);
        let after = After {
            accuracy: s.accuracy,
            loss: s.loss,
            ece_uncalibrated: ece(&pairs, Calibration::NONE),
            ece: ece(&pairs, calibration),
        };
        (Some(after), calibration)
    };
    classifier
        .set_calibration(calibration, MANIFEST_FILE)
        .map_err(err)?;
    // The manifest now records the calibration, the held-out scores and the settings.
    let mut manifest = Manifest::parse(&files.bytes[MANIFEST_FILE], MANIFEST_FILE).map_err(err)?;
    manifest.calibration = calibration;
    manifest.metrics = match (&after, run.before) {
        (Some(a), Some(b)) => serde_json::json!({
            "accuracy": a.accuracy,
            "loss": a.loss,
            "ece": a.ece,
            "accuracy_before": b.accuracy,
            "examples": held_labels.len(),
            "split": "held-out part of the fine-tuning examples",
        }),
        _ => serde_json::Value::Null,
    };
    manifest.training = training_record(&run);
    manifest.note = Some("fine-tuned in the browser".into());
    files.bytes.insert(MANIFEST_FILE.into(), manifest.to_json());
    let total = files.bytes.values().map(|b| b.len() as u64).sum();
    let loaded = install(Loaded {
        classifier,
        engine: base.engine,
        manifest: Some(manifest),
        files,
        bytes: total,
        note: base.note.clone(),
    });
    to_js(&Finished {
        after,
        temperature: calibration.temperature,
        exponent: calibration.exponent,
        info: info_of(&loaded),
    })
}

/// The run's settings as the manifest records them.
fn training_record(run: &Run) -> serde_json::Value {
    let s = &run.settings;
    let options: &InferenceOptions = &run.base.classifier.options;
    serde_json::json!({
        "where": "browser",
        "epochs": s.epochs,
        "learning_rate": s.learning_rate,
        "batch_size": s.batch_size,
        "max_len": s.max_len,
        "layers": s.layers.to_string(),
        "validation": s.validation,
        "seed": s.seed,
        "train_examples": run.train,
        "inference_max_len": options.max_len,
    })
}

/// The current model's web bundle (name → bytes): the files it was opened from when
/// it is a bundle (every file the manifest lists, and the manifest), else (a Hugging
/// Face folder) an f32 bundle made from it.
#[wasm_bindgen(js_name = exportBundle)]
pub async fn export_bundle() -> Result<Map, JsError> {
    let m = current()?;
    let files: Vec<(String, Vec<u8>)> = match &m.manifest {
        Some(manifest) => {
            let mut names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
            names.push(MANIFEST_FILE);
            names
                .into_iter()
                .filter_map(|n| m.files.bytes.get(n).map(|b| (n.to_string(), b.clone())))
                .collect()
        }
        None => {
            let host = m.classifier.model.to_host_async().await.map_err(err)?;
            let c = Classifier {
                model: host,
                device: burn::tensor::Device::flex(),
                ..m.classifier.clone()
            };
            web_bundle(&c, WeightDtype::F32, BundleNotes::default()).map_err(err)?
        }
    };
    let out = Map::new();
    for (name, bytes) in files {
        out.set(&name.into(), &Uint8Array::from(bytes.as_slice()).into());
    }
    Ok(out)
}
