//! `trainer evaluate`: accuracy, precision, recall, F1, confusion matrix and
//! calibration of any model folder on labeled data, as one JSON object. The data is
//! streamed ([`crate::inputs`]): metrics are accumulated a chunk at a time, so any
//! amount of it is evaluated in bounded memory.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use model_core::backend::select_device;
use model_core::calibration::Calibration;
use model_core::input::Labels;
use model_core::input::Row;
use model_core::input::labels::map_label;
use model_core::loader::load_classifier;
use model_core::model::BertForSequenceClassification;
use model_core::{BertConfig, BertTokenizer, Classifier, InferenceOptions, Truncation};

use crate::data::{Columns, LabeledData, Split};
use crate::inference_args::InferenceArgs;
use crate::inputs::{Input, Item};
use crate::metrics::{Accumulator, Summary, summaries};
use crate::progress::Progress;

/// Arguments of `trainer evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model folder (a run's `best/`, an export, or a Hugging Face checkpoint) or hub id.
    #[arg(long)]
    pub model: String,
    /// Labeled data: the IMDb archive or folder, a .jsonl or a .csv.
    #[arg(long)]
    pub data: PathBuf,
    /// Which IMDb split to read.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// Evaluate only the first N examples (in file order; the archive's order for IMDb).
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub run: InferenceArgs,
    /// Text column of CSV data.
    #[arg(long)]
    pub text_column: Option<String>,
    /// Label column of CSV data.
    #[arg(long)]
    pub label_column: Option<String>,
}

/// The logits of every example of `data` (labels already aligned to the
/// classifier's), with its true class: what fitting a calibration and measuring a
/// model under several read, from one forward pass.
pub fn labelled_logits(
    classifier: &Classifier,
    data: &LabeledData,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Vec<(Vec<f32>, usize)>> {
    let mut out = Vec::with_capacity(data.examples.len());
    for chunk in data.examples.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        let logits = classifier.predict_logits(&texts)?;
        out.extend(logits.into_iter().zip(chunk.iter().map(|e| e.label)));
        if let Some(bar) = progress {
            bar.inc(chunk.len() as u64);
        }
    }
    Ok(out)
}

/// `model` (a snapshot, as fine-tune holds it) as a classifier with the run's
/// tokenization, uncalibrated.
pub fn snapshot_classifier(
    model: BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
    device: &Device,
    max_len: usize,
    truncation: Truncation,
) -> Result<Classifier> {
    let options = InferenceOptions {
        max_len,
        truncation,
        batch_size: 64,
    };
    Ok(Classifier::new(
        model,
        config.clone(),
        tokenizer.clone(),
        device.clone(),
        options,
    )?)
}

/// Metrics of `model` (a validation snapshot, as fine-tune holds it) on `data`,
/// uncalibrated.
pub fn evaluate_model(
    model: BertForSequenceClassification,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
    device: &Device,
    data: &LabeledData,
    max_len: usize,
    truncation: Truncation,
) -> Result<Summary> {
    let classifier = snapshot_classifier(model, config, tokenizer, device, max_len, truncation)?;
    let logits = labelled_logits(&classifier, data, None)?;
    let mut s = summaries(&classifier.labels, &logits, &[Calibration::NONE]);
    Ok(s.remove(0))
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let options = args.run.options(&args.model)?;
    let columns = Columns {
        text: args.text_column.clone(),
        label: args.label_column.clone(),
        id: None,
    };
    let input = Input::data(&args.data, args.split)?;
    if !input.has_labels() {
        bail!(
            "{}: unknown data format (expected the IMDb .tar.gz archive or folder, .jsonl, or .csv)",
            args.data.display()
        );
    }
    // Opened before the model loads: a missing file or column fails at once.
    let rows = input.spawn(&columns, Labels::Required, 1..usize::MAX, 2 * CHUNK)?;
    let selected = select_device(args.run.backend)?;
    let loaded = load_classifier(&args.model, &selected.device, options)
        .with_context(|| format!("loading model `{}`", args.model))?;
    let mut classifier = loaded.classifier;
    args.run.apply(&mut classifier);
    eprintln!(
        "evaluating {} on {} (max length {}, {}, {} products, {})",
        args.data.display(),
        selected.description,
        options.max_len,
        options.truncation,
        classifier.matmul_precision(),
        classifier.calibration
    );
    let total = if std::io::IsTerminal::is_terminal(&std::io::stderr()) || input.count_is_cheap() {
        input.count()?
    } else {
        None
    };
    let mut progress = Progress::new(total, 1);
    let summary = evaluate_stream(&classifier, rows, &args, &mut progress);
    progress.finish();
    println!("{}", serde_json::to_string(&summary?)?);
    Ok(())
}

/// Examples classified at a time: a bounded share of the input is held, whatever its size.
const CHUNK: usize = 256;

/// Metrics over a stream of labelled rows, accumulated a chunk at a time.
fn evaluate_stream(
    classifier: &Classifier,
    rows: std::sync::mpsc::Receiver<Item>,
    args: &EvaluateArgs,
    progress: &mut Progress,
) -> Result<Summary> {
    let mut acc = Accumulator::new(&classifier.labels, classifier.calibration);
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut rows = rows.into_iter().take(limit).peekable();
    while rows.peek().is_some() {
        let mut chunk: Vec<(Row, usize)> = Vec::with_capacity(CHUNK);
        for item in rows.by_ref().take(CHUNK) {
            let row = item.map_err(|bad| bad.error)?;
            let at = format!("{}:{}", args.data.display(), row.line);
            let raw = row.label.as_ref().expect("labels are required");
            let name = map_label(raw, &classifier.labels, &at)?;
            let truth = classifier
                .labels
                .iter()
                .position(|l| *l == name)
                .expect("a label of the model");
            chunk.push((row, truth));
        }
        let texts: Vec<&str> = chunk.iter().map(|(r, _)| r.text.as_str()).collect();
        for (p, (_, truth)) in classifier.predict(&texts)?.iter().zip(&chunk) {
            let probs: Vec<f32> = p.probabilities.iter().map(|(_, x)| *x).collect();
            acc.add(&probs, *truth);
        }
        let last = chunk.last().map_or(0, |(r, _)| r.line);
        progress.advance(chunk.len(), last);
    }
    if acc.is_empty() {
        bail!("{}: no labeled examples found", args.data.display());
    }
    Ok(acc.summary())
}
