//! `inference.json`: how a model folder wants its texts tokenized (the max length and
//! truncation it was trained with) and its probabilities calibrated (the temperature
//! and exponent fitted on its validation data, [`crate::calibration`]), written by the
//! trainer beside every model it saves or exports and read by whatever loads that folder.
//!
//! One type, read and written by the same code, so the trainer, `predict`, `evaluate`,
//! `export` and the page cannot disagree on the file's shape.

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::inference::InferenceOptions;
use crate::tokenizer::Truncation;

/// The contents of `inference.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InferenceSettings {
    /// Tokens per text, special tokens included.
    pub max_len: usize,
    /// How longer texts are shortened.
    pub truncation: Truncation,
    /// How the logits become probabilities: [`Calibration::NONE`] for a model never
    /// calibrated (and in files written before calibration existed).
    #[serde(flatten)]
    pub calibration: Calibration,
}

impl InferenceSettings {
    /// The file's name inside a model folder.
    pub const FILE: &'static str = "inference.json";

    /// The settings of `options` (its batch size is a run-time choice, not stored)
    /// with `calibration`.
    pub fn of(options: &InferenceOptions, calibration: Calibration) -> Self {
        Self {
            max_len: options.max_len,
            truncation: options.truncation,
            calibration,
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
        let s: Self = serde_json::from_slice(bytes).map_err(|e| {
            Error::config(source_name, format!("not valid inference settings: {e}"))
        })?;
        s.calibration.check(source_name)?;
        Ok(s)
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain fields serialise")
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
        let mut s = InferenceSettings {
            max_len: 256,
            truncation: Truncation::HeadTail,
            calibration: Calibration::NONE,
        };
        // A file from before calibration existed reads as uncalibrated.
        let old = br#"{"max_len":256,"truncation":"head+tail"}"#;
        assert_eq!(InferenceSettings::from_json(old, "x").unwrap(), s);
        s.calibration = Calibration {
            temperature: 1.75,
            exponent: 2.5,
        };
        let bytes = s.to_json();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"max_len":256,"truncation":"head+tail","temperature":1.75,"exponent":2.5}"#
        );
        assert_eq!(InferenceSettings::from_json(&bytes, "x").unwrap(), s);
        // A file with a temperature but no exponent: plain temperature scaling.
        let t_only = br#"{"max_len":256,"truncation":"head+tail","temperature":1.75}"#;
        let read = InferenceSettings::from_json(t_only, "x").unwrap();
        assert_eq!(read.calibration, Calibration::temperature(1.75));
        let err = InferenceSettings::from_json(
            br#"{"max_len":256,"truncation":"head","temperature":0}"#,
            "run/inference.json",
        );
        assert!(err.unwrap_err().to_string().contains("run/inference.json"));
        let err = InferenceSettings::from_json(b"{\"max_len\": \"long\"}", "run/inference.json");
        assert!(err.unwrap_err().to_string().contains("run/inference.json"));
    }
}
