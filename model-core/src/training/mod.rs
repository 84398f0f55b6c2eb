//! Fine-tuning, in one place for the native trainer and the page (feature `train`):
//! the [`recipe`]'s defaults and which layers train, the seeded epoch order
//! ([`plan`]), the learning-rate [`schedule`], the [`optimizer`] (AdamW as
//! `transformers` sets it up for BERT, and global-norm clipping), the one optimisation
//! [`step`], and an in-memory run driven step by step ([`session`], the page's).
//!
//! `trainer fine-tune` and `trainer bench --what train-step` run every step through
//! [`step::train_step`]; the browser, where a WebGPU tensor can only be read
//! asynchronously, through [`step::train_step_async`]. Both are the same
//! [`step::StepContext::backward`] and [`step::StepContext::apply`] around the reads,
//! so a step in the page does the arithmetic the trainer does.

pub mod optimizer;
pub mod plan;
pub mod recipe;
pub mod schedule;
pub mod session;
pub mod step;

pub use optimizer::{clip_global_norm, optimizer};
pub use plan::plan_epoch;
pub use recipe::Layers;
pub use schedule::{Schedule, learning_rate};
pub use session::{FineTune, Scores, Snapshot, TuneSettings};
pub use step::{Diverged, Examples, StepContext, StepStats, train_step, train_step_async};
