//! The fine-tuning recipe's defaults, in one place for `trainer fine-tune` (its flags'
//! defaults) and the page (`clf.fineTune`'s), and which parameters a run trains.

use burn::module::Module;

use crate::error::{Error, Result};
use crate::model::BertForSequenceClassification;

/// Peak learning rate.
pub const DEFAULT_LR: f64 = 5e-5;
/// AdamW weight decay (none on biases and LayerNorm parameters).
pub const DEFAULT_WEIGHT_DECAY: f64 = 0.01;
/// Global gradient-norm clipping.
pub const DEFAULT_CLIP: f64 = 1.0;
/// Fraction of the steps of linear warmup.
pub const DEFAULT_WARMUP: f64 = 0.1;
/// The seed of the data order, the held-out split and dropout.
pub const DEFAULT_SEED: u64 = 42;

/// Which parameters a run updates. A few hundred examples move a whole BERT far;
/// training only the top layers (or the head) keeps what the lower layers know and
/// costs less per step, since autodiff then stops at the first trained layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    /// Every parameter.
    All,
    /// The top `n` transformer layers, the pooler and the classification head;
    /// `Top(0)` is the head (pooler and classifier) only.
    Top(usize),
}

impl Layers {
    /// `"all"`, `"head"` or a number of top layers, as the page's setting and the
    /// JS API's `layers` write it; `what` names the setting in errors.
    pub fn parse(value: &str, what: &str) -> Result<Self> {
        match value.trim() {
            "all" => Ok(Layers::All),
            "head" => Ok(Layers::Top(0)),
            n => n.parse().map(Layers::Top).map_err(|_| {
                Error::InvalidArgument(format!(
                    "{what} `{value}`: expected \"all\", \"head\" or a number of top layers"
                ))
            }),
        }
    }

    /// `model` with the parameters this leaves untrained frozen (no gradients).
    /// `Top(n)` with `n` at or above the layer count trains every layer but the
    /// embeddings.
    pub fn apply(self, mut model: BertForSequenceClassification) -> BertForSequenceClassification {
        let Layers::Top(n) = self else {
            return model;
        };
        let bert = &mut model.bert;
        bert.embeddings = bert.embeddings.clone().no_grad();
        let layers = &mut bert.encoder.layers;
        let frozen = layers.len().saturating_sub(n);
        for layer in layers.iter_mut().take(frozen) {
            *layer = layer.clone().no_grad();
        }
        model
    }
}

impl std::fmt::Display for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layers::All => f.write_str("all"),
            Layers::Top(0) => f.write_str("head"),
            Layers::Top(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_read_as_the_page_writes_them() {
        assert_eq!(Layers::parse("all", "layers").unwrap(), Layers::All);
        assert_eq!(Layers::parse("head", "layers").unwrap(), Layers::Top(0));
        assert_eq!(Layers::parse(" 2 ", "layers").unwrap(), Layers::Top(2));
        let e = Layers::parse("most", "layers").unwrap_err().to_string();
        assert!(e.contains("layers `most`"), "{e}");
        for l in [Layers::All, Layers::Top(0), Layers::Top(3)] {
            assert_eq!(Layers::parse(&l.to_string(), "layers").unwrap(), l);
        }
    }
}
