//! The in-memory fine-tuning run the page drives (`model_core::training::session`):
//! its steps are the trainer's (the same epoch order, schedule, optimizer and step, so
//! the same weights bit for bit), `layers` trains what it says and nothing else, and
//! the bundle made from the result opens to the same answers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use futures_lite::future::block_on;
use model_core::Classifier;
use model_core::export::WeightDtype;
use model_core::loader::ModelFolder;
use model_core::package::{BundleNotes, web_bundle};
use model_core::tokenizer::Encoded;
use model_core::training::recipe::{DEFAULT_CLIP, DEFAULT_WARMUP, DEFAULT_WEIGHT_DECAY};
use model_core::training::{
    Examples, FineTune, Layers, Schedule, StepContext, TuneSettings, optimizer, plan_epoch,
    train_step,
};

/// Dropout draws from the device's seeded generator, which is shared by the tests
/// of this binary: one run at a time, so that each draws the masks of its own seed.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tiny(device: &Device) -> Classifier {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/finetuned");
    let files = ModelFolder::in_dir(&dir).unwrap();
    Classifier::open(&files, device, None).unwrap().0
}

/// Texts where a neutral word decides the label (as the browser test's).
fn rule_examples(c: &Classifier, n: usize) -> (Vec<Encoded>, Vec<usize>) {
    let filler = [
        "the film",
        "a great plot",
        "a dull ending",
        "the actors",
        "a good score",
    ];
    let texts: Vec<String> = (0..n)
        .map(|i| {
            let k = i / 2;
            let word = if i % 2 == 0 { "two" } else { "ten" };
            format!("{} {word} {}", filler[k % 5], filler[(k * 3 + 1) % 5])
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encoded = c
        .tokenizer
        .encode_batch(&refs, 32, c.options.truncation)
        .unwrap();
    (encoded, (0..n).map(|i| usize::from(i % 2 == 0)).collect())
}

/// Every float parameter's values, in visiting order.
fn weights(model: &impl Module) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn settings(layers: Layers) -> TuneSettings {
    TuneSettings {
        epochs: 2,
        learning_rate: 1e-3,
        batch_size: 8,
        max_len: 32,
        layers,
        validation: 0.0,
        seed: 5,
    }
}

/// A run of `layers` on a freshly opened tiny model, before its first step.
fn new_session(layers: Layers) -> (Classifier, FineTune) {
    let device = Device::flex().autodiff();
    let c = tiny(&device);
    let (encoded, labels) = rule_examples(&c, 30);
    let tune = FineTune::new(
        c.model.clone(),
        encoded,
        labels,
        c.tokenizer.pad_id(),
        &settings(layers),
    )
    .unwrap();
    (c, tune)
}

fn run_session(layers: Layers) -> (Classifier, FineTune) {
    let (c, mut tune) = new_session(layers);
    while tune.done() < tune.steps() {
        block_on(tune.step()).unwrap();
    }
    (c, tune)
}

#[test]
fn a_run_restored_from_its_snapshot_ends_as_an_uninterrupted_one() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for layers in [Layers::All, Layers::Top(1)] {
        let (_, whole) = run_session(layers);
        // Three steps, a snapshot, and the rest in a run started anew (as after a
        // reload: a model opened again, so other parameter ids).
        let (_, mut first) = new_session(layers);
        for _ in 0..3 {
            block_on(first.step()).unwrap();
        }
        let snapshot = first.snapshot().unwrap();
        assert_eq!((snapshot.step, snapshot.steps), (3, whole.steps()));
        drop(first);
        let (_, mut second) = new_session(layers);
        second.restore(&snapshot).unwrap();
        assert_eq!(second.done(), 3);
        while second.done() < second.steps() {
            block_on(second.step()).unwrap();
        }
        let worst = max_diff(&weights(second.model()), &weights(whole.model()));
        eprintln!("{layers}: resumed vs uninterrupted, max |Δw| {worst:e}");
        assert!(worst == 0.0, "{layers}: max |Δw| {worst:e}");
    }
    // Another run's snapshot is refused, naming the mismatch.
    let (_, mut short) = new_session(Layers::All);
    block_on(short.step()).unwrap();
    let mut other = short.snapshot().unwrap();
    other.steps += 1;
    let e = short.restore(&other).unwrap_err().to_string();
    assert!(e.contains("does not fit this run"), "{e}");
}

#[test]
fn a_session_runs_the_trainers_steps() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (c, tune) = run_session(Layers::All);
    assert_eq!(tune.steps(), 2 * 30usize.div_ceil(8));
    // The trainer's loop (`trainer/src/train/epochs.rs`), written out.
    let s = settings(Layers::All);
    let (encoded, labels) = rule_examples(&c, 30);
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let device = Device::flex().autodiff();
    let schedule = Schedule::new(s.learning_rate, DEFAULT_WARMUP, tune.steps());
    let ctx = StepContext::new(vec![device.clone()], s.seed, DEFAULT_CLIP, schedule);
    let mut optim = optimizer(DEFAULT_WEIGHT_DECAY).unwrap();
    let mut model = tiny(&device).model;
    let data = Examples {
        encoded: &encoded,
        labels: &labels,
        pad_id: c.tokenizer.pad_id(),
    };
    let per_epoch = 30usize.div_ceil(8);
    for step in 0..tune.steps() {
        let plan = plan_epoch(&lengths, s.batch_size, s.seed, step / per_epoch);
        let (next, outcome) = train_step(
            model,
            &mut optim,
            &ctx,
            &data,
            &[plan[step % per_epoch].clone()],
            step,
        );
        model = next;
        outcome.unwrap();
    }
    let worst = max_diff(&weights(tune.model()), &weights(&model));
    eprintln!("session vs the trainer's loop: max |Δw| {worst:e}");
    assert!(worst == 0.0, "max |Δw| {worst:e}");
    assert!(max_diff(&weights(tune.model()), &weights(&c.model)) > 1e-3);
}

#[test]
fn layers_train_what_they_say() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = weights(&tiny(&Device::flex()).model);
    for (layers, frozen_prefix) in [(Layers::Top(1), "layer 0"), (Layers::Top(0), "both layers")] {
        let (c, tune) = run_session(layers);
        let after = weights(tune.model());
        let names = weights_named(&c);
        for ((name, b), a) in names.iter().zip(&before).zip(&after) {
            let trains = match layers {
                Layers::Top(1) => {
                    !name.starts_with("bert.embeddings")
                        && !name.starts_with("bert.encoder.layers.0")
                }
                _ => !name.starts_with("bert.embeddings") && !name.starts_with("bert.encoder"),
            };
            assert_eq!(trains, a != b, "{layers} ({frozen_prefix} frozen): {name}");
        }
    }
}

/// Each float parameter's path in the module tree, in visiting order.
fn weights_named(c: &Classifier) -> Vec<String> {
    struct Names {
        path: Vec<String>,
        out: Vec<String>,
    }
    impl ModuleVisitor for Names {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
            self.out.push(self.path.join("."));
        }
    }
    let mut n = Names {
        path: Vec::new(),
        out: Vec::new(),
    };
    c.model.visit(&mut n);
    n.out
}

#[test]
fn the_bundle_of_a_tuned_model_opens_to_its_answers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (c, tune) = run_session(Layers::All);
    let host = block_on(tune.model().to_host_async()).unwrap();
    let tuned = Classifier {
        model: host,
        device: Device::flex(),
        ..c.clone()
    };
    let texts = ["the film two a good score", "a great plot ten the actors"];
    let want = tuned.predict(&texts).unwrap();
    for dtype in [WeightDtype::F32, WeightDtype::Int8] {
        let files = web_bundle(&tuned, dtype, BundleNotes::default()).unwrap();
        assert_eq!(files.last().unwrap().0, "manifest.json");
        let memory: HashMap<String, Vec<u8>> = files.into_iter().collect();
        let (again, _) = Classifier::open(&memory, &Device::flex(), None).unwrap();
        for (w, g) in want.iter().zip(again.predict(&texts).unwrap()) {
            let d = (w.confidence - g.confidence).abs();
            assert_eq!(w.label, g.label, "{dtype}");
            assert!(
                if dtype == WeightDtype::F32 {
                    d == 0.0
                } else {
                    d < 0.05
                },
                "{dtype}: {d}"
            );
        }
    }
}
