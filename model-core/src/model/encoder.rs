//! The post-LayerNorm transformer layers: attention, then a GELU feed-forward block,
//! each followed by residual + LayerNorm.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, relu};

use super::{SelfAttention, layer_norm, linear, load_layer_norm, load_linear};
use crate::config::{Activation, BertConfig};
use crate::error::Result;
use crate::weights::Checkpoint;

/// One encoder layer (`BertLayer`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention with its output LayerNorm.
    pub attention: SelfAttention,
    /// `intermediate.dense`: hidden → intermediate.
    pub intermediate: Linear,
    /// `output.dense`: intermediate → hidden.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Residual-branch dropout (training only).
    pub dropout: Dropout,
    /// Feed-forward activation.
    #[module(skip)]
    pub activation: Activation,
}

impl BertLayer {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Self {
            attention: SelfAttention::init(config, device),
            intermediate: linear(config, h, i, device),
            output: linear(config, i, h, device),
            layer_norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.hidden_act,
        }
    }

    /// Weights from `encoder.layer.{index}.*`.
    pub fn load(
        config: &BertConfig,
        ckpt: &mut Checkpoint,
        index: usize,
        device: &Device,
    ) -> Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let p = format!("encoder.layer.{index}");
        Ok(Self {
            attention: SelfAttention::load(config, ckpt, &p, device)?,
            intermediate: load_linear(ckpt, &format!("{p}.intermediate.dense"), h, i, device)?,
            output: load_linear(ckpt, &format!("{p}.output.dense"), i, h, device)?,
            layer_norm: load_layer_norm(config, ckpt, &format!("{p}.output"), device)?,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.hidden_act,
        })
    }

    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        let x = self.attention.forward(x, padding_mask);
        let h = self.intermediate.forward(x.clone());
        let h = match self.activation {
            Activation::Gelu => crate::kernels::gelu(h),
            Activation::GeluTanh => gelu_approximate(h),
            Activation::Relu => relu(h),
        };
        let h = self.dropout.forward(self.output.forward(h));
        self.layer_norm.forward(h + x)
    }
}

/// The stack of layers.
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// `encoder.layer.*`.
    pub layers: Vec<BertLayer>,
}

impl BertEncoder {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            layers: (0..config.num_hidden_layers)
                .map(|_| BertLayer::init(config, device))
                .collect(),
        }
    }

    /// Weights from `encoder.layer.*`.
    pub fn load(config: &BertConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(config, ckpt, i, device))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Run every layer.
    pub fn forward(&self, mut x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, padding_mask.clone());
        }
        x
    }
}
