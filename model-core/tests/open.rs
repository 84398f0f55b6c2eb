//! `Classifier::open`: every kind of model folder (Hugging Face with safetensors or
//! PyTorch weights, the trainer's burnpack folder), on disk or in memory, opens to
//! the same model; a folder that cannot work is an error naming the file.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use model_core::calibration::Calibration;
use model_core::loader::ModelFolder;
use model_core::settings::InferenceSettings;
use model_core::{Classifier, Truncation};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny");

const TEXTS: [&str; 3] = [
    "A wonderful, moving film.",
    "Dull and far too long.<br /><br />I left early.",
    "It was fine.",
];

fn positive(c: &Classifier) -> Vec<f32> {
    c.predict(&TEXTS)
        .unwrap()
        .iter()
        .map(|p| p.probability("positive").unwrap())
        .collect()
}

fn open_dir(dir: &Path) -> Classifier {
    let folder = ModelFolder::in_dir(dir).unwrap();
    Classifier::open(&folder, &Device::flex(), None).unwrap().0
}

fn in_memory(dir: &Path, names: &[&str]) -> HashMap<String, Vec<u8>> {
    names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

fn error(files: &HashMap<String, Vec<u8>>) -> String {
    match Classifier::open(files, &Device::flex(), None) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_folder_and_the_same_files_in_memory_open_to_the_same_model() {
    let dir = Path::new(TINY).join("finetuned");
    let reference = positive(&open_dir(&dir));
    let files = in_memory(
        &dir,
        &["config.json", "tokenizer.json", "model.safetensors"],
    );
    let (from_memory, report) = Classifier::open(&files, &Device::flex(), None).unwrap();
    assert!(report.initialized.is_empty(), "{:?}", report.initialized);
    assert_eq!(positive(&from_memory), reference);
    // The same weights saved by PyTorch as pytorch_model.bin.
    let from_bin = positive(&open_dir(&Path::new(TINY).join("finetuned-bin")));
    for (a, b) in from_bin.iter().zip(&reference) {
        assert!((a - b).abs() < 1e-5, "{from_bin:?} vs {reference:?}");
    }
}

#[test]
fn the_trainers_burnpack_folder_opens_to_the_model_it_saved_with_its_settings() {
    let source = Path::new(TINY).join("finetuned");
    let saved = open_dir(&source);
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(source.join(f), dir.path().join(f)).unwrap();
    }
    saved
        .model
        .save_burnpack(&dir.path().join("model.bpk"))
        .unwrap();
    let mut settings = InferenceSettings {
        max_len: 32,
        truncation: Truncation::Head,
        calibration: Calibration::NONE,
    };
    std::fs::write(dir.path().join(InferenceSettings::FILE), settings.to_json()).unwrap();
    let opened = open_dir(dir.path());
    assert_eq!(opened.options.max_len, 32);
    assert_eq!(opened.options.truncation, Truncation::Head);
    assert_eq!(positive(&opened), positive(&saved));

    // A recorded temperature is the model's own: options given for the run replace
    // the tokenization, not it.
    settings.calibration = Calibration::temperature(2.0);
    std::fs::write(dir.path().join(InferenceSettings::FILE), settings.to_json()).unwrap();
    let folder = ModelFolder::in_dir(dir.path()).unwrap();
    let options = model_core::InferenceOptions {
        max_len: 32,
        truncation: Truncation::Head,
        batch_size: 4,
    };
    let (calibrated, _) = Classifier::open(&folder, &Device::flex(), Some(options)).unwrap();
    assert_eq!(calibrated.calibration, Calibration::temperature(2.0));
    for (hot, cool) in positive(&opened).iter().zip(positive(&calibrated)) {
        let logit = (hot / (1.0 - hot)).ln();
        let want = 1.0 / (1.0 + (-logit / 2.0).exp());
        assert!((cool - want).abs() < 1e-5, "{cool} vs {want}");
    }

    // A broken inference.json is an error naming it, not silently ignored.
    std::fs::write(
        dir.path().join(InferenceSettings::FILE),
        b"{\"max_len\": -1}",
    )
    .unwrap();
    let folder = ModelFolder::in_dir(dir.path()).unwrap();
    let err = Classifier::open(&folder, &Device::flex(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("inference.json"), "{err}");
}

#[test]
fn missing_or_unreadable_files_are_named() {
    let dir = Path::new(TINY).join("finetuned");
    let mut files = in_memory(
        &dir,
        &["config.json", "tokenizer.json", "model.safetensors"],
    );

    files.insert("config.json".into(), b"{ not json".to_vec());
    assert!(
        error(&files).starts_with("config.json"),
        "{}",
        error(&files)
    );

    files.remove("config.json");
    let err = error(&files);
    assert!(err.contains("missing config.json"), "{err}");

    let mut files = in_memory(&dir, &["config.json", "model.safetensors"]);
    let err = error(&files);
    assert!(
        err.contains("tokenizer.json") && err.contains("vocab.txt"),
        "{err}"
    );

    files.insert(
        "tokenizer.json".into(),
        std::fs::read(dir.join("tokenizer.json")).unwrap(),
    );
    let weights = files.remove("model.safetensors").unwrap();
    let err = error(&files);
    assert!(err.contains("model.safetensors"), "{err}");

    files.insert(
        "model.safetensors".into(),
        weights[..weights.len() / 2].to_vec(),
    );
    let err = error(&files);
    assert!(
        err.starts_with("model.safetensors") && err.contains("truncated"),
        "{err}"
    );

    // PyTorch pickles are read from disk only: in memory that is said, not guessed at.
    files.remove("model.safetensors");
    let bin = Path::new(TINY).join("finetuned-bin/pytorch_model.bin");
    files.insert("pytorch_model.bin".into(), std::fs::read(bin).unwrap());
    let err = error(&files);
    assert!(
        err.contains("pytorch_model.bin") && err.contains("safetensors"),
        "{err}"
    );

    // On disk, errors carry the folder's path.
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), empty.path().join("config.json")).unwrap();
    let err = ModelFolder::in_dir(empty.path()).unwrap_err().to_string();
    assert!(
        err.contains(&empty.path().display().to_string()) && err.contains("model.safetensors"),
        "{err}"
    );
}
