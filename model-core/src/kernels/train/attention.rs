//! The attention core for training as one autodiff op: forward here, backward in
//! [`super::attention_backward`].

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, unary};
use burn_flex::Flex;

use super::attention_backward::{BlockSaved, Dims, block_backward, mul_into};
use super::{Ad, on_flex_autodiff, track};
use crate::kernels::math::exp_row;
use crate::kernels::simd::{SyncPtr, for_chunks_with};
use crate::kernels::{Mat, f32_tensor, f32s, matmul};

/// Attention for training as one autodiff op on flex: `[batch, seq, 3·hidden]` fused
/// projections (`[q | k | v]`) in, the merged context of the first `queries`
/// positions out (`[batch, queries, hidden]`), with dropout on the probabilities.
/// `None` for anything but f32 tensors on flex autodiff (the caller then spells the
/// block out with burn's ops).
///
/// Why: spelled out, the block is a head split (a copy), `q·kᵀ` and `p·v` as batched
/// matmuls whose `[batch, heads, seq, seq]` outputs flex allocates by zeroing a buffer
/// and copying it into an aligned one (cubecl's `Bytes::from_bytes_vec`), the softmax
/// op, and a head merge (another copy), each with its backward pass: after the linear
/// op, 8% of a training step went to those allocations alone, profiled. Here each
/// (sequence, head) pair is one job reading its heads straight out of `qkv` and
/// writing its columns of the context, and the backward pass is one job per pair too:
/// `∂p' = g·vᵀ`, `∂v = p'ᵀ·g`, `∂s = scale · p ⊙ (∂p − Σ ∂p⊙p)` with `∂p = ∂p' ⊙ mask`,
/// `∂q = ∂s·k`, `∂k = ∂sᵀ·q`. Only the probabilities are kept for it (as the softmax op
/// kept them); the dropout mask is regenerated from its key.
pub fn attention_block(
    qkv: &Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
    heads: usize,
    queries: usize,
    dropout: &Dropout,
) -> Option<Tensor<3>> {
    let device = qkv.device();
    if !on_flex_autodiff(&device) {
        return None;
    }
    let [batch, seq, width] = qkv.dims();
    let hidden = width / 3;
    let fits = width == 3 * hidden
        && hidden > 0
        && seq > 0
        && queries > 0
        && heads > 0
        && hidden.is_multiple_of(heads)
        && queries <= seq
        && padding_mask.dims() == [batch, seq]
        && qkv.dtype() == DType::F32;
    if !fits {
        return None;
    }
    let training = dropout.training.is_enabled() && dropout.prob > 0.0;
    let drop = if training { dropout.prob as f32 } else { 0.0 };
    let key = if training {
        crate::kernels::dropout_key(&device)
    } else {
        0
    };
    let dims = Dims {
        batch,
        seq,
        queries,
        hidden,
        heads,
    };
    attention_block_keyed(qkv, padding_mask, dims, drop, key)
}

#[derive(Debug)]
struct AttentionBlock;

impl Backward<Flex, 1> for AttentionBlock {
    type State = BlockSaved;

    fn backward(self, ops: Ops<BlockSaved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let saved = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            block_backward(grad, &saved)
        });
    }
}

/// [`attention_block`] with the dropout probability and mask key given (`drop` 0: no
/// dropout); the shapes must have been checked.
pub(super) fn attention_block_keyed(
    qkv: &Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
    dims: Dims,
    drop: f32,
    key: u64,
) -> Option<Tensor<3>> {
    let ad = qkv.clone().try_into_primitive::<Ad>().ok()?;
    let keep: Vec<f32> = padding_mask
        .clone()
        .into_data()
        .iter::<bool>()
        .map(|pad| if pad { 0.0 } else { 1.0 })
        .collect();
    let input = ad.primitive().clone().to_contiguous();
    let Dims {
        batch,
        queries,
        hidden,
        heads,
        ..
    } = dims;
    let d = dims.head_dim();
    let scale = 1.0 / (d as f32).sqrt();
    let mut probs = vec![0.0f32; batch * heads * dims.block()];
    let mut ctx = vec![0.0f32; batch * queries * hidden];
    let x = f32s(&input);
    let out = SyncPtr(ctx.as_mut_ptr());
    for_chunks_with(&mut probs, dims.block(), Vec::new, |dropped, pair, p| {
        let (b, h) = (pair / heads, pair % heads);
        let keep = &keep[b * dims.seq..(b + 1) * dims.seq];
        // SAFETY: pair (b, h) writes only rows of sequence `b` and columns of head `h`
        // of the context: no other job's cells.
        unsafe { block_forward(x, p, keep, out, dims, b, h, scale, (drop, key), dropped) }
    });
    let out = f32_tensor(ctx, [batch, queries, hidden].into());
    let saved = BlockSaved {
        qkv: input,
        probs,
        dims,
        drop,
        key,
    };
    Some(track(AttentionBlock, [ad.node()], saved, out))
}

/// One (sequence `b`, head `h`) pair forward: probabilities into `p`, context into
/// its cells of `out`.
///
/// # Safety
/// `out` is a `[batch, queries, hidden]` buffer whose cells of this pair no other
/// thread touches meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn block_forward(
    x: &[f32],
    p: &mut [f32],
    keep: &[f32],
    out: SyncPtr,
    dims: Dims,
    b: usize,
    h: usize,
    scale: f32,
    (drop, key): (f32, u64),
    dropped: &mut Vec<f32>,
) {
    let Dims {
        seq,
        queries,
        hidden,
        heads,
        ..
    } = dims;
    let (d, row) = (dims.head_dim(), 3 * hidden);
    let base = b * seq * row + h * d;
    assert!(
        x.len() >= base + 2 * hidden + (seq - 1) * row + d,
        "qkv shape"
    );
    // SAFETY: the assert bounds q, k and v's rows in `x`; `p` is queries × seq.
    unsafe {
        // p = scale · q[queries, d] · k[seq, d]ᵀ
        matmul(
            queries,
            seq,
            d,
            p.as_mut_ptr(),
            seq as isize,
            false,
            Mat::new(x.as_ptr().add(base), row as isize, 1),
            Mat::new(x.as_ptr().add(base + hidden), 1, row as isize),
            scale,
            gemm::Parallelism::None,
        );
    }
    for r in p.chunks_exact_mut(seq) {
        let inv = exp_row(r, keep);
        scale_row(r, inv);
    }
    let pv: &[f32] = if drop > 0.0 {
        dropped.resize(p.len(), 0.0);
        let first = ((b * heads + h) * dims.block()) as u64;
        crate::kernels::dropout::dropout_mask_at(dropped, first, drop, key);
        mul_into(dropped, p);
        dropped
    } else {
        p
    };
    // SAFETY: this pair's context cells: rows of sequence b (stride hidden), columns
    // h·d.., inside `out` by the caller's contract; v's rows bounded above.
    unsafe {
        // ctx[queries, d] = p'[queries, seq] · v[seq, d]
        matmul(
            queries,
            d,
            seq,
            out.0.add(b * queries * hidden + h * d),
            hidden as isize,
            false,
            Mat::new(pv.as_ptr(), seq as isize, 1),
            Mat::new(x.as_ptr().add(base + 2 * hidden), row as isize, 1),
            1.0f32,
            gemm::Parallelism::None,
        );
    }
}

crate::kernels::multiversion! {
    fn scale_row(row: &mut [f32], by: f32) {
        for v in row.iter_mut() {
            *v *= by;
        }
    }
}
