//! The web bundle: what `trainer export --format web` writes and the page loads.
//!
//! `manifest.json` names every file with its size and SHA-256, the labels, the
//! max length and truncation the model was trained with, its calibration
//! ([`crate::calibration`]), the weight dtype, and the
//! run's test metrics and training command. Every file is checked against the
//! manifest before it is used, so a truncated download or a stale cache entry is
//! an error that names the file, never a model that silently predicts garbage.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::export::WeightDtype;
use crate::inference::InferenceOptions;
use crate::tokenizer::Truncation;

/// The format tag this version writes and reads.
pub const FORMAT: &str = "bert-sentiment-web/1";

/// The manifest's file name; a folder holding it is a bundle.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name, relative to the manifest.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Class labels in index order.
    pub labels: Vec<String>,
    /// Tokens per text, special tokens included.
    pub max_len: usize,
    /// How longer texts are shortened.
    pub truncation: Truncation,
    /// How the logits become probabilities: [`Calibration::NONE`] for a model never
    /// calibrated (and in manifests written before calibration existed).
    #[serde(flatten)]
    pub calibration: Calibration,
    /// The weights file: `model.bpk` (burn's format, f32) or `model.safetensors`
    /// (Hugging Face names; f32, f16 or int8 with per-row scales).
    #[serde(default = "default_weights")]
    pub weights: String,
    /// How the weights are stored.
    #[serde(default)]
    pub dtype: WeightDtype,
    /// Every file with its size and hash.
    pub files: Vec<ManifestFile>,
    /// Test metrics of the run that made the model (`null` if it had no test set).
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The training configuration and command.
    #[serde(default)]
    pub training: serde_json::Value,
    /// A free-form note from whoever exported the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn default_weights() -> String {
    "model.bpk".into()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ManifestFile {
    /// The entry for a file named `name` holding `bytes`.
    pub fn of(name: &str, bytes: &[u8]) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

impl Manifest {
    /// The manifest's bytes, as the exporter writes them and [`Self::parse`] reads
    /// them.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serialises")
    }

    /// Parse and sanity-check a manifest; `source_name` names it in errors.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::config(source_name, format!("not a valid manifest: {e}")))?;
        if m.format != FORMAT {
            return Err(Error::config(
                source_name,
                format!("format `{}` is not `{FORMAT}`", m.format),
            ));
        }
        m.calibration.check(source_name)?;
        if m.labels.len() < 2 {
            return Err(Error::config(source_name, "fewer than two labels"));
        }
        for needed in [m.weights.as_str(), "config.json", "tokenizer.json"] {
            if m.file(needed).is_none() {
                return Err(Error::config(
                    source_name,
                    format!("`files` does not list {needed}"),
                ));
            }
        }
        Ok(m)
    }

    /// The entry for `name`.
    pub fn file(&self, name: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Total bytes of the listed files (for a progress bar); saturates rather than
    /// overflowing on a manifest with absurd sizes.
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |sum, f| sum.saturating_add(f.bytes))
    }

    /// Check `bytes` against the manifest entry for `name`.
    pub fn verify(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.verify_digest(name, bytes, None)
    }

    /// [`Manifest::verify`], with `sha256` (lowercase hex) the digest of `bytes` when
    /// the caller has it already (a browser's WebCrypto computes it natively, in a few
    /// milliseconds where the wasm SHA-256 takes a quarter of a second for a model).
    pub fn verify_digest(&self, name: &str, bytes: &[u8], sha256: Option<&str>) -> Result<()> {
        let entry = self
            .file(name)
            .ok_or_else(|| Error::config("manifest.json", format!("no entry for {name}")))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(Error::Integrity {
                file: name.into(),
                message: format!("{} bytes, the manifest says {}", bytes.len(), entry.bytes),
            });
        }
        let found = sha256.map_or_else(|| sha256_hex(bytes), str::to_ascii_lowercase);
        if found != entry.sha256 {
            return Err(Error::Integrity {
                file: name.into(),
                message: format!("SHA-256 {found}, the manifest says {}", entry.sha256),
            });
        }
        Ok(())
    }

    /// The inference options the model was trained with.
    pub fn options(&self, batch_size: usize) -> InferenceOptions {
        InferenceOptions {
            max_len: self.max_len,
            truncation: self.truncation,
            batch_size,
        }
    }
}
