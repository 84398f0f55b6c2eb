//! The state of each feature of the page, as small copyable bundles of signals.
//!
//! The page (`App`) creates one of each and provides it as context; a panel
//! takes the ones it reads with `expect_context`. The model's own state is
//! [`crate::lifecycle::ModelState`], next to the code that drives it.

use std::ops::Range;

use leptos::prelude::*;
use model_core::Prediction;

use crate::engine::Engine;
use crate::occlusion::Explanation;
use crate::text::BatchRow;

/// The answer shown for one review.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// What the model says.
    pub prediction: Prediction,
    /// How long reading and classifying the review took.
    pub latency_ms: f64,
    /// The engine it ran on.
    pub engine: Engine,
    /// The bundle's token budget, to tell how a truncated review was cut.
    pub max_len: usize,
    /// The bundle's truncation (`head`, `head+tail`), likewise.
    pub truncation: String,
    /// Byte ranges of the review the model read (all of it, unless truncated).
    pub windows: Vec<Range<usize>>,
}

/// One review: its text, its answer, and what went wrong (classifying or
/// explaining it).
#[derive(Clone, Copy, Default)]
pub struct ReviewState {
    /// The review as typed.
    pub text: RwSignal<String>,
    /// The last answer.
    pub shown: RwSignal<Option<Shown>>,
    /// Why the last classification or explanation failed.
    pub error: RwSignal<Option<String>>,
}

/// The explanation of the answer shown.
#[derive(Clone, Copy, Default)]
pub struct ExplainState {
    /// Phrases done of phrases in all, while explaining.
    pub explaining: RwSignal<Option<(usize, usize)>>,
    /// The finished explanation.
    pub explanation: RwSignal<Option<Explanation>>,
}

/// Many reviews at once.
#[derive(Clone, Copy, Default)]
pub struct BatchState {
    /// The pasted reviews, one per line.
    pub text: RwSignal<String>,
    /// The reviews classified so far.
    pub rows: RwSignal<Vec<BatchRow>>,
    /// Reviews done of reviews in all, once a batch has started.
    pub progress: RwSignal<Option<(usize, usize)>>,
    /// Why the input could not be read or the batch stopped.
    pub error: RwSignal<Option<String>>,
}
