//! `trainer bench`: tokenization, inference and training-step throughput, printed as
//! one JSON object per figure in the shape of `../shared/bench/pytorch_reference.py`,
//! so the two can be run interleaved and compared as ratios.
//!
//! Like the reference, inference batches are taken in input order and padded to their
//! longest review (no length sorting), and the first pass or steps are warm-up.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

use burn::tensor::activation::softmax;
use clap::{Args, ValueEnum};
use model_core::backend::{BackendKind, select_device, threads};
use model_core::hub::resolve_model;
use model_core::loader::ModelFolder;
use model_core::model::BertForSequenceClassification;
use model_core::tokenizer::{Batch, Encoded};
use model_core::{ExecutionPath, Truncation};

use crate::data::{self, Columns, Split, SplitMix64};
use crate::train::settings::{
    DEFAULT_CLIP, DEFAULT_LR, DEFAULT_MODEL, DEFAULT_SEED, DEFAULT_WARMUP, DEFAULT_WEIGHT_DECAY,
    check_max_len,
};
use model_core::training::{Examples, Schedule, StepContext, optimizer, train_step};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Reviews tokenized per second.
    Tokenize,
    /// Reviews classified per second (forward + softmax + read-back).
    Infer,
    /// Training samples per second (forward, backward, clipping, AdamW step).
    TrainStep,
}

/// Arguments of `trainer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// tokenize, infer or train-step.
    #[arg(long, value_enum)]
    pub what: What,
    /// Tokens per review.
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Reviews per batch (default 32 for infer, 16 for train-step).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Batches per inference pass.
    #[arg(long, default_value_t = 2)]
    pub batches: usize,
    /// Timed passes (infer, tokenize), after one warm-up pass.
    #[arg(long, default_value_t = 5)]
    pub passes: usize,
    /// Timed training steps, after two warm-up steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// auto, flex, wgpu, cuda or ndarray (the last two built with their Cargo features).
    #[arg(long, default_value = "flex")]
    pub backend: BackendKind,
    /// Model folder or hub id.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// JSONL file of reviews to use (e.g. `tools/bench_texts.py` output, the reference's exact sample).
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// The IMDb archive to sample test reviews from when --texts is not given.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// head or head+tail (the reference truncates the head).
    #[arg(long, default_value = "head")]
    pub truncation: Truncation,
}

fn summary(rates: &[f64]) -> serde_json::Value {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    serde_json::json!({"median": median, "min": sorted[0], "max": sorted[n - 1], "n": n})
}

/// A figure: the identifying fields (`what`, `max_len`, ...) plus the rate summary.
fn figure(head: serde_json::Value, rates: &[f64]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = head.as_object().cloned().unwrap_or_default();
    out.extend(summary(rates).as_object().cloned().unwrap_or_default());
    out
}

/// `n` reviews (at most `n` when `exact` is false and the file is shorter).
fn texts(args: &BenchArgs, n: usize, exact: bool) -> Result<Vec<String>> {
    if let Some(path) = &args.texts {
        let d = data::load(path, Split::Test, &Columns::default())?;
        if exact && d.examples.len() < n {
            bail!(
                "{}: has {} reviews, the benchmark needs {n}",
                path.display(),
                d.examples.len()
            );
        }
        return Ok(d.examples.into_iter().take(n).map(|e| e.text).collect());
    }
    let archive = match &args.data {
        Some(p) => p.clone(),
        None => crate::imdb::locate_or_download()?,
    };
    let mut all = data::load(&archive, Split::Test, &Columns::default())?.examples;
    SplitMix64(7).shuffle(&mut all);
    Ok(all.into_iter().take(n).map(|e| e.text).collect())
}

pub fn run(args: BenchArgs) -> Result<()> {
    let selected = select_device(args.backend)?;
    let device = selected.device.clone();
    let files = ModelFolder::in_dir(&resolve_model(&args.model)?)?;
    let config = files.config()?;
    let tokenizer = files.tokenizer()?;
    check_max_len(args.max_len, &config)?;
    // The execution path the timed passes take (model-core's `ops`), so a figure says
    // which kernels it measured.
    let timed = match args.what {
        What::TrainStep => device.clone().autodiff(),
        _ => device.clone(),
    };
    let path = ExecutionPath::for_input(&timed, burn::tensor::DType::F32);
    let env = serde_json::json!({"backend": selected.description, "threads": threads(), "path": path.to_string()});
    let mut out = match args.what {
        What::Tokenize => {
            let texts = texts(&args, 2000, false)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mut rates = Vec::new();
            for pass in 0..=args.passes {
                let t = Instant::now();
                let enc = tokenizer.encode_batch(&refs, args.max_len, args.truncation)?;
                let secs = t.elapsed().as_secs_f64();
                std::hint::black_box(enc);
                if pass > 0 {
                    rates.push(refs.len() as f64 / secs);
                }
            }
            figure(
                serde_json::json!({"what": "tokenize_reviews_per_s", "max_len": args.max_len, "reviews": refs.len()}),
                &rates,
            )
        }
        What::Infer => {
            let batch = args.batch.unwrap_or(32);
            let n = batch * args.batches;
            let texts = texts(&args, n, true)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encoded = tokenizer.encode_batch(&refs, args.max_len, args.truncation)?;
            let mut ckpt = files.checkpoint()?;
            let (model, _) = BertForSequenceClassification::load(&config, 2, &mut ckpt, &device)?;
            let batches: Vec<Batch> = encoded
                .chunks(batch)
                .map(|c| Batch::collate(&c.iter().collect::<Vec<&Encoded>>(), tokenizer.pad_id()))
                .collect();
            let mut rates = Vec::new();
            for pass in 0..=args.passes {
                let t = Instant::now();
                for b in &batches {
                    let probs = softmax(model.forward(&b.to_input(&device)), 1);
                    probs
                        .try_into_data()
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                }
                if pass > 0 {
                    rates.push(n as f64 / t.elapsed().as_secs_f64());
                }
            }
            figure(
                serde_json::json!({"what": "infer_reviews_per_s", "max_len": args.max_len, "batch": batch, "reviews": n}),
                &rates,
            )
        }
        What::TrainStep => {
            let batch = args.batch.unwrap_or(16);
            let steps = args.steps + 2;
            let texts = texts(&args, batch * steps, true)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encoded = tokenizer.encode_batch(&refs, args.max_len, args.truncation)?;
            // Alternating labels by position in the batch, as the reference has them.
            let labels: Vec<usize> = (0..encoded.len()).map(|i| (i % batch) % 2).collect();
            let device = device.autodiff();
            let mut ckpt = files.checkpoint()?;
            let (mut model, _) =
                BertForSequenceClassification::load(&config, 2, &mut ckpt, &device)?;
            // Fine-tune's own optimizer and step at its default recipe, so this times
            // the step a run takes (no-decay group, schedule, reseeded dropout included).
            let mut optim = optimizer(DEFAULT_WEIGHT_DECAY)?;
            let schedule = Schedule::new(DEFAULT_LR, DEFAULT_WARMUP, steps);
            let ctx = StepContext::new(vec![device], DEFAULT_SEED, DEFAULT_CLIP, schedule);
            let data = Examples {
                encoded: &encoded,
                labels: &labels,
                pad_id: tokenizer.pad_id(),
            };
            let mut rates = Vec::new();
            for s in 0..steps {
                let group = [(s * batch..(s + 1) * batch).collect::<Vec<usize>>()];
                let t = Instant::now();
                let (next, outcome) = train_step(model, &mut optim, &ctx, &data, &group, s);
                model = next;
                let stats = outcome
                    .map_err(|d| anyhow::anyhow!("training step {} diverged: {d:?}", s + 1))?;
                // Wait for the step to finish before stopping the clock.
                model.classifier.weight.val().into_data();
                if s >= 2 {
                    rates.push(stats.samples as f64 / t.elapsed().as_secs_f64());
                }
            }
            figure(
                serde_json::json!({"what": "train_samples_per_s", "max_len": args.max_len, "batch": batch}),
                &rates,
            )
        }
    };
    out.insert("env".into(), env);
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
