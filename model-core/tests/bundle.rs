//! The web bundle: f16 and int8 weights decode to predictions close to the f32
//! model's (and so do int8 products, the page's arithmetic for int8), every file is verified against the manifest, and a tampered or
//! incomplete bundle is an error that names the file.

use std::collections::HashMap;

use burn::tensor::Device;
use model_core::bundle::{FORMAT, Manifest, sha256_hex};
use model_core::export::{WeightDtype, hf_state_dict, to_safetensors_as};
use model_core::open::{HfBytes, ModelFiles};
use model_core::{Classifier, Error, InferenceOptions, MatmulPrecision, Truncation};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny/finetuned");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

fn texts() -> Vec<String> {
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{DIR}/../golden.json")).unwrap()).unwrap();
    golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// A bundle of the tiny model with its weights stored as `dtype`, in memory as the
/// page holds it (`manifest.json` among the files).
fn bundle(dtype: WeightDtype) -> HashMap<String, Vec<u8>> {
    let device = Device::flex();
    let options = InferenceOptions {
        max_len: 64,
        truncation: Truncation::HeadTail,
        batch_size: 8,
    };
    let f32_model = Classifier::open(
        &HfBytes {
            config_json: &read("config.json"),
            tokenizer_json: &read("tokenizer.json"),
            safetensors: &read("model.safetensors"),
        },
        &device,
        Some(options),
    )
    .unwrap()
    .0;
    let weights = to_safetensors_as(&hf_state_dict(&f32_model.model).unwrap(), dtype).unwrap();
    let mut files = HashMap::new();
    files.insert("model.safetensors".to_string(), weights);
    files.insert("config.json".to_string(), read("config.json"));
    files.insert("tokenizer.json".to_string(), read("tokenizer.json"));
    let manifest = serde_json::json!({
        "format": FORMAT, "labels": ["negative", "positive"], "max_len": 64,
        "truncation": "head+tail", "weights": "model.safetensors", "dtype": dtype,
        "files": files.iter().map(|(n, b)| serde_json::json!({"name": n, "bytes": b.len(), "sha256": sha256_hex(b)})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    Manifest::parse(&manifest, "manifest.json").unwrap();
    files.insert("manifest.json".to_string(), manifest);
    files
}

fn positive_probs(files: &HashMap<String, Vec<u8>>, products: MatmulPrecision) -> Vec<f32> {
    let (mut c, report) = Classifier::open(files, &Device::flex(), None).unwrap();
    assert!(report.initialized.is_empty(), "{:?}", report.initialized);
    c.set_matmul_precision(products);
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    c.predict(&refs)
        .unwrap()
        .iter()
        .map(|p| p.probability("positive").unwrap())
        .collect()
}

#[test]
fn smaller_dtypes_predict_like_f32() {
    let f32_files = bundle(WeightDtype::F32);
    let reference = positive_probs(&f32_files, MatmulPrecision::F32);
    for (dtype, products, tolerance, max_ratio) in [
        (WeightDtype::F16, MatmulPrecision::F32, 2e-3, 0.55),
        (WeightDtype::Int8, MatmulPrecision::F32, 2e-2, 0.40),
        (WeightDtype::Int8, MatmulPrecision::Int8, 3e-2, 0.40),
        (WeightDtype::Int8Emb4, MatmulPrecision::Int8, 5e-2, 0.36),
    ] {
        let files = bundle(dtype);
        if dtype == WeightDtype::Int8Emb4 {
            // The table really is 4-bit: the int8 file is larger by half the table.
            let int8 = bundle(WeightDtype::Int8)["model.safetensors"].len();
            assert!(
                files["model.safetensors"].len() < int8,
                "no smaller than int8"
            );
        }
        if products == MatmulPrecision::Int8 {
            // The int8 kernel really ran: its answers are not the f32 products'.
            assert_ne!(
                positive_probs(&files, products),
                positive_probs(&files, MatmulPrecision::F32)
            );
        }
        let ratio =
            files["model.safetensors"].len() as f64 / f32_files["model.safetensors"].len() as f64;
        let probs = positive_probs(&files, products);
        let worst = reference
            .iter()
            .zip(&probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{dtype} ({products} products): weights {ratio:.2}x of f32, max |Δp(positive)| {worst:.2e}"
        );
        assert!(
            worst < tolerance,
            "{dtype}, {products} products: max diff {worst}"
        );
        assert!(ratio < max_ratio, "{dtype}: {ratio:.2}x of f32");
    }
}

fn refused(files: &HashMap<String, Vec<u8>>) -> Error {
    match Classifier::open(files, &Device::flex(), None) {
        Ok(_) => panic!("the bundle was accepted"),
        Err(e) => e,
    }
}

#[test]
fn tampered_or_missing_files_are_refused_by_name() {
    let mut files = bundle(WeightDtype::Int8);
    files.get_mut("tokenizer.json").unwrap()[10] ^= 0x20;
    let err = refused(&files);
    assert!(
        matches!(&err, Error::Integrity { file, .. } if file == "tokenizer.json"),
        "{err}"
    );
    assert!(err.to_string().contains("SHA-256"), "{err}");

    let mut files = bundle(WeightDtype::F16);
    let w = files.get_mut("model.safetensors").unwrap();
    w.truncate(w.len() / 2);
    let err = refused(&files);
    assert!(
        err.to_string()
            .starts_with("model.safetensors: integrity check failed"),
        "{err}"
    );

    files.remove("config.json");
    let err = refused(&files);
    assert!(
        err.to_string().contains("config.json") && err.to_string().contains("missing"),
        "{err}"
    );
}

/// A bundle's files with SHA-256s computed by their holder (as the page's worker has
/// the browser's WebCrypto compute them).
struct Digested<'a> {
    files: &'a HashMap<String, Vec<u8>>,
    sha256: HashMap<String, String>,
}

impl ModelFiles for Digested<'_> {
    fn location(&self) -> String {
        self.files.location()
    }

    fn read(&self, name: &str) -> model_core::Result<Option<std::borrow::Cow<'_, [u8]>>> {
        self.files.read(name)
    }

    fn sha256(&self, name: &str) -> Option<String> {
        self.sha256.get(name).cloned()
    }
}

#[test]
fn digests_given_with_the_files_are_what_is_checked() {
    let files = bundle(WeightDtype::Int8);
    let mut sha256: HashMap<String, String> = files
        .iter()
        .map(|(name, bytes)| (name.clone(), sha256_hex(bytes).to_uppercase()))
        .collect();
    let given = Digested {
        files: &files,
        sha256: sha256.clone(),
    };
    Classifier::open(&given, &Device::flex(), None).expect("the right digests (in any case)");

    // Untouched bytes, but a digest that does not match the manifest: refused by name.
    sha256.insert("tokenizer.json".into(), "0".repeat(64));
    let given = Digested {
        files: &files,
        sha256,
    };
    let err = match Classifier::open(&given, &Device::flex(), None) {
        Ok(_) => panic!("a wrong digest was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, Error::Integrity { file, .. } if file == "tokenizer.json"),
        "{err}"
    );
    assert!(err.to_string().contains(&"0".repeat(64)), "{err}");
}

#[test]
fn manifests_that_cannot_work_are_rejected() {
    for (bad, why) in [
        (
            r#"{"format": "other/9", "labels": ["a","b"], "max_len": 8, "truncation": "head", "files": []}"#,
            "format",
        ),
        (
            r#"{"format": "bert-sentiment-web/1", "labels": ["a"], "max_len": 8, "truncation": "head", "files": []}"#,
            "two labels",
        ),
        (
            r#"{"format": "bert-sentiment-web/1", "labels": ["a","b"], "max_len": 8, "truncation": "head", "files": []}"#,
            "does not list",
        ),
        ("not json", "not a valid manifest"),
    ] {
        let err = Manifest::parse(bad.as_bytes(), "site/model/manifest.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("site/model/manifest.json") && err.contains(why),
            "{err}"
        );
    }
}
