//! `trainer fine-tune`: the Hugging Face recipe (BERT + linear head on `[CLS]`,
//! cross-entropy, AdamW with linear warmup/decay, gradient clipping) as a resumable
//! job with checkpoints, validation each epoch and a metrics log.
//!
//! - [`settings`]: the recipe, as flags and as the run's `run.json`.
//! - [`setup`]: the run folder, data, model, devices and resume state.
//! - the optimizer and the one optimisation step are model-core's
//!   [`model_core::training`], shared with the page (and what `trainer bench` times).
//! - [`epochs`]: the loop: logging, checkpoints, validation, Ctrl-C, divergence.
//! - [`finish`]: the final model, the test pass, `results.json` and the report.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

pub mod epochs;
pub mod finish;
mod outputs;
pub mod settings;
pub mod setup;
#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod testing;

pub use settings::{DEFAULT_MODEL, FineTuneArgs, RunConfig, Settings};

/// Run `trainer fine-tune`.
pub fn run(args: FineTuneArgs, interrupted: Arc<AtomicBool>) -> Result<()> {
    let (run, progress) = setup::open(&args)?;
    match epochs::train(&run, progress, &interrupted, args.max_steps)? {
        epochs::Ended::Finished(done) => finish::finish(&run, &done.model, &done.state),
        epochs::Ended::Stopped => Ok(()),
    }
}
