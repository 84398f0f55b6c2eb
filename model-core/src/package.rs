//! A classifier's files, in memory: what `trainer export` writes to a folder and what
//! the page's `clf.exportBundle()` hands to the user, made in this one place so that a
//! bundle exported from the browser is the one `trainer export --format web` writes.

use crate::bundle::{FORMAT, MANIFEST_FILE, Manifest, ManifestFile};
use crate::error::{Error, Result};
use crate::export::{WeightDtype, hf_state_dict, to_safetensors_as};
use crate::inference::Classifier;

/// What a web bundle's manifest records beside the model itself.
#[derive(Debug, Clone, Default)]
pub struct BundleNotes {
    /// Test (or held-out) metrics of the run that made the model.
    pub metrics: serde_json::Value,
    /// The training settings (and, from the trainer, its command).
    pub training: serde_json::Value,
    /// A free-form note.
    pub note: Option<String>,
}

/// `config.json` as `transformers` loads it: the model's config with its
/// architecture and model type.
pub fn config_json(c: &Classifier) -> Result<Vec<u8>> {
    let mut config = c.config.clone();
    config.extra.insert(
        "architectures".into(),
        serde_json::json!(["BertForSequenceClassification"]),
    );
    config.extra.insert("model_type".into(), "bert".into());
    serde_json::to_vec_pretty(&config)
        .map_err(|e| Error::Execution(format!("cannot serialise config.json: {e}")))
}

/// `tokenizer.json`.
pub fn tokenizer_json(c: &Classifier) -> Result<Vec<u8>> {
    Ok(c.tokenizer
        .inner()
        .to_string(false)
        .map_err(|e| Error::Execution(format!("cannot serialise the tokenizer: {e}")))?
        .into_bytes())
}

/// The web bundle of `c` with its weights stored as `dtype` (f32 as burnpack
/// `model.bpk`, f16 and int8 as `model.safetensors`, quantised by
/// [`crate::export`]'s one quantiser), its tokenization and calibration in the
/// manifest: `(name, bytes)` for the weights, `tokenizer.json`, `config.json` and,
/// last, `manifest.json`. The model's weights must be readable synchronously (on the
/// CPU; see [`crate::model::BertForSequenceClassification::to_host_async`]).
pub fn web_bundle(
    c: &Classifier,
    dtype: WeightDtype,
    notes: BundleNotes,
) -> Result<Vec<(String, Vec<u8>)>> {
    let (weights, bytes) = if dtype == WeightDtype::F32 {
        ("model.bpk", c.model.burnpack_bytes()?)
    } else {
        (
            "model.safetensors",
            to_safetensors_as(&hf_state_dict(&c.model)?, dtype)?,
        )
    };
    let mut files = vec![
        (weights.to_string(), bytes),
        ("tokenizer.json".to_string(), tokenizer_json(c)?),
        ("config.json".to_string(), config_json(c)?),
    ];
    let manifest = Manifest {
        format: FORMAT.into(),
        labels: c.labels.clone(),
        max_len: c.options.max_len,
        truncation: c.options.truncation,
        calibration: c.calibration,
        weights: weights.into(),
        dtype,
        files: files
            .iter()
            .map(|(name, bytes)| ManifestFile::of(name, bytes))
            .collect(),
        metrics: notes.metrics,
        training: notes.training,
        note: notes.note,
    };
    files.push((MANIFEST_FILE.to_string(), manifest.to_json()));
    Ok(files)
}
