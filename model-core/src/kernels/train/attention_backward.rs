//! The attention op's backward pass, one job per (sequence, head) pair:
//! `∂p' = g·vᵀ`, `∂v = p'ᵀ·g`, `∂s = scale · p ⊙ (∂p − Σ ∂p⊙p)` with
//! `∂p = ∂p' ⊙ mask`, `∂q = ∂s·k`, `∂k = ∂sᵀ·q`.

use burn_flex::FlexTensor;

use crate::kernels::simd::{LANES, SyncPtr, for_each_with};
use crate::kernels::{Mat, f32_tensor, f32s, matmul};

/// Shapes of one attention block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub(super) batch: usize,
    pub(super) seq: usize,
    pub(super) queries: usize,
    pub(super) hidden: usize,
    pub(super) heads: usize,
}

impl Dims {
    pub(super) fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Elements of one (sequence, head) pair's probabilities.
    pub(super) fn block(&self) -> usize {
        self.queries * self.seq
    }
}

#[derive(Debug, Clone)]
pub(super) struct BlockSaved {
    /// The contiguous `[batch, seq, 3·hidden]` projections.
    pub(super) qkv: FlexTensor,
    /// `[batch, heads, queries, seq]` probabilities before dropout.
    pub(super) probs: Vec<f32>,
    pub(super) dims: Dims,
    pub(super) drop: f32,
    pub(super) key: u64,
}

/// `∂qkv` from `∂ctx`, one job per (sequence, head) pair.
pub(super) fn block_backward(grad: FlexTensor, saved: &BlockSaved) -> FlexTensor {
    let grad = grad.to_contiguous();
    let g = f32s(&grad);
    let dims = saved.dims;
    let Dims {
        batch,
        seq,
        hidden,
        heads,
        ..
    } = dims;
    let mut gqkv = vec![0.0f32; batch * seq * 3 * hidden];
    let out = SyncPtr(gqkv.as_mut_ptr());
    let x = f32s(&saved.qkv);
    for_each_with(
        batch * heads,
        || (Vec::new(), Vec::new()),
        |(mask, gp), pair| {
            // SAFETY: pair (b, h) writes only sequence b's rows, head h's q, k and v
            // columns of `gqkv`.
            unsafe { pair_backward(x, g, saved, out, pair, mask, gp) }
        },
    );
    f32_tensor(gqkv, [batch, seq, 3 * hidden].into())
}

/// One pair's share of [`block_backward`].
///
/// # Safety
/// `out` is the `[batch, seq, 3·hidden]` gradient buffer; no other thread touches
/// this pair's cells meanwhile.
unsafe fn pair_backward(
    x: &[f32],
    g: &[f32],
    saved: &BlockSaved,
    out: SyncPtr,
    pair: usize,
    mask: &mut Vec<f32>,
    gp: &mut Vec<f32>,
) {
    let dims = saved.dims;
    let Dims {
        seq,
        queries,
        hidden,
        heads,
        ..
    } = dims;
    let (b, h) = (pair / heads, pair % heads);
    let (d, row) = (dims.head_dim(), 3 * hidden);
    let scale = 1.0 / (d as f32).sqrt();
    let n = dims.block();
    let p = &saved.probs[pair * n..(pair + 1) * n];
    let base = b * seq * row + h * d;
    let gbase = b * queries * hidden + h * d;
    assert!(
        g.len() >= gbase + (queries.max(1) - 1) * hidden + d,
        "context gradient shape"
    );
    // p' = p ⊙ mask (the mask regenerated from its key)
    let pv: &[f32] = if saved.drop > 0.0 {
        mask.resize(n, 0.0);
        crate::kernels::dropout::dropout_mask_at(mask, (pair * n) as u64, saved.drop, saved.key);
        gp.clear();
        gp.extend_from_slice(mask);
        mul_into(gp, p);
        gp
    } else {
        p
    };
    // SAFETY: every view is bounded by the shapes (asserted above and in the forward);
    // the written cells are this pair's.
    unsafe {
        let o = out.0;
        // ∂v[seq, d] = p'ᵀ[seq, queries] · g[queries, d]
        matmul(
            seq,
            d,
            queries,
            o.add(base + 2 * hidden),
            row as isize,
            false,
            Mat::new(pv.as_ptr(), 1, seq as isize),
            Mat::new(g.as_ptr().add(gbase), hidden as isize, 1),
            1.0f32,
            gemm::Parallelism::None,
        );
    }
    // ∂p'[queries, seq] = g[queries, d] · v[seq, d]ᵀ, into a buffer of its own (gp
    // may hold p' above, which is no longer needed).
    let mut dp = std::mem::take(gp);
    dp.clear();
    dp.reserve(n);
    unsafe {
        matmul(
            queries,
            seq,
            d,
            dp.as_mut_ptr(),
            seq as isize,
            false,
            Mat::new(g.as_ptr().add(gbase), hidden as isize, 1),
            Mat::new(x.as_ptr().add(base + 2 * hidden), 1, row as isize),
            1.0f32,
            gemm::Parallelism::None,
        );
        dp.set_len(n);
    }
    if saved.drop > 0.0 {
        mul_into(&mut dp, mask);
    }
    for (gr, pr) in dp.chunks_exact_mut(seq).zip(p.chunks_exact(seq)) {
        softmax_backward_row(gr, pr, scale);
    }
    unsafe {
        let o = out.0;
        // ∂q[queries, d] = ∂s[queries, seq] · k[seq, d]
        matmul(
            queries,
            d,
            seq,
            o.add(base),
            row as isize,
            false,
            Mat::new(dp.as_ptr(), seq as isize, 1),
            Mat::new(x.as_ptr().add(base + hidden), row as isize, 1),
            1.0f32,
            gemm::Parallelism::None,
        );
        // ∂k[seq, d] = ∂sᵀ[seq, queries] · q[queries, d]
        matmul(
            seq,
            d,
            queries,
            o.add(base + hidden),
            row as isize,
            false,
            Mat::new(dp.as_ptr(), 1, seq as isize),
            Mat::new(x.as_ptr().add(base), row as isize, 1),
            1.0f32,
            gemm::Parallelism::None,
        );
    }
    *gp = dp;
}

crate::kernels::multiversion! {
    /// `a ⊙= b`.
    pub(super) fn mul_into(a: &mut [f32], b: &[f32]) {
        for (a, b) in a.iter_mut().zip(b) {
            *a *= b;
        }
    }
}

crate::kernels::multiversion! {
    /// `g ← scale · p ⊙ (g − Σ g⊙p)`, in place.
    fn softmax_backward_row(g: &mut [f32], p: &[f32], scale: f32) {
        let mut acc = [0.0f32; LANES];
        let n = g.len() / LANES * LANES;
        for (g, p) in g[..n].chunks_exact(LANES).zip(p[..n].chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += g[i] * p[i];
            }
        }
        let tail: f32 = g[n..].iter().zip(&p[n..]).map(|(g, p)| g * p).sum();
        let dot = acc.iter().sum::<f32>() + tail;
        for (g, &p) in g.iter_mut().zip(p) {
            *g = scale * p * (*g - dot);
        }
    }
}
