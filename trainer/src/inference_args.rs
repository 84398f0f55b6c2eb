//! The flags that say how to run a model, shared by `predict` and `evaluate`.

use clap::Args;
use model_core::backend::BackendKind;
use model_core::settings::InferenceSettings;
use model_core::{Classifier, InferenceOptions, MatmulPrecision, Truncation};

/// Backend, max length, truncation and batch size.
#[derive(Debug, Args)]
pub struct InferenceArgs {
    /// Where to run: auto (a GPU if there is one, else flex), flex or wgpu; cuda and
    /// ndarray with their Cargo features.
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
    pub products: Option<MatmulPrecision>,
}

impl InferenceArgs {
    /// Apply `--products` to a loaded classifier.
    pub fn apply(&self, classifier: &mut Classifier) {
        if let Some(p) = self.products {
            classifier.set_matmul_precision(p);
        }
    }

    /// The options for `model`: flags first, then what the model folder recorded
    /// (`inference.json`, written by `fine-tune` and `export`), then the defaults
    /// (256 tokens, head+tail). A broken `inference.json` is an error naming it.
    pub fn options(&self, model: &str) -> model_core::Result<InferenceOptions> {
        let recorded = InferenceSettings::read_dir(std::path::Path::new(model))?;
        Ok(InferenceOptions {
            max_len: self.max_len.or(recorded.map(|r| r.max_len)).unwrap_or(256),
            truncation: self
                .truncation
                .or(recorded.map(|r| r.truncation))
                .unwrap_or_default(),
            batch_size: self.batch_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(max_len: Option<usize>, truncation: Option<Truncation>) -> InferenceArgs {
        InferenceArgs {
            backend: BackendKind::Flex,
            max_len,
            truncation,
            batch_size: 8,
            products: None,
        }
    }

    #[test]
    fn flags_come_first_then_the_model_folder_then_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().to_str().unwrap();
        let defaults = args(None, None).options(model).unwrap();
        assert_eq!(
            (defaults.max_len, defaults.truncation),
            (256, Truncation::HeadTail)
        );
        std::fs::write(
            dir.path().join("inference.json"),
            r#"{"max_len": 128, "truncation": "head"}"#,
        )
        .unwrap();
        let recorded = args(None, None).options(model).unwrap();
        assert_eq!(
            (recorded.max_len, recorded.truncation),
            (128, Truncation::Head)
        );
        let flags = args(Some(64), Some(Truncation::HeadTail))
            .options(model)
            .unwrap();
        assert_eq!(
            (flags.max_len, flags.truncation, flags.batch_size),
            (64, Truncation::HeadTail, 8)
        );
        std::fs::write(dir.path().join("inference.json"), "{\"max_len\": \"long\"}").unwrap();
        let err = args(None, None).options(model).unwrap_err().to_string();
        assert!(err.contains("inference.json"), "{err}");
    }
}
