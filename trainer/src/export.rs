//! `trainer export`: a run's best model as a web bundle (what the page loads) or as
//! a Hugging Face folder that `transformers` loads unchanged.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use model_core::InferenceOptions;
use model_core::backend::{BackendKind, select_device};
use model_core::export::{WeightDtype, hf_state_dict, to_safetensors};
use model_core::loader::load_classifier;
use model_core::package::{BundleNotes, config_json, tokenizer_json, web_bundle};
use model_core::settings::InferenceSettings;

use crate::checkpoint::write_atomic;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// burnpack weights + tokenizer.json + config.json + manifest.json, for the page.
    Web,
    /// model.safetensors with Hugging Face names + config.json + tokenizer files.
    Hf,
}

/// Arguments of `trainer export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder (its `best/` model is exported) or any model folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder (created; must not exist as a file).
    #[arg(long)]
    pub out: PathBuf,
    /// web or hf.
    #[arg(long, value_enum, default_value = "web")]
    pub format: Format,
    /// Weight storage: f32 (web: burn's burnpack), f16, or int8 with per-row
    /// scales (both as safetensors with Hugging Face names, decoded to f32 at load;
    /// the page's CPU engine then computes an int8 export's projections in int8).
    /// `hf` exports are always f32, which is what `transformers` expects.
    #[arg(long, default_value = "f32")]
    pub dtype: WeightDtype,
    /// Metrics to record in the web manifest instead of the run's test metrics:
    /// the JSON that `trainer evaluate` prints (e.g. of this very export).
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// A note for the web manifest (what the metrics were measured on, caveats).
    #[arg(long)]
    pub note: Option<String>,
}

fn model_dir(run: &Path) -> Result<PathBuf> {
    for candidate in [run.join("best"), run.join("final"), run.to_path_buf()] {
        if candidate.join("config.json").is_file() && candidate.join("model.bpk").is_file()
            || candidate.join("model.safetensors").is_file()
        {
            return Ok(candidate);
        }
    }
    bail!(
        "{}: no model found (expected a run folder with best/ or a model folder)",
        run.display()
    )
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.format == Format::Hf && args.dtype != WeightDtype::F32 {
        bail!(
            "--dtype {}: `hf` exports are f32 (transformers loads them unchanged); use --format web for f16/int8",
            args.dtype
        );
    }
    if args.out.exists() && !args.out.is_dir() {
        bail!("--out {}: exists and is not a folder", args.out.display());
    }
    let dir = model_dir(&args.run)?;
    let recorded = InferenceSettings::read_dir(&dir)?;
    let options = recorded.map_or_else(InferenceOptions::default, |s| s.options(32));
    let device = select_device(BackendKind::Flex)?.device;
    let loaded = load_classifier(&dir.to_string_lossy(), &device, options)?;
    let c = &loaded.classifier;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create", args.out.display()))?;
    match args.format {
        Format::Hf => {
            write_atomic(&args.out.join("config.json"), &config_json(c)?)?;
            write_atomic(&args.out.join("tokenizer.json"), &tokenizer_json(c)?)?;
            let st = to_safetensors(&hf_state_dict(&c.model)?)?;
            write_atomic(&args.out.join("model.safetensors"), &st)?;
            let tok_config = serde_json::json!({
                "tokenizer_class": "BertTokenizer", "do_lower_case": true,
                "model_max_length": c.config.max_position_embeddings,
                "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"
            });
            write_atomic(
                &args.out.join("tokenizer_config.json"),
                &serde_json::to_vec_pretty(&tok_config)?,
            )?;
        }
        Format::Web => {
            let results: serde_json::Value = fs::read_to_string(args.run.join("results.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            let run_config: serde_json::Value = fs::read_to_string(args.run.join("run.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            let metrics = match &args.metrics {
                Some(path) => {
                    let text = fs::read_to_string(path)
                        .with_context(|| format!("--metrics {}", path.display()))?;
                    serde_json::from_str(&text).with_context(|| {
                        format!(
                            "--metrics {}: not the JSON `trainer evaluate` prints",
                            path.display()
                        )
                    })?
                }
                None => results
                    .get("test")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
            };
            let notes = BundleNotes {
                metrics,
                training: run_config,
                note: args.note.clone(),
            };
            let files = web_bundle(c, args.dtype, notes)?;
            // A folder exported before with another dtype must not keep both.
            for stale in ["model.bpk", "model.safetensors"] {
                if !files.iter().any(|(name, _)| name == stale) {
                    let _ = fs::remove_file(args.out.join(stale));
                }
            }
            // The manifest last: a folder cut short holds no manifest naming files it lacks.
            for (name, bytes) in &files {
                write_atomic(&args.out.join(name), bytes)?;
            }
        }
    }
    write_atomic(
        &args.out.join(InferenceSettings::FILE),
        &InferenceSettings::of(&options, c.calibration).to_json(),
    )?;
    eprintln!("exported {} to {}", dir.display(), args.out.display());
    Ok(())
}
