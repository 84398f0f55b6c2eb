//! The BERT network in burn, one file per block, each with an `init` (fresh weights
//! from the config) and a `load` (weights from a Hugging Face checkpoint).
//!
//! Names follow `transformers`' module tree so that the checkpoint names in
//! [`crate::weights`] map onto fields one to one. The modules are plain burn: every
//! projection, activation, dropout and attention core goes through [`crate::ops`],
//! which picks the implementation for the forward pass's [`crate::ops::ExecutionPath`].

mod attention;
mod classifier;
mod embeddings;
mod encoder;
mod host;
mod pooler;

pub use attention::SelfAttention;
pub use classifier::BertForSequenceClassification;
pub use embeddings::BertEmbeddings;
pub use encoder::{BertEncoder, BertLayer};
pub use pooler::BertPooler;

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;

use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::Checkpoint;

/// The token ids of one padded batch, on the device.
#[derive(Debug, Clone)]
pub struct BertInput {
    /// `[batch, seq]` WordPiece ids.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]` segment ids (all zero for single sentences).
    pub token_type_ids: Tensor<2, Int>,
    /// `[batch, seq]`, true where the position is padding.
    pub padding_mask: Tensor<2, Bool>,
}

/// Outputs of the bare encoder, as `BertModel` returns them.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// `[batch, seq, hidden]` final hidden states.
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]` pooler output: `tanh(W · h[CLS] + b)`.
    pub pooler_output: Tensor<2>,
}

/// `BertModel`: embeddings, encoder stack and pooler.
#[derive(Module, Debug)]
pub struct BertModel {
    /// Word, position and token-type embeddings.
    pub embeddings: BertEmbeddings,
    /// The transformer layers.
    pub encoder: BertEncoder,
    /// Dense + tanh on the `[CLS]` state.
    pub pooler: BertPooler,
}

impl BertModel {
    /// Fresh, randomly initialised weights (lazy: no work until used or overwritten).
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            embeddings: BertEmbeddings::init(config, device),
            encoder: BertEncoder::init(config, device),
            pooler: BertPooler::init(config, device),
        }
    }

    /// Weights from a checkpoint.
    pub fn load(config: &BertConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        Ok(Self {
            embeddings: BertEmbeddings::load(config, ckpt, device)?,
            encoder: BertEncoder::load(config, ckpt, device)?,
            pooler: BertPooler::load(config, ckpt, device)?,
        })
    }

    /// Run the encoder.
    pub fn forward(&self, input: &BertInput) -> BertOutput {
        let x = self
            .embeddings
            .forward(input.input_ids.clone(), input.token_type_ids.clone());
        let last_hidden_state = self.encoder.forward(x, input.padding_mask.clone());
        let pooler_output = self.pooler.forward(last_hidden_state.clone());
        BertOutput {
            last_hidden_state,
            pooler_output,
        }
    }

    /// The pooler output alone, `[batch, hidden]`: what a classifier needs. Same
    /// values as `forward(..).pooler_output`, without the other positions' final
    /// states (see [`BertEncoder::forward_first_token`]).
    pub fn pooled(&self, input: &BertInput) -> Tensor<2> {
        let x = self
            .embeddings
            .forward(input.input_ids.clone(), input.token_type_ids.clone());
        let cls = self
            .encoder
            .forward_first_token(x, input.padding_mask.clone());
        self.pooler.forward_cls(cls)
    }
}

/// A `Linear` from a PyTorch `nn.Linear` named `prefix` (`prefix.weight`, `prefix.bias`).
pub(crate) fn load_linear(
    ckpt: &mut Checkpoint,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear> {
    let weight = ckpt.take_linear_weight(&format!("{prefix}.weight"), d_out, d_in, device)?;
    let bias = ckpt.take(&format!("{prefix}.bias"), [d_out], device)?;
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    })
}

/// A `LayerNorm` from `prefix.LayerNorm.{weight,bias}`.
pub(crate) fn load_layer_norm(
    config: &BertConfig,
    ckpt: &mut Checkpoint,
    prefix: &str,
    device: &Device,
) -> Result<LayerNorm> {
    let d = config.hidden_size;
    let mut ln = layer_norm(config, device);
    ln.gamma = Param::from_tensor(ckpt.take(&format!("{prefix}.LayerNorm.weight"), [d], device)?);
    ln.beta = Some(Param::from_tensor(ckpt.take(
        &format!("{prefix}.LayerNorm.bias"),
        [d],
        device,
    )?));
    Ok(ln)
}

/// A fresh LayerNorm with the config's epsilon.
pub(crate) fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

/// A fresh `Linear` initialised as `transformers` does: N(0, initializer_range), zero bias.
pub(crate) fn linear(config: &BertConfig, d_in: usize, d_out: usize, device: &Device) -> Linear {
    burn::nn::LinearConfig::new(d_in, d_out)
        .with_initializer(burn::nn::Initializer::Normal {
            mean: 0.0,
            std: config.initializer_range,
        })
        .init(device)
        .with_zero_bias()
}

trait ZeroBias {
    fn with_zero_bias(self) -> Self;
}

impl ZeroBias for Linear {
    fn with_zero_bias(mut self) -> Self {
        if let Some(bias) = &self.bias {
            let device = bias.device();
            let [d] = bias.dims();
            self.bias = Some(Param::from_tensor(Tensor::zeros([d], &device)));
        }
        self
    }
}
