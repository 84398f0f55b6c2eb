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

/// The softmax + dropout training op on flex ([`crate::kernels::train`]), where built.
#[cfg(feature = "native")]
fn fused_probs(
    scores: &Tensor<4>,
    padding_mask: &Tensor<2, Bool>,
    scale: f32,
    dropout: &Dropout,
) -> Option<Tensor<4>> {
    crate::kernels::train::attention_probs(scores, padding_mask, scale, dropout)
}

/// Without the `native` feature (wasm: no training there), burn's ops.
#[cfg(not(feature = "native"))]
fn fused_probs(_: &Tensor<4>, _: &Tensor<2, Bool>, _: f32, _: &Dropout) -> Option<Tensor<4>> {
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
        let qkv = self.qkv.forward(x.clone());
        let training = self.attention_dropout.prob > 0.0
            && x.device().is_autodiff()
            && self.attention_dropout.training.is_enabled();
        // Inference on the CPU: one fused kernel on flex's buffers (see `kernels`); it
        // declines autodiff tensors, so training always takes burn's ops below.
        let context = match crate::kernels::self_attention(&qkv, &padding_mask, self.num_heads) {
            Some(context) => context,
            None => self.attention(qkv, padding_mask, training),
        };
        let out = super::dropout(&self.dropout, self.output.forward(context));
        self.layer_norm.forward(out + x)
    }

    /// Attention through burn's ops (any backend, autodiff): `[batch, seq, 3·hidden]`
    /// projections in, merged `[batch, seq, hidden]` context out.
    fn attention(
        &self,
        qkv: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
        training: bool,
    ) -> Tensor<3> {
        let [batch, seq, width] = qkv.dims();
        let hidden = width / 3;
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        // [b, s, 3h] -> [b, 3·heads, s, head_dim]
        let qkv = qkv
            .reshape([batch, seq, 3 * heads, head_dim])
            .swap_dims(1, 2);
        let q = qkv.clone().narrow(1, 0, heads);
        let k = qkv.clone().narrow(1, heads, heads);
        let v = qkv.narrow(1, 2 * heads, heads);
        let mask = padding_mask
            .clone()
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]);

        let context = if training {
            // Training: the fused kernel has no dropout, so spell attention out; on flex
            // the softmax and dropout are one op with its own backward pass.
            let scale = 1.0 / (head_dim as f64).sqrt();
            let scores = q.matmul(k.swap_dims(2, 3));
            let fused = fused_probs(
                &scores,
                &padding_mask,
                scale as f32,
                &self.attention_dropout,
            );
            let probs = fused.unwrap_or_else(|| {
                let probs = softmax((scores * scale).mask_fill(mask, -1.0e9), 3);
                super::dropout(&self.attention_dropout, probs)
            });
            probs.matmul(v)
        } else {
            attention(q, k, v, Some(mask), None, AttentionModuleOptions::default())
        };
        context.swap_dims(1, 2).reshape([batch, seq, hidden])
    }
}
