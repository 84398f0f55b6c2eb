//! Word + position + token-type embeddings, summed, then LayerNorm and dropout.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm};
use burn::prelude::*;

use super::{layer_norm, load_layer_norm};
use crate::config::BertConfig;
use crate::error::Result;
use crate::ops::{self, ExecutionPath};
use crate::weights::Checkpoint;

/// `BertEmbeddings`.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab, hidden]`.
    pub word_embeddings: Embedding,
    /// `[max_positions, hidden]`; absolute positions 0..seq.
    pub position_embeddings: Embedding,
    /// `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding,
    /// Normalises the sum.
    pub layer_norm: LayerNorm,
    /// Active only while training.
    pub dropout: Dropout,
    /// The LayerNorm's epsilon (burn keeps its copy private; the fused one needs it).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

fn embedding(config: &BertConfig, n: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(n, config.hidden_size)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: config.initializer_range,
        })
        .init(device)
}

impl BertEmbeddings {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            word_embeddings: embedding(config, config.vocab_size, device),
            position_embeddings: embedding(config, config.max_position_embeddings, device),
            token_type_embeddings: embedding(config, config.type_vocab_size, device),
            layer_norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Weights from `embeddings.*`.
    pub fn load(config: &BertConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        let h = config.hidden_size;
        let mut take = |name: &str, n: usize| -> Result<Embedding> {
            let w = ckpt.take(&format!("embeddings.{name}.weight"), [n, h], device)?;
            Ok(Embedding {
                weight: Param::from_tensor(w),
            })
        };
        Ok(Self {
            word_embeddings: take("word_embeddings", config.vocab_size)?,
            position_embeddings: take("position_embeddings", config.max_position_embeddings)?,
            token_type_embeddings: take("token_type_embeddings", config.type_vocab_size)?,
            layer_norm: load_layer_norm(config, ckpt, "embeddings", device)?,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        })
    }

    /// `[batch, seq]` ids → `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let words =
            self.word_embeddings.forward(input_ids) + self.position_embeddings.forward(positions);
        let types = self.token_type_embeddings.forward(token_type_ids);
        let path = ExecutionPath::of(&words);
        let eps = self.layer_norm_eps;
        let x = ops::add_norm(path, &self.layer_norm, eps, words, types);
        ops::dropout(path, &self.dropout, x)
    }
}
