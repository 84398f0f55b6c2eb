//! `inference.json`: how a model folder wants its texts tokenized (the max length and
//! truncation it was trained with), written by the trainer beside every model it saves
//! or exports and read by whatever loads that folder.
//!
//! One type, read and written by the same code, so the trainer, `predict`, `evaluate`,
//! `export` and the page cannot disagree on the file's shape.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inference::InferenceOptions;
use crate::tokenizer::Truncation;

/// The contents of `inference.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceSettings {
    /// Tokens per text, special tokens included.
    pub max_len: usize,
    /// How longer texts are shortened.
    pub truncation: Truncation,
}

impl InferenceSettings {
    /// The file's name inside a model folder.
    pub const FILE: &'static str = "inference.json";

    /// The settings of `options` (its batch size is a run-time choice, not stored).
    pub fn of(options: &InferenceOptions) -> Self {
        Self {
            max_len: options.max_len,
            truncation: options.truncation,
        }
    }

    /// Inference options with these settings and `batch_size`.
    pub fn options(&self, batch_size: usize) -> InferenceOptions {
        InferenceOptions {
            max_len: self.max_len,
            truncation: self.truncation,
            batch_size,
        }
    }

    /// Parse the file's bytes; `source_name` names it in errors.
    pub fn from_json(bytes: &[u8], source_name: &str) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::config(source_name, format!("not valid inference settings: {e}")))
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("two plain fields serialise")
    }

    /// The settings recorded in model folder `dir`: `None` when it has no
    /// `inference.json`, an error naming the file when it has a broken one.
    #[cfg(feature = "native")]
    pub fn read_dir(dir: &std::path::Path) -> Result<Option<Self>> {
        let path = dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Self::from_json(&bytes, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_keeps_its_shape() {
        let s = InferenceSettings {
            max_len: 256,
            truncation: Truncation::HeadTail,
        };
        let bytes = s.to_json();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"max_len":256,"truncation":"head+tail"}"#
        );
        assert_eq!(InferenceSettings::from_json(&bytes, "x").unwrap(), s);
        let err = InferenceSettings::from_json(b"{\"max_len\": \"long\"}", "run/inference.json");
        assert!(err.unwrap_err().to_string().contains("run/inference.json"));
    }
}
