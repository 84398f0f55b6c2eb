//! `trainer fine-tune`: the Hugging Face recipe (BERT + linear head on `[CLS]`,
//! cross-entropy, AdamW with linear warmup/decay, gradient clipping) as a resumable
//! job with checkpoints, validation each epoch and a metrics log.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::ParamGroup;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use model_core::backend::{BackendKind, select_devices};
use model_core::hub::resolve_model;
use model_core::loader::ModelFiles;
use model_core::model::BertForSequenceClassification;
use model_core::tokenizer::{Batch, Encoded};
use model_core::{BertConfig, BertTokenizer, Classifier, InferenceOptions, Truncation};
use serde::{Deserialize, Serialize};

use crate::batching::plan_epoch;
use crate::checkpoint::{self, TrainState, write_atomic};
use crate::data::{self, Columns, LabeledData, Split};
use crate::metrics::Summary;

/// The backbone fine-tuned when `--model` is not given.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Arguments of `trainer fine-tune`.
#[derive(Debug, Clone, Args)]
pub struct FineTuneArgs {
    /// Pretrained model folder or hub id.
    #[arg(long, conflicts_with = "resume", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Training data: the IMDb archive or folder, a .jsonl or a .csv. Default: the IMDb
    /// archive from $IMDB_ARCHIVE or the user cache.
    #[arg(long, conflicts_with = "resume")]
    pub data: Option<PathBuf>,
    /// Separate validation data (default: a seeded split of --data).
    #[arg(long, conflicts_with = "resume")]
    pub valid_data: Option<PathBuf>,
    /// Test data evaluated after training (default: the archive's test split when --data is IMDb).
    #[arg(long, conflicts_with = "resume")]
    pub test_data: Option<PathBuf>,
    /// Run folder for checkpoints, metrics and the report.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint, with the settings
    /// recorded in its run.json (only --backend may be given again).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// auto, flex, ndarray, wgpu, or cuda (built with the `cuda` feature).
    #[arg(long, default_value = "auto")]
    pub backend: BackendKind,
    /// Data parallelism: split each batch over this many devices of the backend (GPUs 0..N-1
    /// for wgpu and cuda), each running forward and backward on its share, the gradients
    /// summed on the first. With flex or ndarray the shards share one CPU (no speed-up; a
    /// check of the data-parallel path). May be given again with --resume.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub devices: usize,
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
    #[arg(long, conflicts_with = "resume", default_value_t = 5e-5)]
    pub lr: f64,
    /// Fraction of steps of linear warmup.
    #[arg(long, conflicts_with = "resume", default_value_t = 0.1)]
    pub warmup: f64,
    /// AdamW weight decay (not applied to biases and LayerNorm).
    #[arg(long, conflicts_with = "resume", default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Global gradient-norm clipping (0 disables).
    #[arg(long, conflicts_with = "resume", default_value_t = 1.0)]
    pub clip: f64,
    /// Passes over the training data.
    #[arg(long, conflicts_with = "resume", default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the split, data order, head initialisation and dropout.
    #[arg(long, conflicts_with = "resume", default_value_t = 42)]
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
    /// Stop after this many optimizer steps (for tests and quick experiments).
    #[arg(long, hide = true)]
    pub max_steps: Option<usize>,
}

/// What a run was started with; `--resume` reads it back so nothing can drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The command line that started the run, for the report and the web manifest.
    #[serde(default)]
    pub command: Vec<String>,
    pub model: String,
    pub data: PathBuf,
    pub valid_data: Option<PathBuf>,
    pub test_data: Option<PathBuf>,
    pub max_len: usize,
    pub truncation: Truncation,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup: f64,
    pub weight_decay: f64,
    pub clip: f64,
    pub epochs: usize,
    pub seed: u64,
    pub valid_fraction: f64,
    pub train_limit: Option<usize>,
    pub eval_limit: Option<usize>,
    pub checkpoint_every: usize,
    pub text_column: Option<String>,
    pub label_column: Option<String>,
}

/// The IMDb archive: `$IMDB_ARCHIVE`, else the user cache, else a download.
pub fn default_imdb() -> Result<PathBuf> {
    crate::imdb::locate_or_download()
}

fn validate(a: &FineTuneArgs) -> Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if a.grad_accum == 0 {
        bail!("--grad-accum must be at least 1");
    }
    if a.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    if !(0.0..1.0).contains(&a.warmup) {
        bail!("--warmup is a fraction of the steps, in [0, 1)");
    }
    if !(0.0..1.0).contains(&a.valid_fraction)
        || (a.valid_fraction == 0.0 && a.valid_data.is_none())
    {
        bail!("--valid-fraction must be in (0, 1) unless --valid-data is given");
    }
    if a.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1");
    }
    Ok(())
}

impl RunConfig {
    fn from_args(a: &FineTuneArgs) -> Result<Self> {
        validate(a)?;
        let data = match &a.data {
            Some(p) => p.clone(),
            None => default_imdb()?,
        };
        Ok(Self {
            command: std::env::args().collect(),
            model: a.model.clone(),
            data,
            valid_data: a.valid_data.clone(),
            test_data: a.test_data.clone(),
            max_len: a.max_len,
            truncation: a.truncation,
            batch_size: a.batch_size,
            grad_accum: a.grad_accum,
            lr: a.lr,
            warmup: a.warmup,
            weight_decay: a.weight_decay,
            clip: a.clip,
            epochs: a.epochs,
            seed: a.seed,
            valid_fraction: a.valid_fraction,
            train_limit: a.train_limit,
            eval_limit: a.eval_limit,
            checkpoint_every: a.checkpoint_every,
            text_column: a.text_column.clone(),
            label_column: a.label_column.clone(),
        })
    }

    fn columns(&self) -> Columns {
        Columns {
            text: self.text_column.clone(),
            label: self.label_column.clone(),
        }
    }

    fn is_imdb(&self) -> bool {
        let name = self.data.to_string_lossy().to_ascii_lowercase();
        self.data.is_dir() || name.ends_with(".tar.gz") || name.ends_with(".tgz")
    }
}

/// Linear warmup to `lr`, then linear decay to zero (the `transformers` default).
pub fn learning_rate(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        lr * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// Scale gradients so their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (burn's own clipping is per tensor).
/// Returns the norm before clipping.
pub fn clip_global_norm(
    model: &BertForSequenceClassification,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f32 {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let id: ParamId = param.id;
            if let Some(g) = self.grads.remove::<D>(id) {
                self.grads.register::<D>(id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else { return 0.0 };
    let norm = total.into_scalar::<f32>().sqrt();
    if max_norm > 0.0 && (norm as f64) > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (norm as f64 + 1e-6),
        };
        model.visit(&mut scale);
    }
    norm
}

/// Everything a run needs once set up.
struct Setup {
    run_dir: PathBuf,
    cfg: RunConfig,
    train: LabeledData,
    valid: LabeledData,
    test: Option<LabeledData>,
    config: BertConfig,
    tokenizer: BertTokenizer,
    base_device: Device,
    /// The devices of shards 1.. when training data-parallel (`--devices`); empty otherwise.
    extra_devices: Vec<Device>,
    backend_description: String,
}

fn limit(mut d: LabeledData, n: Option<usize>) -> LabeledData {
    if let Some(n) = n {
        d.examples.truncate(n);
    }
    d
}

fn prepare(args: &FineTuneArgs) -> Result<(Setup, Option<(PathBuf, TrainState)>)> {
    let (run_dir, cfg, resume) = match &args.resume {
        Some(dir) => {
            let path = dir.join("run.json");
            let cfg: RunConfig =
                serde_json::from_str(&fs::read_to_string(&path).with_context(|| {
                    format!("{}: not a run folder (no run.json)", dir.display())
                })?)
                .with_context(|| format!("{}: not a run configuration", path.display()))?;
            let latest = checkpoint::latest(dir)?;
            for folder in ["best", "final"] {
                checkpoint::recover_dir(&dir.join(folder))?;
            }
            (dir.clone(), cfg, latest)
        }
        None => {
            let out = args
                .out
                .clone()
                .expect("clap requires --out without --resume");
            if out.exists() && !out.is_dir() {
                bail!("--out {}: exists and is not a folder", out.display());
            }
            if out.join("run.json").exists() {
                bail!(
                    "--out {}: already holds a run; continue it with `--resume {}` or choose another folder",
                    out.display(),
                    out.display()
                );
            }
            (out, RunConfig::from_args(args)?, None)
        }
    };

    eprintln!("loading data from {}", cfg.data.display());
    let all = data::load(&cfg.data, Split::Train, &cfg.columns())?;
    let (train, valid) = match &cfg.valid_data {
        Some(p) => {
            let v = data::load(p, Split::Train, &cfg.columns())?;
            (all.clone(), data::align_labels(v, &all.labels, p)?)
        }
        None => data::split_validation(all, cfg.valid_fraction, cfg.seed),
    };
    let train = limit(train, cfg.train_limit);
    let valid = limit(valid, cfg.eval_limit);
    let classes: std::collections::BTreeSet<usize> =
        train.examples.iter().map(|e| e.label).collect();
    if classes.len() < 2 {
        bail!(
            "{}: the training data has a single class ({}); a classifier needs at least two",
            cfg.data.display(),
            train.labels[*classes.iter().next().unwrap_or(&0)]
        );
    }
    let test = match (&cfg.test_data, cfg.is_imdb()) {
        (Some(p), _) => Some(data::align_labels(
            data::load(p, Split::Test, &cfg.columns())?,
            &train.labels,
            p,
        )?),
        (None, true) => Some(data::load(&cfg.data, Split::Test, &cfg.columns())?),
        (None, false) => None,
    }
    .map(|t| limit(t, cfg.eval_limit));

    let dir = resolve_model(&cfg.model)?;
    let files = ModelFiles::in_dir(&dir)?;
    let mut config = BertConfig::from_file(&files.config)?;
    let tokenizer = files.tokenizer()?;
    if cfg.max_len > config.max_position_embeddings {
        bail!(
            "--max-len {} is above the model's max_position_embeddings {}",
            cfg.max_len,
            config.max_position_embeddings
        );
    }
    config.set_labels(&train.labels);
    let mut selected = select_devices(args.backend, args.devices)?.into_iter();
    let first = selected
        .next()
        .expect("select_devices returns at least one device");
    let extra: Vec<_> = selected.collect();
    let backend_description = if extra.is_empty() {
        first.description.clone()
    } else {
        format!(
            "{} devices, data-parallel: {}",
            extra.len() + 1,
            std::iter::once(&first)
                .chain(&extra)
                .map(|d| d.description.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    if resume.is_none() {
        // Only now that data, model and device are known to be usable: a failed start
        // leaves nothing behind.
        fs::create_dir_all(&run_dir)
            .with_context(|| format!("--out {}: cannot create", run_dir.display()))?;
        write_atomic(&run_dir.join("run.json"), &serde_json::to_vec_pretty(&cfg)?)?;
    }
    // Files a finished run folder holds next to its checkpoints, so `best/` and the
    // exports are complete model folders.
    write_atomic(
        &run_dir.join("config.json"),
        &serde_json::to_vec_pretty(&config)?,
    )?;
    tokenizer
        .inner()
        .save(run_dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("cannot save tokenizer.json: {e}"))?;
    Ok((
        Setup {
            run_dir,
            cfg,
            train,
            valid,
            test,
            config,
            tokenizer,
            base_device: first.device,
            extra_devices: extra.into_iter().map(|d| d.device).collect(),
            backend_description,
        },
        resume,
    ))
}

fn optimizer(cfg: &RunConfig) -> Result<ModuleOptimizer> {
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay as f32)
            .build()
    };
    let no_decay = ParamGroup::from_regex(r"(\.bias|layer_norm\.(gamma|beta))$")
        .map_err(|e| anyhow::anyhow!("parameter group: {e:?}"))?;
    Ok(ModuleOptimizer::from(adamw(cfg.weight_decay)).with_group(no_decay, adamw(0.0), None))
}

/// Append one JSON line to `metrics.jsonl`.
fn log_metrics(run_dir: &Path, value: serde_json::Value) -> Result<()> {
    let path = run_dir.join("metrics.jsonl");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(f, "{value}").with_context(|| format!("{}: cannot append", path.display()))?;
    Ok(())
}

/// Evaluate `model` (a validation snapshot) on `data`.
pub fn evaluate_model(
    model: BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
    device: &Device,
    data: &LabeledData,
    max_len: usize,
    truncation: Truncation,
) -> Result<Summary> {
    let options = InferenceOptions {
        max_len,
        truncation,
        batch_size: 64,
    };
    let classifier = Classifier::new(
        model,
        config.clone(),
        tokenizer.clone(),
        device.clone(),
        options,
    )?;
    crate::evaluate::evaluate_classifier(&classifier, data, None)
}

/// Where the last checkpoint with finite weights is, for the message that stops a
/// diverged run.
fn last_good(run_dir: &Path, kept: Option<String>) -> String {
    match kept {
        Some(name) => format!(
            "The last good checkpoint is {} (its weights are finite).",
            run_dir.join("checkpoints").join(name).display()
        ),
        None => "No checkpoint with finite weights had been written yet.".to_string(),
    }
}

/// Run `trainer fine-tune`.
pub fn run(args: FineTuneArgs, interrupted: Arc<AtomicBool>) -> Result<()> {
    let (s, resume) = prepare(&args)?;
    let cfg = &s.cfg;
    let device = s.base_device.clone().autodiff();
    // Shard `d` of every batch runs on devices[d]; one device is the plain single-device run.
    let devices: Vec<Device> = std::iter::once(device.clone())
        .chain(s.extra_devices.iter().map(|d| d.clone().autodiff()))
        .collect();
    let num_labels = s.train.labels.len();

    let (mut model, mut optim, mut state) = match &resume {
        Some((dir, state)) => {
            eprintln!("resuming from {} (step {})", dir.display(), state.step);
            let mut store =
                burn::store::BurnpackStore::from_file(dir.join("model.bpk")).auto_extension(false);
            let (model, _) = BertForSequenceClassification::load_burnpack(
                &s.config,
                num_labels,
                &mut store,
                &dir.join("model.bpk").display().to_string(),
                &device,
            )?;
            let optim = optimizer(cfg)?
                .load(dir.join("optimizer.bpk"))
                .map_err(|e| anyhow::anyhow!("{}: {e:?}", dir.join("optimizer.bpk").display()))?;
            (model, optim, state.clone())
        }
        None => {
            device.seed(cfg.seed);
            let files = ModelFiles::in_dir(&resolve_model(&cfg.model)?)?;
            let mut ckpt = files.checkpoint()?;
            let (model, report) =
                BertForSequenceClassification::load(&s.config, num_labels, &mut ckpt, &device)?;
            if !report.initialized.is_empty() {
                eprintln!("new classification head: {}", report.initialized.join(", "));
            }
            (model, optimizer(cfg)?, TrainState::default())
        }
    };
    if resume.is_some() && state.epoch >= cfg.epochs {
        eprintln!("{}: training already finished", s.run_dir.display());
    }

    eprintln!(
        "tokenizing {} training and {} validation reviews",
        s.train.examples.len(),
        s.valid.examples.len()
    );
    let texts: Vec<&str> = s.train.examples.iter().map(|e| e.text.as_str()).collect();
    let encoded: Vec<Encoded> = s
        .tokenizer
        .encode_batch(&texts, cfg.max_len, cfg.truncation)?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let batches_per_epoch = lengths.len().div_ceil(cfg.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(cfg.grad_accum);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup_steps = (cfg.warmup * total_steps as f64).round() as usize;
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    eprintln!(
        "backend {} | {} epochs x {} steps (batch {} x accum {}) | lr {} warmup {} steps",
        s.backend_description,
        cfg.epochs,
        steps_per_epoch,
        cfg.batch_size,
        cfg.grad_accum,
        cfg.lr,
        warmup_steps
    );
    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} steps ({eta} left) {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_position(state.step as u64);

    let started = Instant::now();
    let elapsed_before = state.elapsed_s;
    let mut window_loss = 0.0f64;
    let mut window_n = 0usize;
    let mut window_start = Instant::now();
    let mut window_samples = 0usize;
    let stop_at = args.max_steps.unwrap_or(usize::MAX);

    while state.epoch < cfg.epochs {
        let plan = plan_epoch(&lengths, cfg.batch_size, cfg.seed, state.epoch);
        while state.batch_in_epoch < plan.len() {
            if state.step >= stop_at {
                bar.finish_and_clear();
                state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
                checkpoint::save(&s.run_dir, &model, &optim, &state)?;
                eprintln!("stopped after {} steps (--max-steps)", state.step);
                return Ok(());
            }
            // One optimizer step: `grad_accum` batches.
            let group_end = (state.batch_in_epoch + cfg.grad_accum).min(plan.len());
            let mut accumulator = GradientsAccumulator::<BertForSequenceClassification>::new();
            let mut step_loss = 0.0f64;
            let mut step_samples = 0usize;
            let group_len = (group_end - state.batch_in_epoch) as f64;
            for (k, idx) in plan[state.batch_in_epoch..group_end].iter().enumerate() {
                // Reseeding per batch makes dropout a function of the position in the
                // run, so a resumed run draws the same masks as an uninterrupted one.
                let seed = cfg.seed
                    ^ ((state.step as u64) << 8 | k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
                // Data parallelism: one contiguous shard of the batch per device, each with
                // a replica of the model; a shard's loss is weighted by its share of the
                // batch, so the summed gradients are the whole batch's mean-loss gradient.
                // With one device this is the whole batch on `model` itself.
                let per_shard = idx.len().div_ceil(devices.len());
                let mut losses = Vec::with_capacity(devices.len());
                for (d, (shard, shard_device)) in idx.chunks(per_shard).zip(&devices).enumerate() {
                    shard_device.seed(seed ^ (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let replica = if d == 0 {
                        model.clone()
                    } else {
                        model.clone().fork(shard_device)
                    };
                    let rows: Vec<&Encoded> = shard.iter().map(|&i| &encoded[i]).collect();
                    let batch = Batch::collate(&rows, s.tokenizer.pad_id());
                    let targets: Vec<i64> = shard
                        .iter()
                        .map(|&i| s.train.examples[i].label as i64)
                        .collect();
                    let targets = Tensor::<1, Int>::from_data(
                        TensorData::new(targets, [shard.len()]),
                        shard_device,
                    );
                    let logits = replica.forward(&batch.to_input(shard_device));
                    let loss = loss_fn.forward(logits, targets);
                    let share = shard.len() as f64 / idx.len() as f64;
                    let scaled = loss.clone() * (share / group_len);
                    let mut grads = GradientsParams::from_grads(scaled.backward(), &replica);
                    if d > 0 {
                        grads = grads.to_device(&device, &model);
                    }
                    accumulator.accumulate(&model, grads);
                    losses.push((loss, share));
                }
                // Read the losses only now, so the devices work at the same time.
                let value: f64 = losses
                    .into_iter()
                    .map(|(loss, share)| loss.into_scalar::<f32>() as f64 * share)
                    .sum();
                if !value.is_finite() {
                    bar.finish_and_clear();
                    // The weights that gave this loss may be the ones just checkpointed:
                    // never leave `latest.json` pointing at them.
                    let kept = checkpoint::roll_back_from(&s.run_dir, state.step)?;
                    bail!(
                        "the loss became {value} at step {} (epoch {}) with --lr {}; training stopped. {} \
                         Start a new run with a lower --lr.",
                        state.step + 1,
                        state.epoch + 1,
                        cfg.lr,
                        last_good(&s.run_dir, kept)
                    );
                }
                step_loss += value / group_len;
                step_samples += idx.len();
            }
            let mut grads = accumulator.grads();
            let grad_norm = clip_global_norm(&model, &mut grads, cfg.clip);
            if !grad_norm.is_finite() {
                // Stop before the update: the weights in memory and on disk stay finite.
                bar.finish_and_clear();
                let kept = checkpoint::latest(&s.run_dir)?.map(|(d, _)| {
                    d.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string()
                });
                bail!(
                    "the gradient norm became {grad_norm} at step {} (epoch {}) with --lr {}; training stopped \
                     before applying it. {} Start a new run with a lower --lr.",
                    state.step + 1,
                    state.epoch + 1,
                    cfg.lr,
                    last_good(&s.run_dir, kept)
                );
            }
            let lr = learning_rate(cfg.lr, state.step, warmup_steps, total_steps);
            model = optim.step(lr, model, grads);
            state.step += 1;
            state.batch_in_epoch = group_end;

            window_loss += step_loss;
            window_n += 1;
            window_samples += step_samples;
            let rate = window_samples as f64 / window_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(state.step as u64);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} {:.1} samples/s",
                state.epoch + 1,
                cfg.epochs,
                window_loss / window_n as f64,
                rate
            ));
            if state.step % 10 == 0 || state.step == total_steps {
                log_metrics(
                    &s.run_dir,
                    serde_json::json!({"step": state.step, "epoch": state.epoch + 1, "loss": window_loss / window_n as f64,
                        "lr": lr, "grad_norm": grad_norm, "samples_per_s": rate}),
                )?;
                if bar.is_hidden() {
                    eprintln!(
                        "step {}/{} epoch {} loss {:.4} lr {:.2e} {:.1} samples/s",
                        state.step,
                        total_steps,
                        state.epoch + 1,
                        window_loss / window_n as f64,
                        lr,
                        rate
                    );
                }
                window_loss = 0.0;
                window_n = 0;
                window_samples = 0;
                window_start = Instant::now();
            }
            let interrupt = interrupted.load(Ordering::SeqCst);
            if state.step % cfg.checkpoint_every == 0 || interrupt {
                state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
                let at = checkpoint::save(&s.run_dir, &model, &optim, &state)?;
                if interrupt {
                    bar.finish_and_clear();
                    eprintln!(
                        "interrupted: checkpoint saved to {}; continue with `trainer fine-tune --resume {}`",
                        at.display(),
                        s.run_dir.display()
                    );
                    return Err(crate::Interrupted.into());
                }
            }
        }
        // Epoch end: validate, keep the best, checkpoint.
        bar.suspend(|| {
            eprintln!(
                "epoch {} done; validating on {} reviews",
                state.epoch + 1,
                s.valid.examples.len()
            )
        });
        let summary = evaluate_model(
            model.valid(),
            &s.config,
            &s.tokenizer,
            &s.base_device,
            &s.valid,
            cfg.max_len,
            cfg.truncation,
        )?;
        log_metrics(
            &s.run_dir,
            serde_json::json!({"step": state.step, "epoch": state.epoch + 1, "split": "validation",
                "accuracy": summary.accuracy, "f1": summary.f1, "loss": summary.loss, "ece": summary.ece}),
        )?;
        bar.suspend(|| {
            eprintln!(
                "epoch {}: validation accuracy {:.4} loss {:.4}",
                state.epoch + 1,
                summary.accuracy,
                summary.loss
            )
        });
        if state.best_accuracy.is_none_or(|b| summary.accuracy > b) {
            state.best_accuracy = Some(summary.accuracy);
            state.best_step = Some(state.step);
            save_model_folder(&s.run_dir, "best", &model, &s.config, &s.tokenizer, cfg)?;
        }
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        checkpoint::save(&s.run_dir, &model, &optim, &state)?;
    }
    bar.finish_and_clear();
    save_model_folder(&s.run_dir, "final", &model, &s.config, &s.tokenizer, cfg)?;
    let mut results = serde_json::json!({
        "train_seconds": state.elapsed_s,
        "steps": state.step,
        "best_validation_accuracy": state.best_accuracy,
        "best_step": state.best_step,
        "backend": s.backend_description,
    });
    let mut test_summary = None;
    if let Some(test) = &s.test {
        eprintln!(
            "evaluating the best model on {} test reviews",
            test.examples.len()
        );
        let best = s.run_dir.join("best");
        let mut store =
            burn::store::BurnpackStore::from_file(best.join("model.bpk")).auto_extension(false);
        let (best_model, _) = BertForSequenceClassification::load_burnpack(
            &s.config,
            num_labels,
            &mut store,
            "best/model.bpk",
            &s.base_device,
        )?;
        let summary = evaluate_model(
            best_model,
            &s.config,
            &s.tokenizer,
            &s.base_device,
            test,
            cfg.max_len,
            cfg.truncation,
        )?;
        log_metrics(
            &s.run_dir,
            serde_json::json!({"step": state.step, "split": "test", "accuracy": summary.accuracy, "f1": summary.f1,
                "precision": summary.precision, "recall": summary.recall, "ece": summary.ece, "n": summary.n}),
        )?;
        results["test"] = serde_json::to_value(&summary)?;
        eprintln!("test accuracy {:.4} (n = {})", summary.accuracy, summary.n);
        test_summary = Some(summary);
    }
    crate::report::write(&s.run_dir, &results, test_summary.as_ref())?;
    write_atomic(
        &s.run_dir.join("results.json"),
        &serde_json::to_vec_pretty(&results)?,
    )?;
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}

/// Write `run_dir/name/` as a complete model folder (burnpack weights, config,
/// tokenizer, inference settings), replacing any previous one atomically.
fn save_model_folder(
    run_dir: &Path,
    name: &str,
    model: &BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
    cfg: &RunConfig,
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
    write_atomic(
        &tmp.join("inference.json"),
        serde_json::json!({"max_len": cfg.max_len, "truncation": cfg.truncation})
            .to_string()
            .as_bytes(),
    )?;
    checkpoint::replace_dir(&tmp, &run_dir.join(name))
}
