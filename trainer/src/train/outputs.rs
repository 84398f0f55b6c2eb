//! What a run writes into its folder besides checkpoints: the metrics log and
//! complete model folders (`best/`, `final/`).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use model_core::model::BertForSequenceClassification;
use model_core::settings::InferenceSettings;
use model_core::{BertConfig, BertTokenizer};

use super::settings::Settings;
use crate::checkpoint::{self, write_atomic};

/// Append one JSON line to `metrics.jsonl`.
pub fn log_metrics(run_dir: &Path, value: serde_json::Value) -> Result<()> {
    let path = run_dir.join("metrics.jsonl");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(f, "{value}").with_context(|| format!("{}: cannot append", path.display()))?;
    Ok(())
}

/// Write `run_dir/name/` as a complete model folder (burnpack weights, config,
/// tokenizer, inference settings), replacing any previous one atomically.
pub fn save_model_folder(
    run_dir: &Path,
    name: &str,
    model: &BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
    settings: &Settings,
) -> Result<()> {
    let tmp = run_dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    model.save_burnpack(&tmp.join("model.bpk"))?;
    write_atomic(
        &tmp.join("config.json"),
        &serde_json::to_vec_pretty(config)?,
    )?;
    tokenizer
        .inner()
        .save(tmp.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("cannot save tokenizer.json: {e}"))?;
    // Uncalibrated: the run's end fits `best/`'s calibration on the validation data.
    let inference = InferenceSettings {
        max_len: settings.max_len,
        truncation: settings.truncation,
        calibration: model_core::calibration::Calibration::NONE,
    };
    write_atomic(&tmp.join(InferenceSettings::FILE), &inference.to_json())?;
    checkpoint::replace_dir(&tmp, &run_dir.join(name))
}
