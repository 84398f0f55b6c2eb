//! [`BertConfig`], read straight from a Hugging Face `config.json`.
//!
//! The field names and defaults are those of `transformers.BertConfig`, so any BERT
//! checkpoint on the hub (and any file `save_pretrained` wrote) deserialises as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The activation inside the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `gelu`: the exact erf-based GELU that BERT was trained with.
    #[serde(rename = "gelu")]
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    /// `relu`.
    #[serde(rename = "relu")]
    Relu,
}

fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}
fn default_act() -> Activation {
    Activation::Gelu
}
fn default_type_vocab() -> usize {
    2
}
fn default_max_pos() -> usize {
    512
}
fn default_position_type() -> String {
    "absolute".into()
}

/// A BERT configuration, as in `config.json`.
///
/// Unknown keys are kept in [`BertConfig::extra`] so that writing the config back
/// (for the `hf` export) loses nothing `transformers` might want.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// WordPiece vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence the position embeddings cover.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Number of segment (token type) ids.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    /// Dropout on embeddings and residual branches while training.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities while training.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Dropout before the classifier; `None` means "use `hidden_dropout_prob`".
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    /// Id of the `[PAD]` token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Std of the normal initialiser for new weights (the classifier head).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Only `absolute` is supported.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    /// Class index to label name, when the checkpoint is a classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    /// Label name to class index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Every other key of `config.json`, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Parse `config.json` text; `source_name` names the file in errors.
    pub fn from_json_str(json: &str, source_name: &str) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(json)
            .map_err(|e| Error::config(source_name, format!("not a BERT config.json: {e}")))?;
        config.validate(source_name)?;
        Ok(config)
    }

    /// Read and parse a `config.json` file.
    #[cfg(feature = "native")]
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Check the invariants the model code relies on.
    pub fn validate(&self, source_name: &str) -> Result<()> {
        let bad = |m: String| Err(Error::config(source_name, m));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return bad(
                "hidden_size, num_attention_heads and num_hidden_layers must be positive".into(),
            );
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                self.position_embedding_type
            ));
        }
        for p in [self.hidden_dropout_prob, self.attention_probs_dropout_prob] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("dropout probability {p} is not in [0, 1)"));
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Dropout probability of the classification head.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// Label names in class-index order: from `id2label` when the checkpoint has
    /// meaningful ones, else `negative`/`positive` for two classes.
    ///
    /// `transformers` fills `id2label` with `LABEL_0`, `LABEL_1`... when nobody set it;
    /// those are treated as "not set".
    pub fn labels(&self) -> Vec<String> {
        if let Some(map) = &self.id2label {
            let mut pairs: Vec<(usize, &String)> = map
                .iter()
                .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
                .collect();
            pairs.sort();
            let generic = pairs.iter().all(|(i, v)| **v == format!("LABEL_{i}"));
            let dense = pairs.iter().enumerate().all(|(n, (i, _))| n == *i);
            if !pairs.is_empty() && dense && !(generic && pairs.len() == 2) {
                return pairs.into_iter().map(|(_, v)| v.clone()).collect();
            }
        }
        vec!["negative".into(), "positive".into()]
    }

    /// Record label names as `id2label`/`label2id` (what `save_pretrained` writes).
    pub fn set_labels(&mut self, labels: &[String]) {
        self.id2label = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), l.clone()))
                .collect(),
        );
        self.label2id = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i))
                .collect(),
        );
    }

    /// A small random-weight configuration for tests and examples.
    pub fn tiny(vocab_size: usize) -> Self {
        let json = serde_json::json!({
            "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "vocab_size": vocab_size, "max_position_embeddings": 128,
            "model_type": "bert", "architectures": ["BertForSequenceClassification"],
        });
        serde_json::from_value(json).expect("static tiny config is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hf_config_and_keeps_unknown_keys() {
        let json = r#"{"architectures":["BertModel"],"hidden_size":384,"num_hidden_layers":6,
            "num_attention_heads":12,"intermediate_size":1536,"vocab_size":30522,
            "hidden_act":"gelu","layer_norm_eps":1e-12,"model_type":"bert","gradient_checkpointing":false}"#;
        let c = BertConfig::from_json_str(json, "config.json").unwrap();
        assert_eq!(c.head_dim(), 32);
        assert_eq!(c.hidden_act, Activation::Gelu);
        assert_eq!(c.extra["model_type"], "bert");
        assert_eq!(c.labels(), vec!["negative", "positive"]);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["gradient_checkpointing"], false);
    }

    #[test]
    fn generic_label_names_fall_back_to_sentiment() {
        let mut c = BertConfig::tiny(10);
        c.set_labels(&["LABEL_0".into(), "LABEL_1".into()]);
        assert_eq!(c.labels(), vec!["negative", "positive"]);
        c.set_labels(&["neg".into(), "pos".into(), "neutral".into()]);
        assert_eq!(c.labels(), vec!["neg", "pos", "neutral"]);
    }

    #[test]
    fn rejects_bad_head_count() {
        let json = r#"{"hidden_size":30,"num_hidden_layers":1,"num_attention_heads":4,
            "intermediate_size":8,"vocab_size":10}"#;
        let err = BertConfig::from_json_str(json, "x/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x/config.json") && err.contains("not a multiple"),
            "{err}"
        );
    }
}
