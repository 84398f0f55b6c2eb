//! model-core's training step against PyTorch's: the same steps on the tiny model
//! (`tools/make_train_golden.py`, dropout off), natively on flex with this crate's
//! training ops. The browser runs the same comparison (`web/tests/training.rs`).

#[path = "support/train_golden.rs"]
mod train_golden;

use burn::prelude::*;
use model_core::training::{optimizer, train_step};
use train_golden::{Golden, softmax};

/// The golden steps on `base` (with autodiff), then each text's probabilities.
fn run(base: Device, name: &str) -> train_golden::Report {
    let golden = Golden::load();
    let device = base.clone().autodiff();
    let ctx = golden.context(&device);
    let mut optim = optimizer(golden.weight_decay()).unwrap();
    let mut model = golden.model(&device);
    let mut stats = Vec::new();
    for step in 0..golden.steps() {
        let (next, outcome) = train_step(
            model,
            &mut optim,
            &ctx,
            &golden.examples(),
            &golden.group(),
            step,
        );
        model = next;
        stats.push(outcome.expect("a finite step"));
    }
    let model = model.valid();
    let probabilities: Vec<Vec<f32>> = (0..golden.encoded.len())
        .map(|i| {
            let logits = model.forward(&golden.input(i, &base)).into_data();
            softmax(&logits.try_to_vec::<f32>().unwrap())
        })
        .collect();
    let report = golden.compare(&stats, &probabilities);
    eprintln!("{name}: {report}");
    report
}

#[test]
fn native_training_steps_match_pytorch() {
    let report = run(Device::flex(), "flex, native");
    assert!(report.loss < 1e-4 && report.grad_norm < 1e-4, "{report}");
    assert!(report.probabilities < 1e-4, "{report}");
}

/// burn's generic ops on wgpu (lavapipe in CI), with burn's kernel fusion: the GPU
/// fine-tuning path. `REQUIRE_WGPU=1` turns a missing adapter into a failure.
#[test]
fn wgpu_training_steps_match_pytorch() {
    let Some(gpu) = model_core::backend::wgpu_for_tests("the training steps") else {
        return;
    };
    let report = run(gpu.device.clone(), &gpu.description);
    assert!(report.loss < 1e-4 && report.grad_norm < 1e-4, "{report}");
    assert!(report.probabilities < 1e-4, "{report}");
}
