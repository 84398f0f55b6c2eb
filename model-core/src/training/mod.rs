//! Fine-tuning, in one place for the native trainer and the page (feature `train`):
//! the learning-rate [`schedule`], the [`optimizer`] (AdamW as `transformers` sets it
//! up for BERT, and global-norm clipping) and the one optimisation [`step`].
//!
//! `trainer fine-tune` and `trainer bench --what train-step` run every step through
//! [`step::train_step`]; the browser, where a WebGPU tensor can only be read
//! asynchronously, through [`step::train_step_async`]. Both are the same
//! [`step::StepContext::backward`] and [`step::StepContext::apply`] around the reads,
//! so a step in the page does the arithmetic the trainer does.

pub mod optimizer;
pub mod schedule;
pub mod step;

pub use optimizer::{clip_global_norm, optimizer};
pub use schedule::{Schedule, learning_rate};
pub use step::{Diverged, Examples, StepContext, StepStats, train_step, train_step_async};
