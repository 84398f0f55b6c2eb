//! `trainer`: the native command line of the project.
//!
//! - `predict`: classify texts with any BERT classifier folder or hub id.
//! - `fine-tune`: fine-tune a pretrained BERT on IMDb or your own labeled text.
//! - `evaluate`: metrics of any model folder on labeled data.
//! - `calibrate`: fit a model's temperature on labeled data and record it.
//! - `export`: a run's model for the web page or for `transformers`.
//! - `bench`: throughput figures comparable with the PyTorch reference.
//! - `report`: a run folder's report written again from what it recorded.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use trainer::{Interrupted, bench, calibrate, evaluate, export, predict, report, train};

/// Fine-tune, evaluate, export and run BERT sentiment classifiers.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify texts (arguments, stdin or a file of any size) into JSONL or CSV, resumably.
    Predict(predict::PredictArgs),
    /// Fine-tune a pretrained BERT on labeled text, with checkpoints and resume.
    FineTune(Box<train::FineTuneArgs>),
    /// Evaluate a model on labeled data and print a JSON summary.
    Evaluate(evaluate::EvaluateArgs),
    /// Fit a model's temperature (calibrated confidence) on labeled data and record it in the folder.
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Export a run's best model for the web page or for Hugging Face `transformers`.
    Export(export::ExportArgs),
    /// Measure tokenization, inference and training-step throughput (JSON lines).
    Bench(bench::BenchArgs),
    /// Write a run folder's report.md and plots again from its results and metrics log.
    Report(report::ReportArgs),
}

fn main() -> ExitCode {
    trainer::allocator::keep_freed_memory();
    // SAFETY: first thing in `main`: no other thread exists yet.
    unsafe { model_core::backend::quiet_headless_vulkan() };
    let cli = Cli::parse();
    let interrupted = Arc::new(AtomicBool::new(false));
    // First Ctrl-C: fine-tune checkpoints after the current step and predict writes
    // the chunk in flight, then they exit; the other commands have nothing to save and
    // exit at once. A second Ctrl-C exits at once.
    let on_interrupt = match &cli.command {
        Command::FineTune(_) => Some("saving a checkpoint after this step"),
        Command::Predict(_) => Some("writing the rows of the chunk in flight, then stopping"),
        _ => None,
    };
    {
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || {
            let Some(what) = on_interrupt.filter(|_| !flag.swap(true, Ordering::SeqCst)) else {
                std::process::exit(130);
            };
            eprintln!("\nCtrl-C: {what} (press again to quit at once)");
        });
    }
    let result = match cli.command {
        Command::Predict(args) => predict::run(args, interrupted),
        Command::FineTune(args) => train::run(*args, interrupted),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Calibrate(args) => calibrate::run(*args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Interrupted>() => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
