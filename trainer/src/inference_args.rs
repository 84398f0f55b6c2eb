//! The flags that say how to run a model, shared by `predict` and `evaluate`.

use clap::Args;
use model_core::backend::BackendKind;
use model_core::{Classifier, InferenceOptions, Products, Truncation};

use crate::evaluate::recorded_options;

/// Backend, max length, truncation and batch size.
#[derive(Debug, Args)]
pub struct InferenceArgs {
    /// Where to run: auto (a GPU if there is one, else flex), flex, ndarray or wgpu.
    #[arg(long, default_value = "auto")]
    pub backend: BackendKind,
    /// Longest input in tokens, special tokens included (default: the model folder's
    /// `inference.json`, as written by the trainer, else 256).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// What to keep of longer inputs: `head` or `head+tail` (default: `inference.json`, else head+tail).
    #[arg(long)]
    pub truncation: Option<Truncation>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Arithmetic of the CPU kernel's matrix products: `f32`, or `int8` (what the
    /// page computes for an `--dtype int8` export; slower natively). Default: f32
    /// natively.
    #[arg(long)]
    pub products: Option<Products>,
}

impl InferenceArgs {
    /// Apply `--products` to a loaded classifier.
    pub fn apply(&self, classifier: &mut Classifier) {
        if let Some(p) = self.products {
            classifier.set_products(p);
        }
    }

    /// The options for `model`: flags first, then what the model folder recorded,
    /// then the defaults (256 tokens, head+tail).
    pub fn options(&self, model: &str) -> InferenceOptions {
        let (recorded_len, recorded_truncation) = recorded_options(model);
        InferenceOptions {
            max_len: self.max_len.or(recorded_len).unwrap_or(256),
            truncation: self.truncation.or(recorded_truncation).unwrap_or_default(),
            batch_size: self.batch_size,
        }
    }
}
