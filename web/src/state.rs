//! The state of each feature of the page, as small copyable bundles of signals.
//!
//! The page (`App`) creates one of each and provides it as context; a panel
//! takes the ones it reads with `expect_context`. The model's own state is
//! [`crate::lifecycle::ModelState`], next to the code that drives it.

use std::ops::Range;

use leptos::prelude::*;
use model_core::Prediction;

use crate::batch::record::{Estimate, RunRecord, StoredRow};
use crate::client::{SavedTune, TuneProgress, TuneReport};
use crate::engine::Engine;
use crate::occlusion::Explanation;

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

/// Many reviews at once ([`crate::batch`]).
#[derive(Clone, Copy, Default)]
pub struct BatchState {
    /// The pasted reviews, one per line.
    pub text: RwSignal<String>,
    /// The run kept in the page's storage: what it read, how far it got, its counts.
    pub run: RwSignal<Option<RunRecord>>,
    /// A run is going.
    pub running: RwSignal<bool>,
    /// Stop asked for: the run stops once the chunk in flight is saved.
    pub stop: RwSignal<bool>,
    /// How far the run going has got and how long the rest should take.
    pub estimate: RwSignal<Option<Estimate>>,
    /// The table's page (0-based) and its rows, read back from the storage.
    pub page: RwSignal<usize>,
    pub rows: RwSignal<Vec<StoredRow>>,
    /// The table shows the newest rows as they come (until the user turns the page).
    pub follow: RwSignal<bool>,
    /// Why the input could not be read or the run stopped.
    pub error: RwSignal<Option<String>>,
}

/// Fine-tuning on the user's own examples ([`crate::panels::teach`]): the examples,
/// the settings as typed (read when a run starts, errors naming the setting), and
/// the run.
#[derive(Clone, Copy)]
pub struct TeachState {
    /// Pasted examples (JSONL, or CSV/TSV with a header).
    pub text: RwSignal<String>,
    /// A picked file of examples: its name and bytes.
    pub file: RwSignal<Option<(String, std::sync::Arc<Vec<u8>>)>>,
    pub epochs: RwSignal<String>,
    pub learning_rate: RwSignal<String>,
    pub batch_size: RwSignal<String>,
    pub max_len: RwSignal<String>,
    /// `all`, `head` or a number of top layers.
    pub layers: RwSignal<String>,
    /// The held-out share, in percent.
    pub held_out: RwSignal<String>,
    pub seed: RwSignal<String>,
    /// A run is going.
    pub running: RwSignal<bool>,
    /// Where the run going stands.
    pub progress: RwSignal<Option<TuneProgress>>,
    /// The last run's report.
    pub report: RwSignal<Option<TuneReport>>,
    /// A run kept in the browser's storage that did not end (the page was reloaded
    /// or closed), which the panel offers to resume.
    pub saved: RwSignal<Option<SavedTune>>,
    /// Why the examples could not be read, or the run failed.
    pub error: RwSignal<Option<String>>,
    /// Cancels the run going.
    pub abort: StoredValue<Option<web_sys::AbortController>, LocalStorage>,
}

impl Default for TeachState {
    /// The settings start at the library's defaults (model-core's); the max length
    /// blank, which the library caps at the model's positions.
    fn default() -> Self {
        let d = model_core::training::TuneSettings::default();
        Self {
            text: RwSignal::new(String::new()),
            file: RwSignal::new(None),
            epochs: RwSignal::new(d.epochs.to_string()),
            learning_rate: RwSignal::new(format!("{:e}", d.learning_rate)),
            batch_size: RwSignal::new(d.batch_size.to_string()),
            // Blank: the library's default, within the model's positions.
            max_len: RwSignal::new(String::new()),
            layers: RwSignal::new(d.layers.to_string()),
            held_out: RwSignal::new(format!("{}", (d.validation * 100.0).round())),
            seed: RwSignal::new(d.seed.to_string()),
            running: RwSignal::new(false),
            progress: RwSignal::new(None),
            report: RwSignal::new(None),
            saved: RwSignal::new(None),
            error: RwSignal::new(None),
            abort: StoredValue::new_local(None),
        }
    }
}
