//! Multi-head self-attention with the residual + LayerNorm that follows it
//! (`BertAttention` = `BertSelfAttention` + `BertSelfOutput`).
//!
//! Query, key and value are one fused `[hidden, 3·hidden]` projection: one GEMM
//! instead of three, which matters on CPU where the layer is matmul-bound.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::prelude::*;

use super::{layer_norm, linear, load_layer_norm, load_linear};
use crate::config::BertConfig;
use crate::error::Result;
use crate::hf_names::{QKV_PARTS, qkv_name};
use crate::ops::{self, ExecutionPath};
use crate::weights::{Checkpoint, linear_weight};

/// Self-attention block of one layer.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Fused query/key/value projection, outputs `[q | k | v]`.
    pub qkv: Linear,
    /// Output projection (`attention.output.dense`).
    pub output: Linear,
    /// `attention.output.LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Dropout on the attention probabilities (training only).
    pub attention_dropout: Dropout,
    /// Dropout on the output projection (training only).
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// The LayerNorm's epsilon (burn keeps its copy private; the GPU kernel needs it).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl SelfAttention {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            qkv: linear(config, h, 3 * h, device),
            output: linear(config, h, h, device),
            layer_norm: layer_norm(config, device),
            attention_dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Weights from `{prefix}.attention.*`.
    pub fn load(
        config: &BertConfig,
        ckpt: &mut Checkpoint,
        prefix: &str,
        device: &Device,
    ) -> Result<Self> {
        let h = config.hidden_size;
        // Fuse on the host so the parameters are leaf tensors (trainable on autodiff
        // devices): the three `[out, in]` weights one after another are the fused
        // `[3h, in]` PyTorch-layout weight, which burn sees as `[h, 3h]` (`[q | k | v]`).
        let mut weights = Vec::with_capacity(3 * h * h);
        let mut bias = Vec::with_capacity(3 * h);
        for part in QKV_PARTS {
            let name = qkv_name(prefix, part);
            weights.extend(ckpt.take_raw(&format!("{name}.weight"), &[h, h])?.data);
            bias.extend(ckpt.take_raw(&format!("{name}.bias"), &[h])?.data);
        }
        let qkv = Linear {
            weight: Param::from_tensor(linear_weight(weights, 3 * h, h, device)),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(bias, [3 * h]),
                device,
            ))),
        };
        Ok(Self {
            qkv,
            output: load_linear(
                ckpt,
                &format!("{prefix}.attention.output.dense"),
                h,
                h,
                device,
            )?,
            layer_norm: load_layer_norm(
                config,
                ckpt,
                &format!("{prefix}.attention.output"),
                device,
            )?,
            attention_dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            layer_norm_eps: config.layer_norm_eps,
        })
    }

    /// `x`: `[batch, seq, hidden]`; `padding_mask`: `[batch, seq]`, true at padding.
    pub fn forward(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        let seq = x.dims()[1];
        self.forward_queries(ExecutionPath::of(&x), x, padding_mask, seq)
    }

    /// [`Self::forward`] for the first position's query only (over every key):
    /// `[batch, 1, hidden]`. The classifier's last layer off the fused stack.
    pub fn forward_first(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        self.forward_queries(ExecutionPath::of(&x), x, padding_mask, 1)
    }

    /// The block for the first `queries` positions' queries (over every key), with
    /// their residuals: `[batch, queries, hidden]`.
    pub(crate) fn forward_queries(
        &self,
        path: ExecutionPath,
        x: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
        queries: usize,
    ) -> Tensor<3> {
        let qkv = ops::linear(path, &self.qkv, x.clone());
        let context = ops::attention(
            path,
            qkv,
            padding_mask,
            self.num_heads,
            queries,
            &self.attention_dropout,
        );
        ops::project_add_norm(
            path,
            &self.output,
            &self.dropout,
            &self.layer_norm,
            self.layer_norm_eps,
            context,
            x.narrow(1, 0, queries),
        )
    }
}
