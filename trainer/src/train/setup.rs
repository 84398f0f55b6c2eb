//! Setting a run up: its folder and `run.json` (new, or read back on `--resume`),
//! the data, the backbone's config and tokenizer, the devices, the weights and
//! optimizer (pretrained, or from the latest checkpoint) and the tokenized training
//! set. Nothing is written before data, model and devices are known to be usable,
//! so a failed start leaves nothing behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use model_core::backend::select_devices;
use model_core::hub::resolve_model;
use model_core::loader::ModelFolder;
use model_core::model::BertForSequenceClassification;
use model_core::open::read_model;
use model_core::tokenizer::Encoded;
use model_core::{BertConfig, BertTokenizer};

use super::settings::{FineTuneArgs, RunConfig, Settings, check_max_len};
use crate::checkpoint::{self, TrainState, write_atomic};
use crate::data::{self, LabeledData, Split};
use model_core::training::{Examples, Schedule, StepContext, optimizer};

/// Everything a run needs once set up; the same from the first step to the last.
pub struct Run {
    /// The run folder.
    pub run_dir: PathBuf,
    /// What the run was started with (`run.json`).
    pub cfg: RunConfig,
    /// Training data.
    pub train: LabeledData,
    /// Validation data.
    pub valid: LabeledData,
    /// Test data evaluated at the end, if any.
    pub test: Option<LabeledData>,
    /// The backbone's config with the run's labels.
    pub config: BertConfig,
    /// The backbone's tokenizer.
    pub tokenizer: BertTokenizer,
    /// Where validation and the test pass run: the first device, without autodiff.
    pub base_device: Device,
    /// The devices in words, for logs and `results.json`.
    pub backend_description: String,
    /// The training reviews tokenized, in `train` order.
    pub encoded: Vec<Encoded>,
    /// Their class indices.
    pub labels: Vec<usize>,
    /// Their token counts, which the epoch plans bucket by.
    pub lengths: Vec<usize>,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Devices, seed, clipping and schedule of every step.
    pub step_context: StepContext,
}

impl Run {
    /// The recipe.
    pub fn settings(&self) -> &Settings {
        &self.cfg.settings
    }

    /// Classes the head predicts.
    pub fn num_labels(&self) -> usize {
        self.train.labels.len()
    }

    /// The training set as a step reads it.
    pub fn examples(&self) -> Examples<'_> {
        Examples {
            encoded: &self.encoded,
            labels: &self.labels,
            pad_id: self.tokenizer.pad_id(),
        }
    }
}

/// What the steps change: the weights, the optimizer state and where training stands.
pub struct Progress {
    /// The model, on the first training device.
    pub model: BertForSequenceClassification,
    /// AdamW with its moments.
    pub optim: ModuleOptimizer,
    /// Epoch, step, best validation accuracy so far.
    pub state: TrainState,
}

/// Set up the run `args` start or resume.
pub fn open(args: &FineTuneArgs) -> Result<(Run, Progress)> {
    let (run_dir, cfg, resume) = run_folder(args)?;
    let s = &cfg.settings;
    let (train, valid, test) = load_data(&cfg)?;

    let files = ModelFolder::in_dir(&resolve_model(&s.model)?)?;
    let mut config = files.config()?;
    let tokenizer = files.tokenizer()?;
    check_max_len(s.max_len, &config)?;
    config.set_labels(&train.labels);
    let (base_device, extra_devices, backend_description) = devices(args)?;
    if resume.is_none() {
        // Only now that data, model and device are known to be usable.
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

    // Shard `d` of every batch runs on devices[d]; one device is the plain single-device run.
    let devices: Vec<Device> = std::iter::once(base_device.clone())
        .chain(extra_devices)
        .map(|d| d.autodiff())
        .collect();
    let progress = load_progress(
        &cfg,
        &config,
        train.labels.len(),
        resume.as_ref(),
        &devices[0],
    )?;
    if resume.is_some() && progress.state.epoch >= s.epochs {
        eprintln!("{}: training already finished", run_dir.display());
    }

    eprintln!(
        "tokenizing {} training and {} validation reviews",
        train.examples.len(),
        valid.examples.len()
    );
    let texts: Vec<&str> = train.examples.iter().map(|e| e.text.as_str()).collect();
    let encoded: Vec<Encoded> = tokenizer.encode_batch(&texts, s.max_len, s.truncation)?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
    let batches_per_epoch = lengths.len().div_ceil(s.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(s.grad_accum);
    let schedule = Schedule::new(s.lr, s.warmup, steps_per_epoch * s.epochs);
    eprintln!(
        "backend {} | {} epochs x {} steps (batch {} x accum {}) | lr {} warmup {} steps",
        backend_description,
        s.epochs,
        steps_per_epoch,
        s.batch_size,
        s.grad_accum,
        s.lr,
        schedule.warmup
    );
    let step_context = StepContext::new(devices, s.seed, s.clip, schedule);
    let labels = train.examples.iter().map(|e| e.label).collect();
    let run = Run {
        run_dir,
        train,
        valid,
        test,
        config,
        tokenizer,
        base_device,
        backend_description,
        encoded,
        labels,
        lengths,
        steps_per_epoch,
        step_context,
        cfg,
    };
    Ok((run, progress))
}

/// A checkpoint to continue from, and its state.
type Resume = (PathBuf, TrainState);

/// The run folder, its configuration and, when resuming, the checkpoint to continue.
fn run_folder(args: &FineTuneArgs) -> Result<(PathBuf, RunConfig, Option<Resume>)> {
    if let Some(dir) = &args.resume {
        let cfg = RunConfig::read(dir)?;
        let latest = checkpoint::latest(dir)?;
        for folder in ["best", "final"] {
            checkpoint::recover_dir(&dir.join(folder))?;
        }
        return Ok((dir.clone(), cfg, latest));
    }
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
    Ok((out, RunConfig::start(args)?, None))
}

fn limit(mut d: LabeledData, n: Option<usize>) -> LabeledData {
    if let Some(n) = n {
        d.examples.truncate(n);
    }
    d
}

/// Training, validation and test data, with the labels of the training data.
fn load_data(cfg: &RunConfig) -> Result<(LabeledData, LabeledData, Option<LabeledData>)> {
    let s = &cfg.settings;
    let columns = s.columns();
    eprintln!("loading data from {}", cfg.data.display());
    let all = data::load(&cfg.data, Split::Train, &columns)?;
    let (train, valid) = match &s.valid_data {
        Some(p) => {
            let v = data::load(p, Split::Train, &columns)?;
            (all.clone(), data::align_labels(v, &all.labels, p)?)
        }
        None => data::split_validation(all, s.valid_fraction, s.seed),
    };
    let train = limit(train, s.train_limit);
    let valid = limit(valid, s.eval_limit);
    let classes: BTreeSet<usize> = train.examples.iter().map(|e| e.label).collect();
    if classes.len() < 2 {
        bail!(
            "{}: the training data has a single class ({}); a classifier needs at least two",
            cfg.data.display(),
            train.labels[*classes.iter().next().unwrap_or(&0)]
        );
    }
    let test = match (&s.test_data, cfg.is_imdb()) {
        (Some(p), _) => Some(data::align_labels(
            data::load(p, Split::Test, &columns)?,
            &train.labels,
            p,
        )?),
        (None, true) => Some(data::load(&cfg.data, Split::Test, &columns)?),
        (None, false) => None,
    }
    .map(|t| limit(t, s.eval_limit));
    Ok((train, valid, test))
}

/// The first device, the devices of shards 1.. (`--devices`), and all of them in words.
fn devices(args: &FineTuneArgs) -> Result<(Device, Vec<Device>, String)> {
    let mut selected = select_devices(args.backend, args.devices)?.into_iter();
    let first = selected
        .next()
        .expect("select_devices returns at least one device");
    let extra: Vec<_> = selected.collect();
    let description = if extra.is_empty() {
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
    Ok((
        first.device,
        extra.into_iter().map(|d| d.device).collect(),
        description,
    ))
}

/// The pretrained backbone with a new head (seeded) and a fresh optimizer, or the
/// weights, optimizer state and position of the checkpoint `resume` names.
fn load_progress(
    cfg: &RunConfig,
    config: &BertConfig,
    num_labels: usize,
    resume: Option<&Resume>,
    device: &Device,
) -> Result<Progress> {
    let s = &cfg.settings;
    if let Some((dir, state)) = resume {
        eprintln!("resuming from {} (step {})", dir.display(), state.step);
        let model = load_saved(config, num_labels, dir, device)?;
        let optim = optimizer(s.weight_decay)?
            .load(dir.join("optimizer.bpk"))
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", dir.join("optimizer.bpk").display()))?;
        return Ok(Progress {
            model,
            optim,
            state: state.clone(),
        });
    }
    device.seed(s.seed);
    let files = ModelFolder::in_dir(&resolve_model(&s.model)?)?;
    let mut ckpt = files.checkpoint()?;
    let (model, report) =
        BertForSequenceClassification::load(config, num_labels, &mut ckpt, device)?;
    if !report.initialized.is_empty() {
        eprintln!("new classification head: {}", report.initialized.join(", "));
    }
    Ok(Progress {
        model,
        optim: optimizer(s.weight_decay)?,
        state: TrainState::default(),
    })
}

/// The model the trainer saved in `dir` (`model.bpk` of a checkpoint, `best/` or
/// `final/`), read by model-core's one weights reader.
pub fn load_saved(
    config: &BertConfig,
    num_labels: usize,
    dir: &Path,
    device: &Device,
) -> Result<BertForSequenceClassification> {
    let folder = ModelFolder {
        dir: dir.into(),
        weights: "model.bpk",
    };
    let (model, _) = read_model(&folder, folder.weights, config, num_labels, device)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing;

    #[test]
    fn a_new_run_writes_its_config_and_a_resumed_run_reads_it_back() {
        let _serial = testing::serial();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let (run, progress) = open(&testing::tiny_run(&out, &[])).unwrap();
        assert_eq!(progress.state, TrainState::default());
        assert_eq!(
            (run.train.examples.len(), run.valid.examples.len()),
            (16, 4)
        );
        assert_eq!(run.steps_per_epoch, 4);
        assert_eq!(run.step_context.schedule.total, 8);
        assert!(run.test.is_none(), "JSONL data has no test split");
        for f in ["run.json", "config.json", "tokenizer.json"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let written = RunConfig::read(&out).unwrap();
        assert_eq!(written, run.cfg);
        assert_eq!(written.settings.checkpoint_every, 3);

        // No checkpoint yet: a resume starts over, with the recorded settings.
        let (resumed, progress) = open(&testing::resume_args(&out)).unwrap();
        assert_eq!(resumed.cfg, run.cfg);
        assert_eq!(progress.state, TrainState::default());
        assert_eq!(resumed.encoded, run.encoded);

        // A second start in the same folder is refused.
        let e = open(&testing::tiny_run(&out, &[]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already holds a run"), "{e}");
    }
}
