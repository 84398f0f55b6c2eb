//! Multi-head self-attention with the residual + LayerNorm that follows it
//! (`BertAttention` = `BertSelfAttention` + `BertSelfOutput`).
//!
//! Query, key and value are one fused `[hidden, 3·hidden]` projection: one GEMM
//! instead of three, which matters on CPU where the layer is matmul-bound.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::{layer_norm, linear, load_layer_norm, load_linear};
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::Checkpoint;

/// The attention training op on flex ([`crate::kernels::train::attention_block`]),
/// where built: `[batch, seq, 3·hidden]` in, `[batch, queries, hidden]` out.
#[cfg(feature = "native")]
fn fused_block(
    qkv: &Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
    heads: usize,
    queries: usize,
    dropout: &Dropout,
) -> Option<Tensor<3>> {
    crate::kernels::train::attention_block(qkv, padding_mask, heads, queries, dropout)
}

/// Without the `native` feature (wasm: no training there), burn's ops.
#[cfg(not(feature = "native"))]
fn fused_block(
    _: &Tensor<3>,
    _: &Tensor<2, Bool>,
    _: usize,
    _: usize,
    _: &Dropout,
) -> Option<Tensor<3>> {
    None
}

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
        // Fuse on the host so the parameters are leaf tensors (trainable on autodiff devices).
        let mut weight = vec![0.0f32; h * 3 * h];
        let mut bias = Vec::with_capacity(3 * h);
        for (k, part) in ["query", "key", "value"].iter().enumerate() {
            let name = format!("{prefix}.attention.self.{part}");
            let w = ckpt.take_raw(&format!("{name}.weight"), &[h, h])?; // [out, in]
            for o in 0..h {
                for i in 0..h {
                    weight[i * 3 * h + k * h + o] = w.data[o * h + i];
                }
            }
            bias.extend(ckpt.take_raw(&format!("{name}.bias"), &[h])?.data);
        }
        let qkv = Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [h, 3 * h]),
                device,
            )),
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
        })
    }

    /// `x`: `[batch, seq, hidden]`; `padding_mask`: `[batch, seq]`, true at padding.
    pub fn forward(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        let seq = x.dims()[1];
        self.forward_queries(x, padding_mask, seq)
    }

    /// [`Self::forward`] for the first position's query only (over every key):
    /// `[batch, 1, hidden]`. The classifier's last layer, on burn's ops (training, GPU).
    pub fn forward_first(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        self.forward_queries(x, padding_mask, 1)
    }

    /// The block for the first `queries` positions' queries (over every key), with
    /// their residuals: `[batch, queries, hidden]`.
    fn forward_queries(
        &self,
        x: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
        queries: usize,
    ) -> Tensor<3> {
        let qkv = super::project(&self.qkv, x.clone());
        let training = self.attention_dropout.prob > 0.0
            && x.device().is_autodiff()
            && self.attention_dropout.training.is_enabled();
        // Inference on the CPU for every query: one fused kernel on flex's buffers (see
        // `kernels`); it declines autodiff tensors, so training takes `attention`.
        let fused = if queries == x.dims()[1] {
            crate::kernels::self_attention(&qkv, &padding_mask, self.num_heads)
        } else {
            None
        };
        let context = match fused {
            Some(context) => context,
            None => self.attention(qkv, padding_mask, training, queries),
        };
        let out = super::dropout(&self.dropout, super::project(&self.output, context));
        self.layer_norm.forward(out + x.narrow(1, 0, queries))
    }

    /// Attention through burn's ops (any backend, autodiff): `[batch, seq, 3·hidden]`
    /// projections in, merged `[batch, queries, hidden]` context out for the first
    /// `queries` positions' queries.
    fn attention(
        &self,
        qkv: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
        training: bool,
        queries: usize,
    ) -> Tensor<3> {
        // On flex autodiff (CPU training): the whole block as one op.
        if let Some(context) = fused_block(
            &qkv,
            &padding_mask,
            self.num_heads,
            queries,
            &self.attention_dropout,
        ) {
            return context;
        }
        let [batch, seq, width] = qkv.dims();
        let hidden = width / 3;
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        // [b, s, 3h] -> [b, 3·heads, s, head_dim]
        let qkv = qkv
            .reshape([batch, seq, 3 * heads, head_dim])
            .swap_dims(1, 2);
        let q = qkv.clone().narrow(1, 0, heads);
        let q = if queries < seq {
            q.narrow(2, 0, queries)
        } else {
            q
        };
        let k = qkv.clone().narrow(1, heads, heads);
        let v = qkv.narrow(1, 2 * heads, heads);
        let mask = padding_mask
            .clone()
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, queries, seq]);

        let context = if training {
            // Training elsewhere (wgpu): burn's attention has no dropout, so spell it out.
            let scale = 1.0 / (head_dim as f64).sqrt();
            let scores = q.matmul(k.swap_dims(2, 3));
            let probs = softmax((scores * scale).mask_fill(mask, -1.0e9), 3);
            super::dropout(&self.attention_dropout, probs).matmul(v)
        } else {
            attention(q, k, v, Some(mask), None, AttentionModuleOptions::default())
        };
        context.swap_dims(1, 2).reshape([batch, queries, hidden])
    }
}
