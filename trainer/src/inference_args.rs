//! The flags that say how to run a model, shared by `predict` and `evaluate`.

use clap::Args;
use model_core::backend::BackendKind;
use model_core::bundle::{MANIFEST_FILE, Manifest};
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
    /// (`inference.json`, written by `fine-tune` and `export`; else a web bundle's
    /// `manifest.json`, as the page's "Download the model" and `exportBundle` give
    /// it), then the defaults (256 tokens, head+tail). A broken `inference.json` or
    /// manifest is an error naming it.
    pub fn options(&self, model: &str) -> model_core::Result<InferenceOptions> {
        let dir = std::path::Path::new(model);
        let recorded = match InferenceSettings::read_dir(dir)? {
            Some(s) => Some((s.max_len, s.truncation)),
            None => manifest_settings(dir)?,
        };
        Ok(InferenceOptions {
            max_len: self.max_len.or(recorded.map(|r| r.0)).unwrap_or(256),
            truncation: self
                .truncation
                .or(recorded.map(|r| r.1))
                .unwrap_or_default(),
            batch_size: self.batch_size,
        })
    }
}

/// The max length and truncation a web bundle's manifest in `dir` records, if there
/// is one.
fn manifest_settings(dir: &std::path::Path) -> model_core::Result<Option<(usize, Truncation)>> {
    let path = dir.join(MANIFEST_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let manifest = Manifest::parse(&bytes, &path.display().to_string())?;
    Ok(Some((manifest.max_len, manifest.truncation)))
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

    #[test]
    fn a_bundle_without_inference_json_gives_its_manifests_settings() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().to_str().unwrap();
        let file = |name: &str| serde_json::json!({"name": name, "bytes": 1, "sha256": "00"});
        let manifest = serde_json::json!({
            "format": model_core::bundle::FORMAT, "labels": ["negative", "positive"],
            "max_len": 64, "truncation": "head", "weights": "model.bpk",
            "files": [file("model.bpk"), file("config.json"), file("tokenizer.json")],
        });
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest.to_string()).unwrap();
        let o = args(None, None).options(model).unwrap();
        assert_eq!((o.max_len, o.truncation), (64, Truncation::Head));
        assert_eq!(args(Some(32), None).options(model).unwrap().max_len, 32);
        std::fs::write(dir.path().join(MANIFEST_FILE), "{").unwrap();
        let err = args(None, None).options(model).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
    }
}
