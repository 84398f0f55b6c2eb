//! The attention core: `[batch, seq, 3·hidden]` fused projections in, the merged
//! context of the first `queries` positions out (`[batch, queries, hidden]`), over
//! every key, with dropout on the probabilities while training.

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::ExecutionPath;

/// The attention core on `path`: the fused inference kernel for every query on the
/// CPU, the training op with its own backward pass for CPU training, one kernel off
/// the fused projection for GPU inference, burn's ops otherwise (and wherever a
/// kernel declines).
pub fn attention(
    path: ExecutionPath,
    qkv: Tensor<3>,
    padding_mask: Tensor<2, Bool>,
    heads: usize,
    queries: usize,
    dropout: &Dropout,
) -> Tensor<3> {
    let [_, seq, width] = qkv.dims();
    #[cfg(feature = "gpu")]
    if path == ExecutionPath::GpuInference && heads > 0 && width % (3 * heads) == 0 {
        return crate::kernels::gpu::attention_core(qkv, padding_mask, heads, queries);
    }
    let _ = width;
    let fused = match path {
        ExecutionPath::FusedCpu if queries == seq => {
            crate::kernels::self_attention(&qkv, &padding_mask, heads)
        }
        #[cfg(feature = "train")]
        ExecutionPath::CpuTraining => {
            crate::kernels::train::attention_block(&qkv, &padding_mask, heads, queries, dropout)
        }
        _ => None,
    };
    match fused {
        Some(context) => context,
        None => generic(path, qkv, padding_mask, heads, queries, dropout),
    }
}

/// burn's ops (any backend, autodiff): head split, scaled dot products, masked
/// softmax, head merge. burn's `attention` has no dropout, so while training the
/// block is spelled out.
fn generic(
    path: ExecutionPath,
    qkv: Tensor<3>,
    padding_mask: Tensor<2, Bool>,
    heads: usize,
    queries: usize,
    dropout: &Dropout,
) -> Tensor<3> {
    let training =
        dropout.prob > 0.0 && qkv.device().is_autodiff() && dropout.training.is_enabled();
    let [batch, seq, width] = qkv.dims();
    let hidden = width / 3;
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
        .reshape([batch, 1, 1, seq])
        .expand([batch, heads, queries, seq]);
    let context = if training {
        let scale = 1.0 / (head_dim as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3));
        let probs = softmax((scores * scale).mask_fill(mask, -1.0e9), 3);
        super::dropout(path, dropout, probs).matmul(v)
    } else {
        burn_attention(q, k, v, Some(mask), None, AttentionModuleOptions::default())
    };
    context.swap_dims(1, 2).reshape([batch, queries, hidden])
}
