//! `trainer`: the native command line of the project.
//!
//! - `predict`: classify texts with any BERT classifier folder or hub id.

mod predict;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Fine-tune, evaluate, export and run BERT sentiment classifiers.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify texts (arguments, or one per line on stdin) and print one JSON object per text.
    Predict(predict::PredictArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(args) => predict::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
