//! The same model in the browser: the tiny fine-tuned checkpoint that `transformers`
//! wrote, run on WebGPU and on flex-wasm, must give PyTorch's probabilities (which the
//! native backends also match) within 1e-4.
//!
//! Run: `wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver web`
//! (Chromium with `--enable-unsafe-webgpu` from `webdriver.json` offers a SwiftShader
//! WebGPU adapter, so this needs no GPU.)
#![cfg(target_arch = "wasm32")]

use model_core::inference::HfBytes;
use model_core::{Classifier, InferenceOptions, Truncation};
use wasm_bindgen_test::*;
use web::engine::{Engine, device_for};

wasm_bindgen_test_configure!(run_in_browser);

const TINY: HfBytes<'static> = HfBytes {
    config_json: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/config.json"),
    tokenizer_json: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/tokenizer.json"),
    safetensors: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/model.safetensors"),
};
const GOLDEN: &str = include_str!("../../model-core/tests/fixtures/tiny/golden.json");

async fn check(engine: Engine) {
    let device = device_for(engine).await.expect("engine available");
    let options = InferenceOptions {
        max_len: 64,
        truncation: Truncation::Head,
        batch_size: 4,
    };
    let (classifier, _) = Classifier::from_hf_bytes(TINY, &device, options).unwrap();
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let texts: Vec<&str> = golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let predictions = classifier.predict_async(&texts).await.unwrap();
    let mut worst = 0.0f64;
    for (p, want) in predictions
        .iter()
        .zip(golden["probabilities"].as_array().unwrap())
    {
        for (c, label) in ["negative", "positive"].iter().enumerate() {
            let got = p.probability(label).unwrap() as f64;
            worst = worst.max((got - want[c].as_f64().unwrap()).abs());
        }
    }
    console_log!(
        "{engine}: max abs diff vs PyTorch {worst:.3e} over {} texts",
        texts.len()
    );
    assert!(worst < 1e-4, "{engine}: max abs diff {worst}");
}

#[wasm_bindgen_test]
async fn flex_wasm_matches_pytorch() {
    check(Engine::Cpu).await;
}

#[wasm_bindgen_test]
async fn webgpu_matches_pytorch() {
    check(Engine::WebGpu).await;
}
