//! Component tests of the page: it renders, loads a model bundle, and Classify shows
//! a label with its confidence; a tampered bundle is refused with the file named.
//! The model is the tiny fine-tuned fixture, handed over in memory as a bundle.
#![cfg(target_arch = "wasm32")]

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use model_core::bundle::{FORMAT, sha256_hex};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web::app::{App, ModelSource};
use web::fetch::sleep_ms;

wasm_bindgen_test_configure!(run_in_browser);

const CONFIG: &[u8] = include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/config.json");
const TOKENIZER: &[u8] =
    include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/tokenizer.json");
const WEIGHTS: &[u8] =
    include_bytes!("../../model-core/tests/fixtures/tiny/finetuned/model.safetensors");

fn bundle(tamper: bool) -> HashMap<String, Vec<u8>> {
    let files: Vec<(&str, &[u8])> = vec![
        ("model.safetensors", WEIGHTS),
        ("tokenizer.json", TOKENIZER),
        ("config.json", CONFIG),
    ];
    let manifest = serde_json::json!({
        "format": FORMAT,
        "labels": ["negative", "positive"],
        "max_len": 64,
        "truncation": "head+tail",
        "weights": "model.safetensors",
        "dtype": "f32",
        "files": files.iter().map(|(n, b)| serde_json::json!({
            "name": n, "bytes": b.len(), "sha256": sha256_hex(b)
        })).collect::<Vec<_>>(),
    });
    let mut map: HashMap<String, Vec<u8>> = files
        .into_iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    map.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    if tamper {
        map.get_mut("model.safetensors").unwrap()[200] ^= 1;
    }
    map
}

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// Mount the page in a fresh container.
fn mount(files: HashMap<String, Vec<u8>>) -> web_sys::HtmlElement {
    let container: web_sys::HtmlElement =
        document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&container).unwrap();
    let source = ModelSource::Files(Rc::new(files));
    leptos::mount::mount_to(
        container.clone(),
        move || view! { <App source=source.clone() /> },
    )
    .forget();
    container
}

/// Wait until `selector` matches inside `root` (up to ~60 s).
async fn wait_for(root: &web_sys::HtmlElement, selector: &str) -> web_sys::HtmlElement {
    for _ in 0..600 {
        if let Some(e) = root.query_selector(selector).unwrap() {
            return e.unchecked_into();
        }
        sleep_ms(100).await;
    }
    panic!(
        "timed out waiting for {selector}; page: {}",
        root.inner_text()
    );
}

#[wasm_bindgen_test]
async fn classify_shows_label_and_confidence() {
    let page = mount(bundle(false));
    wait_for(&page, ".model .ready").await;
    let button: web_sys::HtmlButtonElement = wait_for(&page, "#classify").await.unchecked_into();
    assert!(
        button.disabled(),
        "Classify is disabled while the text is empty"
    );
    assert!(page.inner_text().contains("Type a review to classify it."));

    let area: web_sys::HtmlTextAreaElement = wait_for(&page, "#review").await.unchecked_into();
    area.set_value("an absolutely wonderful , moving film with superb acting");
    area.dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    sleep_ms(10).await;
    assert!(!button.disabled(), "Classify is enabled once there is text");
    button.click();
    let label = wait_for(&page, "[data-testid=label]").await.inner_text();
    let (name, rest) = label.split_once(", ").expect("\"Label, NN% confidence\"");
    assert!(["Positive", "Negative"].contains(&name), "{label}");
    let pct: f32 = rest.trim_end_matches("% confidence").parse().expect(&label);
    assert!((50.0..=100.0).contains(&pct), "{label}");
    let meta = wait_for(&page, "[data-testid=meta]").await.inner_text();
    assert!(meta.contains(" ms on "), "{meta}");
    // The probabilities line lists both labels.
    let probs = wait_for(&page, ".probs").await.inner_text();
    assert!(
        probs.contains("negative") && probs.contains("positive"),
        "{probs}"
    );
}

#[wasm_bindgen_test]
async fn tampered_bundle_is_refused_naming_the_file() {
    let page = mount(bundle(true));
    let error = wait_for(&page, ".model .error").await.inner_text();
    assert!(error.contains("model.safetensors"), "{error}");
    assert!(error.contains("integrity check failed"), "{error}");
    assert!(wait_for(&page, ".model .error button").await.inner_text() == "Retry");
}
