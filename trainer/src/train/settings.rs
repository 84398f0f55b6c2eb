//! The training recipe. One type is both the `fine-tune` flags (clap) and what the run
//! folder's `run.json` records (serde), so a resumed run reads back exactly the
//! settings that started it and no copy between the two can drift.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use model_core::Truncation;
use model_core::backend::BackendKind;
use serde::{Deserialize, Serialize};

use crate::data::Columns;

/// The backbone fine-tuned when `--model` is not given.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The recipe's defaults (also what `bench --what train-step` uses), shared with the
/// page's fine-tuning.
pub use model_core::training::recipe::{
    DEFAULT_CLIP, DEFAULT_LR, DEFAULT_SEED, DEFAULT_WARMUP, DEFAULT_WEIGHT_DECAY,
};

/// Arguments of `trainer fine-tune`: where the run lives and runs, plus the recipe.
#[derive(Debug, Clone, Args)]
pub struct FineTuneArgs {
    /// Training data: the IMDb archive or folder, a .jsonl or a .csv. Default: the IMDb
    /// archive from $IMDB_ARCHIVE or the user cache.
    #[arg(long, conflicts_with = "resume")]
    pub data: Option<PathBuf>,
    /// Run folder for checkpoints, metrics and the report.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint, with the settings
    /// recorded in its run.json (only --backend may be given again).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// auto, flex, wgpu, cuda or ndarray (the last two built with their Cargo features).
    #[arg(long, default_value = "auto")]
    pub backend: BackendKind,
    /// Data parallelism: split each batch over this many devices of the backend (GPUs 0..N-1
    /// for wgpu and cuda), each running forward and backward on its share, the gradients
    /// summed on the first. With flex or ndarray the shards share one CPU (no speed-up; a
    /// check of the data-parallel path). May be given again with --resume.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub devices: usize,
    #[command(flatten)]
    pub settings: Settings,
    /// Stop after this many optimizer steps (for tests and quick experiments).
    #[arg(long, hide = true)]
    pub max_steps: Option<usize>,
}

/// Everything that decides what a fine-tune computes, except the training data's
/// path (which [`RunConfig`] holds once resolved).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct Settings {
    /// Pretrained model folder or hub id.
    #[arg(long, conflicts_with = "resume", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Separate validation data (default: a seeded split of --data).
    #[arg(long, conflicts_with = "resume")]
    pub valid_data: Option<PathBuf>,
    /// Test data evaluated after training (default: the archive's test split when --data is IMDb).
    #[arg(long, conflicts_with = "resume")]
    pub test_data: Option<PathBuf>,
    /// Tokens per review, special tokens included.
    #[arg(long, conflicts_with = "resume", default_value_t = 256)]
    pub max_len: usize,
    /// head or head+tail.
    #[arg(long, conflicts_with = "resume", default_value = "head+tail")]
    pub truncation: Truncation,
    /// Reviews per batch.
    #[arg(long, conflicts_with = "resume", default_value_t = 16)]
    pub batch_size: usize,
    /// Batches per optimizer step.
    #[arg(long, conflicts_with = "resume", default_value_t = 1)]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, conflicts_with = "resume", default_value_t = DEFAULT_LR)]
    pub lr: f64,
    /// Fraction of steps of linear warmup.
    #[arg(long, conflicts_with = "resume", default_value_t = DEFAULT_WARMUP)]
    pub warmup: f64,
    /// AdamW weight decay (not applied to biases and LayerNorm).
    #[arg(long, conflicts_with = "resume", default_value_t = DEFAULT_WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Global gradient-norm clipping (0 disables).
    #[arg(long, conflicts_with = "resume", default_value_t = DEFAULT_CLIP)]
    pub clip: f64,
    /// Passes over the training data.
    #[arg(long, conflicts_with = "resume", default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the split, data order, head initialisation and dropout.
    #[arg(long, conflicts_with = "resume", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Validation fraction split off the training data.
    #[arg(long, conflicts_with_all = ["resume", "valid_data"], default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Use only the first N training examples (after the split).
    #[arg(long, conflicts_with = "resume")]
    pub train_limit: Option<usize>,
    /// Use only the first N validation and test examples.
    #[arg(long, conflicts_with = "resume")]
    pub eval_limit: Option<usize>,
    /// Checkpoint every N optimizer steps (and at each epoch end).
    #[arg(long, conflicts_with = "resume", default_value_t = 200)]
    pub checkpoint_every: usize,
    /// Text column of CSV data.
    #[arg(long, conflicts_with = "resume")]
    pub text_column: Option<String>,
    /// Label column of CSV data.
    #[arg(long, conflicts_with = "resume")]
    pub label_column: Option<String>,
}

impl Settings {
    /// Refuse settings clap cannot check, before anything is loaded or written.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if self.grad_accum == 0 {
            bail!("--grad-accum must be at least 1");
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.warmup) {
            bail!("--warmup is a fraction of the steps, in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.valid_fraction)
            || (self.valid_fraction == 0.0 && self.valid_data.is_none())
        {
            bail!("--valid-fraction must be in (0, 1) unless --valid-data is given");
        }
        if self.checkpoint_every == 0 {
            bail!("--checkpoint-every must be at least 1");
        }
        Ok(())
    }

    /// The CSV columns to read.
    pub fn columns(&self) -> Columns {
        Columns {
            text: self.text_column.clone(),
            label: self.label_column.clone(),
            id: None,
        }
    }
}

/// What a run was started with: `run.json`. `--resume` reads it back so nothing can
/// drift. The settings are flattened, so the file keeps one flat object whose field
/// names are the flags' (runs written before this type existed read back unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The command line that started the run, for the report and the web manifest.
    #[serde(default)]
    pub command: Vec<String>,
    /// The training data, resolved: `--data`, or the IMDb archive found at the start.
    pub data: PathBuf,
    /// The recipe.
    #[serde(flatten)]
    pub settings: Settings,
}

/// `--max-len` against the model it will run on (clap cannot know the model): the one
/// check `fine-tune` and `bench` share.
pub fn check_max_len(max_len: usize, config: &model_core::BertConfig) -> Result<()> {
    if max_len > config.max_position_embeddings {
        bail!(
            "--max-len {max_len} is above the model's max_position_embeddings {}",
            config.max_position_embeddings
        );
    }
    Ok(())
}

/// The IMDb archive: `$IMDB_ARCHIVE`, else the user cache, else a download.
pub fn default_imdb() -> Result<PathBuf> {
    crate::imdb::locate_or_download()
}

impl RunConfig {
    /// The configuration of a new run, from its flags.
    pub fn start(args: &FineTuneArgs) -> Result<Self> {
        args.settings.validate()?;
        let data = match &args.data {
            Some(p) => p.clone(),
            None => default_imdb()?,
        };
        Ok(Self {
            command: std::env::args().collect(),
            data,
            settings: args.settings.clone(),
        })
    }

    /// Read `run_dir/run.json`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("run.json");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("{}: not a run folder (no run.json)", run_dir.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run configuration", path.display()))
    }

    /// Whether the training data is the IMDb archive or folder (which has a test split).
    pub fn is_imdb(&self) -> bool {
        let name = self.data.to_string_lossy().to_ascii_lowercase();
        self.data.is_dir() || name.ends_with(".tar.gz") || name.ends_with(".tgz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run.json` as the trainer wrote it before the recipe had its own type.
    const OLD_RUN_JSON: &str = r#"{
  "command": ["trainer", "fine-tune", "--out", "runs/full", "--backend", "wgpu"],
  "model": "sentence-transformers/all-MiniLM-L6-v2",
  "data": "/data/aclImdb_v1.tar.gz",
  "valid_data": null,
  "test_data": null,
  "max_len": 256,
  "truncation": "head+tail",
  "batch_size": 16,
  "grad_accum": 1,
  "lr": 0.00005,
  "warmup": 0.1,
  "weight_decay": 0.01,
  "clip": 1.0,
  "epochs": 3,
  "seed": 42,
  "valid_fraction": 0.1,
  "train_limit": null,
  "eval_limit": null,
  "checkpoint_every": 200,
  "text_column": null,
  "label_column": null
}"#;

    #[test]
    fn an_existing_run_json_reads_back_and_is_written_with_the_same_fields() {
        let cfg: RunConfig = serde_json::from_str(OLD_RUN_JSON).unwrap();
        assert_eq!(cfg.data, PathBuf::from("/data/aclImdb_v1.tar.gz"));
        assert_eq!(cfg.settings.model, DEFAULT_MODEL);
        assert_eq!(cfg.settings.lr, 5e-5);
        assert_eq!(cfg.settings.truncation, Truncation::HeadTail);
        assert_eq!(cfg.settings.checkpoint_every, 200);
        assert_eq!(cfg.settings.valid_data, None);
        assert!(cfg.is_imdb());
        // Same keys and values as the file it came from (serde_json objects compare
        // regardless of key order).
        let old: serde_json::Value = serde_json::from_str(OLD_RUN_JSON).unwrap();
        assert_eq!(serde_json::to_value(&cfg).unwrap(), old);
    }

    #[test]
    fn a_run_json_without_the_command_still_reads() {
        let mut old: serde_json::Value = serde_json::from_str(OLD_RUN_JSON).unwrap();
        old.as_object_mut().unwrap().remove("command");
        let cfg: RunConfig = serde_json::from_value(old).unwrap();
        assert!(cfg.command.is_empty());
    }

    #[test]
    fn validation_refuses_what_clap_cannot_check() {
        let cfg: RunConfig = serde_json::from_str(OLD_RUN_JSON).unwrap();
        assert!(cfg.settings.validate().is_ok());
        let refused = |edit: fn(&mut Settings), flag: &str| {
            let mut s = cfg.settings.clone();
            edit(&mut s);
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        };
        refused(|s| s.batch_size = 0, "--batch-size");
        refused(|s| s.grad_accum = 0, "--grad-accum");
        refused(|s| s.epochs = 0, "--epochs");
        refused(|s| s.lr = f64::NAN, "--lr");
        refused(|s| s.warmup = 1.0, "--warmup");
        refused(|s| s.valid_fraction = 0.0, "--valid-fraction");
        refused(|s| s.checkpoint_every = 0, "--checkpoint-every");
    }
}
