//! What the fine-tune modules' tests share: the tiny checkpoint and reviews of
//! `model-core/tests/fixtures/tiny/`, `fine-tune` flags parsed as the command line
//! parses them, and the model's weights as plain numbers.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use clap::Parser;
use model_core::model::BertForSequenceClassification;
use tempfile::TempDir;

use super::settings::FineTuneArgs;

/// A file or folder of the tiny fixtures.
pub fn tiny(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model-core/tests/fixtures/tiny"
    ))
    .join(name)
}

/// Hold this while a test draws random numbers. burn's CPU backend has one
/// generator per process, which training reseeds (head initialisation, dropout): a
/// test running in parallel would draw from it in between and change the results.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A copy of the tiny backbone with dropout off, for tests that compare steps on
/// different batch layouts (dropout masks depend on the layout).
pub fn backbone_without_dropout() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny("backbone")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&path, config.to_string()).unwrap();
    dir
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: FineTuneArgs,
}

/// `fine-tune` flags, parsed (defaults and conflicts included) as `trainer` does.
pub fn fine_tune_args(flags: &[&str]) -> FineTuneArgs {
    Cli::try_parse_from(std::iter::once("fine-tune").chain(flags.iter().copied()))
        .unwrap_or_else(|e| panic!("{flags:?}: {e}"))
        .args
}

/// A 2-epoch run on the 20 tiny reviews in `out`: 16 for training (batch 4, so 4
/// steps an epoch, 8 in all), 4 for validation, a checkpoint every 3 steps.
/// `changes` replace those flags' values or add flags.
pub fn tiny_run(out: &Path, changes: &[(&str, &str)]) -> FineTuneArgs {
    let (model, data) = (tiny("backbone"), tiny("reviews.jsonl"));
    let mut flags: Vec<(&str, &str)> = vec![
        ("--model", model.to_str().unwrap()),
        ("--data", data.to_str().unwrap()),
        ("--out", out.to_str().unwrap()),
        ("--backend", "flex"),
        ("--max-len", "64"),
        ("--batch-size", "4"),
        ("--epochs", "2"),
        ("--lr", "1e-3"),
        ("--valid-fraction", "0.2"),
        ("--checkpoint-every", "3"),
        ("--seed", "7"),
    ];
    for &(flag, value) in changes {
        match flags.iter_mut().find(|(f, _)| *f == flag) {
            Some(entry) => entry.1 = value,
            None => flags.push((flag, value)),
        }
    }
    let flat: Vec<&str> = flags.iter().flat_map(|&(f, v)| [f, v]).collect();
    fine_tune_args(&flat)
}

/// `--resume dir` with the CPU backend.
pub fn resume_args(dir: &Path) -> FineTuneArgs {
    fine_tune_args(&["--resume", dir.to_str().unwrap(), "--backend", "flex"])
}

/// Every float parameter of `model`, in visiting order.
pub fn weights(model: &BertForSequenceClassification) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            self.0.extend(data.try_to_vec::<f32>().unwrap());
        }
    }
    let mut all = Collect(Vec::new());
    model.visit(&mut all);
    all.0
}

/// Largest absolute difference of two equally long lists.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "different models");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The checkpoint folder names of a run (`step-NNNNNNNN`), sorted.
pub fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

/// What `latest.json` points at.
pub fn latest_name(run: &Path) -> String {
    let text = std::fs::read_to_string(run.join("latest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["checkpoint"].as_str().unwrap().to_string()
}
