//! Training ops on flex, each one autodiff node with its own backward pass where burn
//! spells the same arithmetic out as several ops with fresh tensors (profiled on a
//! training step, batch 16 × 256 tokens):
//!
//! - [`attention_block`] (forward in `attention`, backward in `attention_backward`): the attention core (scores, masked softmax, dropout,
//!   context) for all heads, straight from the fused projections to the merged
//!   context. Spelled out, that is a head split, two batched matmuls and the softmax
//!   over `[batch, heads, seq, seq]`, and a head merge.
//! - [`linear`]: `x·W + b` with its three gradients, each written once: flex's matmul
//!   zeroes each output and then copies it into an aligned buffer.
//! - [`gelu`]: the exact GELU: flex's and its gradient call `libm`'s scalar `erf` and
//!   `exp` (11% of a step); here both use the vectorised ones of the inference kernels.
//!
//! Dropout masks are never stored: they come from [`crate::kernels::dropout_mask`]'s hash and
//! are regenerated from their key in the backward pass.
//!
//! Each op declines (returns `None`) anything but f32 tensors on flex with autodiff;
//! the tests hold every op against burn's own ops, forward and backward.

mod attention;
mod attention_backward;
mod gelu;
mod linear;
#[cfg(test)]
mod tests;

pub use attention::attention_block;
pub use gelu::gelu;
pub use linear::linear;

use burn::prelude::*;
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::ops::{Backward, NodeGuard, OpsKind};
use burn_flex::{Flex, FlexTensor};

use crate::kernels::f32_tensor;

type Ad = Autodiff<Flex, NoCheckpointing>;

/// Whether `device` is flex with autodiff: where these ops apply (`Ad`).
fn on_flex_autodiff(device: &Device) -> bool {
    device.is_autodiff() && device.clone().inner() == Device::flex()
}

/// Register `op` as the graph node making `out` from the tensors behind `nodes`, keeping
/// `state` for its backward pass (dropped when nothing needs a gradient).
fn track<O: Backward<Flex, N>, const N: usize, const D: usize>(
    op: O,
    nodes: [NodeGuard; N],
    state: O::State,
    out: FlexTensor,
) -> Tensor<D> {
    let tracked = match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Ad>(tracked)
}

/// A contiguous f32 flex tensor of `like`'s shape.
fn flex_shaped(data: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    f32_tensor(data, like.layout().shape().clone())
}
