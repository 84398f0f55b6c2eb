//! `trainer evaluate`: accuracy, precision, recall, F1, confusion matrix and
//! calibration of any model folder on labeled data, as one JSON object.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use model_core::backend::select_device;
use model_core::loader::load_classifier;
use model_core::model::BertForSequenceClassification;
use model_core::{BertConfig, BertTokenizer, Classifier, InferenceOptions, Truncation};

use crate::data::{self, Columns, LabeledData, Split};
use crate::inference_args::InferenceArgs;
use crate::metrics::{Accumulator, Summary};

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
    /// Evaluate only the first N examples.
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

/// Metrics of `classifier` on `data` (labels already aligned to the classifier's).
pub fn evaluate_classifier(
    classifier: &Classifier,
    data: &LabeledData,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Summary> {
    let mut acc = Accumulator::new(&classifier.labels);
    for chunk in data.examples.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        for (p, e) in classifier.predict(&texts)?.iter().zip(chunk) {
            let probs: Vec<f32> = p.probabilities.iter().map(|(_, x)| *x).collect();
            acc.add(&probs, e.label);
        }
        if let Some(bar) = progress {
            bar.inc(chunk.len() as u64);
        }
    }
    Ok(acc.summary())
}

/// Metrics of `model` (a validation snapshot, as fine-tune holds it) on `data`.
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
    evaluate_classifier(&classifier, data, None)
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let options = args.run.options(&args.model)?;
    let columns = Columns {
        text: args.text_column.clone(),
        label: args.label_column.clone(),
    };
    let mut data = data::load(&args.data, args.split, &columns)?;
    if let Some(n) = args.limit {
        data.examples.truncate(n);
    }
    let selected = select_device(args.run.backend)?;
    let loaded = load_classifier(&args.model, &selected.device, options)
        .with_context(|| format!("loading model `{}`", args.model))?;
    let mut classifier = loaded.classifier;
    args.run.apply(&mut classifier);
    let data = data::align_labels(data, &classifier.labels, &args.data)?;
    eprintln!(
        "evaluating {} examples on {} (max length {}, {}, {} products)",
        data.examples.len(),
        selected.description,
        options.max_len,
        options.truncation,
        classifier.matmul_precision()
    );
    let bar = indicatif::ProgressBar::new(data.examples.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .expect("static template"),
    );
    let summary = evaluate_classifier(&classifier, &data, Some(&bar))?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
