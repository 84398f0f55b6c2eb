//! The encoder stack for CPU inference: every layer in one fused kernel
//! ([`crate::kernels::stack`]), which packs the batch's real tokens and runs each layer
//! as five passes over three scratch buffers.

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use super::{ExecutionPath, MatmulPrecision};
use crate::config::Activation;
use crate::kernels::stack::{self, Dense, LayerParams, Norm};

/// One encoder layer's modules, borrowed, as the fused stack reads them.
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    /// Fused `[q | k | v]` projection.
    pub qkv: &'a Linear,
    /// Attention output projection.
    pub attention_output: &'a Linear,
    /// LayerNorm after attention.
    pub attention_norm: &'a LayerNorm,
    /// Feed-forward up-projection.
    pub intermediate: &'a Linear,
    /// Feed-forward down-projection.
    pub output: &'a Linear,
    /// LayerNorm after the feed-forward block.
    pub output_norm: &'a LayerNorm,
    /// The LayerNorms' epsilon (burn keeps its copy private).
    pub layer_norm_eps: f64,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward activation.
    pub activation: Activation,
}

impl LayerWeights<'_> {
    /// The flex f32 buffers behind the modules, or `None` (weights elsewhere or in
    /// another dtype).
    fn params(&self, precision: MatmulPrecision) -> Option<LayerParams> {
        let dense = |linear: &Linear| Dense::new(linear, precision);
        Some(LayerParams {
            qkv: dense(self.qkv)?,
            attention_output: dense(self.attention_output)?,
            attention_norm: Norm::new(self.attention_norm, self.layer_norm_eps)?,
            intermediate: dense(self.intermediate)?,
            output: dense(self.output)?,
            output_norm: Norm::new(self.output_norm, self.layer_norm_eps)?,
            heads: self.heads,
            activation: self.activation,
        })
    }
}

/// The kernel's parameters for every layer, when `path` is CPU inference and every
/// weight is an f32 flex tensor.
fn all_params(
    path: ExecutionPath,
    layers: &[LayerWeights],
    precision: MatmulPrecision,
) -> Option<Vec<LayerParams>> {
    if path != ExecutionPath::FusedCpu {
        return None;
    }
    layers.iter().map(|l| l.params(precision)).collect()
}

/// Every layer over `x` (`[batch, seq, hidden]`). `Err(x)` hands the input back,
/// untouched, when the stack does not apply (another path, other weights, shapes
/// that do not chain): the caller then runs the modules.
#[allow(clippy::result_large_err)] // handing the tensor back is the point; no copy is made
pub fn encoder_stack(
    path: ExecutionPath,
    layers: &[LayerWeights],
    precision: MatmulPrecision,
    x: Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
) -> Result<Tensor<3>, Tensor<3>> {
    match all_params(path, layers, precision) {
        Some(params) => stack::encoder(&params, x, padding_mask),
        None => Err(x),
    }
}

/// [`encoder_stack`]'s final state at each sequence's first position (`[CLS]`):
/// `[batch, hidden]`, with the last layer computed for that position only.
#[allow(clippy::result_large_err)] // as `encoder_stack`
pub fn encoder_stack_first_token(
    path: ExecutionPath,
    layers: &[LayerWeights],
    precision: MatmulPrecision,
    x: Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
) -> Result<Tensor<2>, Tensor<3>> {
    match all_params(path, layers, precision) {
        Some(params) => stack::encoder_first_token(&params, x, padding_mask),
        None => Err(x),
    }
}
