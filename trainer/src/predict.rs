//! `trainer predict`: texts in, one JSON prediction per line out.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Args;
use model_core::backend::select_device;
use model_core::loader::load_classifier;

use crate::inference_args::InferenceArgs;

/// Arguments of `trainer predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder (Hugging Face layout or a `trainer export`) or hub id.
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub run: InferenceArgs,
    /// Texts to classify; without any, one text per line is read from stdin.
    pub texts: Vec<String>,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<String>>>()
            .context("reading texts from stdin")?
    } else {
        args.texts
    };
    if texts.is_empty() {
        bail!("no texts to classify: pass them as arguments or one per line on stdin");
    }
    let selected = select_device(args.run.backend)?;
    let options = args.run.options(&args.model)?;
    let mut loaded = load_classifier(&args.model, &selected.device, options)
        .with_context(|| format!("loading model `{}`", args.model))?;
    args.run.apply(&mut loaded.classifier);
    for name in &loaded.report.initialized {
        eprintln!(
            "warning: {name} is not in the checkpoint and was freshly initialised: \
             predictions are meaningless until the model is fine-tuned"
        );
    }
    if !loaded.report.unused.is_empty() {
        eprintln!(
            "note: {} checkpoint tensors unused: {}",
            loaded.report.unused.len(),
            loaded.report.unused.join(", ")
        );
    }
    eprintln!("backend: {}", selected.description);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = loaded.classifier.predict(&refs)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for p in predictions {
        serde_json::to_writer(&mut out, &p)?;
        writeln!(out)?;
    }
    Ok(())
}
