//! Fine-tuning in the browser does the trainer's arithmetic: model-core's training step
//! (`model_core::training`, the function `trainer fine-tune` runs) on the tiny model,
//! a few steps with dropout off, on flex-wasm and on WebGPU, held to PyTorch's steps
//! (`tools/make_train_golden.py`) as the native test (`model-core/tests/training.rs`)
//! is: the per-step loss and gradient norm, and the probabilities after the last step
//! within 1e-4.
//!
//! Run: `wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver web`
//! (as `inference.rs`; WebGPU is SwiftShader's there).
#![cfg(target_arch = "wasm32")]

#[path = "../../model-core/tests/support/train_golden.rs"]
mod train_golden;

use burn::prelude::*;
use model_core::training::{optimizer, train_step_async};
use train_golden::{Golden, Report, softmax};
use wasm_bindgen_test::*;
use web::engine::{Engine, device_for};

wasm_bindgen_test_configure!(run_in_browser);

/// The golden steps on `engine`, then each text's probabilities, all read back
/// asynchronously (as WebGPU requires).
async fn run(engine: Engine) -> Report {
    let golden = Golden::load();
    let base = device_for(engine).await.expect("engine available");
    let device = base.clone().autodiff();
    let ctx = golden.context(&device);
    let mut optim = optimizer(golden.weight_decay()).unwrap();
    let mut model = golden.model(&device);
    let mut stats = Vec::new();
    for step in 0..golden.steps() {
        let (next, outcome) = train_step_async(
            model,
            &mut optim,
            &ctx,
            &golden.examples(),
            &golden.group(),
            step,
        )
        .await;
        model = next;
        stats.push(outcome.expect("readable").expect("a finite step"));
    }
    let model = model.valid();
    let mut probabilities = Vec::new();
    for i in 0..golden.encoded.len() {
        let logits = model
            .forward(&golden.input(i, &base))
            .into_data_async()
            .await
            .unwrap();
        probabilities.push(softmax(&logits.try_to_vec::<f32>().unwrap()));
    }
    let report = golden.compare(&stats, &probabilities);
    console_log!("{engine}: {} steps, {report}", stats.len());
    report
}

#[wasm_bindgen_test]
async fn flex_wasm_training_steps_match_pytorch() {
    let report = run(Engine::Cpu).await;
    assert!(report.loss < 1e-4 && report.grad_norm < 1e-4, "{report}");
    assert!(report.probabilities < 1e-4, "{report}");
}

#[wasm_bindgen_test]
async fn webgpu_training_steps_match_pytorch() {
    let report = run(Engine::WebGpu).await;
    assert!(report.loss < 1e-4 && report.grad_norm < 1e-4, "{report}");
    assert!(report.probabilities < 1e-4, "{report}");
}
