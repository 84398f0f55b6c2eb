//! The same model in the browser: the tiny fine-tuned checkpoint that `transformers`
//! wrote, run on WebGPU and on flex-wasm, must give PyTorch's probabilities (which the
//! native backends also match) within 1e-4; with int8 products (the page's arithmetic
//! for an int8 export) within int8's error.
//!
//! Run: `wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver web`
//! (Chromium with `--enable-unsafe-webgpu` from `webdriver.json` offers a SwiftShader
//! WebGPU adapter, so this needs no GPU.)
#![cfg(target_arch = "wasm32")]

use model_core::open::HfBytes;
use model_core::{Classifier, InferenceOptions, MatmulPrecision, Truncation};
use wasm_bindgen_test::*;
use web::engine::{Engine, device_for};

wasm_bindgen_test_configure!(run_in_browser);

const TINY: HfBytes<'static> = HfBytes {
    config_json: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/config.json"),
    tokenizer_json: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/tokenizer.json"),
    safetensors: include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/model.safetensors"),
};
const GOLDEN: &str = include_str!("../../model-core/tests/fixtures/tiny/golden.json");

/// The tiny model's largest probability difference from PyTorch's on `engine`,
/// computing its projections with `products`; and the probabilities.
async fn check(engine: Engine, products: MatmulPrecision) -> (f64, Vec<f32>) {
    let device = device_for(engine).await.expect("engine available");
    let options = InferenceOptions {
        max_len: 64,
        truncation: Truncation::Head,
        batch_size: 4,
    };
    let (mut classifier, _) = Classifier::open(&TINY, &device, Some(options)).unwrap();
    classifier.set_matmul_precision(products);
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let texts: Vec<&str> = golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let predictions = classifier.predict_async(&texts).await.unwrap();
    let mut worst = 0.0f64;
    let mut probs = Vec::new();
    for (p, want) in predictions
        .iter()
        .zip(golden["probabilities"].as_array().unwrap())
    {
        for (c, label) in ["negative", "positive"].iter().enumerate() {
            let got = p.probability(label).unwrap() as f64;
            probs.push(got as f32);
            worst = worst.max((got - want[c].as_f64().unwrap()).abs());
        }
    }
    console_log!(
        "{engine}, {products} products: max abs diff vs PyTorch {worst:.3e} over {} texts",
        texts.len()
    );
    (worst, probs)
}

#[wasm_bindgen_test]
async fn flex_wasm_matches_pytorch() {
    let (worst, _) = check(Engine::Cpu, MatmulPrecision::F32).await;
    assert!(worst < 1e-4, "max abs diff {worst}");
}

#[wasm_bindgen_test]
async fn webgpu_matches_pytorch() {
    let (worst, _) = check(Engine::WebGpu, MatmulPrecision::F32).await;
    assert!(worst < 1e-4, "max abs diff {worst}");
}

/// The int8 kernel on wasm (this test build is the plain simd128 one; the page's
/// relaxed-SIMD build computes the same integers): close to PyTorch, and really int8.
#[wasm_bindgen_test]
async fn flex_wasm_int8_products_stay_close() {
    let (worst, int8) = check(Engine::Cpu, MatmulPrecision::Int8).await;
    let (_, f32) = check(Engine::Cpu, MatmulPrecision::F32).await;
    assert!(worst < 3e-2, "max abs diff {worst}");
    assert_ne!(int8, f32, "the int8 kernel did not run");
}

/// In the browser as natively: a pasted review's HTML line breaks read as spaces, so
/// the page sees the tokens the trainer gave the model.
#[wasm_bindgen_test]
async fn line_break_tags_do_not_change_predictions_in_the_browser() {
    let device = device_for(Engine::Cpu).await.expect("CPU engine");
    let options = InferenceOptions {
        max_len: 64,
        ..InferenceOptions::default()
    };
    let (classifier, _) = Classifier::open(&TINY, &device, Some(options)).unwrap();
    let texts = [
        "A fine film.<br /><br />I loved it.",
        "A fine film.  I loved it.",
    ];
    let p = classifier.predict_async(&texts).await.unwrap();
    assert_eq!(p[0].probabilities, p[1].probabilities);
    assert_eq!(p[0].tokens, p[1].tokens);
}
