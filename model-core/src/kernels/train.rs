//! Training ops on flex, each one autodiff node with its own backward pass where burn
//! spells the same arithmetic out as several ops with fresh tensors (profiled on a
//! training step, batch 16 × 256 tokens):
//!
//! - [`attention_block`]: the attention core (scores, masked softmax, dropout,
//!   context) for all heads, straight from the fused projections to the merged
//!   context. Spelled out, that is a head split, two batched matmuls and the softmax
//!   over `[batch, heads, seq, seq]`, and a head merge.
//! - [`linear`]: `x·W + b` with its three gradients, each written once: flex's matmul
//!   zeroes each output and then copies it into an aligned buffer.
//! - [`gelu`]: the exact GELU: flex's and its gradient call `libm`'s scalar `erf` and
//!   `exp` (11% of a step); here both use the vectorised ones of the inference kernels.
//!
//! Dropout masks are never stored: they come from [`super::dropout_mask`]'s hash and
//! are regenerated from their key in the backward pass.

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops, OpsKind, unary};
use burn_flex::{Flex, FlexTensor};

use rayon::prelude::*;

use super::{LANES, Mat, SyncPtr, exp_row, f32_tensor, f32s, for_chunks, matmul};

type Ad = Autodiff<Flex, NoCheckpointing>;

#[derive(Debug)]
struct GeluOp;

impl Backward<Flex, 1> for GeluOp {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let input = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let grad = grad.to_contiguous();
            let mut g = f32s(&grad).to_vec();
            let x = f32s(&input);
            let width = 1 << 14;
            for_chunks(&mut g, width, |c, chunk| {
                gelu_grad(chunk, &x[c * width..c * width + chunk.len()])
            });
            flex_shaped(g, &input)
        });
    }
}

/// Exact GELU on a tracked flex tensor with its own backward pass; `None` for anything
/// else (the caller then uses burn's `gelu`).
pub fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    let device = x.device();
    if !on_flex_autodiff(&device) || x.dtype() != DType::F32 {
        return None;
    }
    let ad = x.clone().try_into_primitive::<Ad>().ok()?;
    let input = ad.primitive().clone().to_contiguous();
    let mut out = f32s(&input).to_vec();
    for_chunks(&mut out, 1 << 14, |_, chunk| super::gelu_slice(chunk));
    let out = flex_shaped(out, &input);
    Some(track(GeluOp, [ad.node()], input, out))
}

super::multiversion! {
    /// `g ← g · (Φ(x) + x·φ(x))`: the derivative of `x·Φ(x)`.
    fn gelu_grad(g: &mut [f32], x: &[f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (g, &x) in g.iter_mut().zip(x) {
            let cdf = 0.5 * (1.0 + super::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * super::exp(-0.5 * x * x);
            *g *= cdf + x * pdf;
        }
    }
}

/// `x·W + b` on a tracked flex tensor (`[.., d_in]` → `[.., d_out]`) with its own
/// backward pass; `None` for anything else (the caller then uses burn's `Linear`).
///
/// Why: every flex matmul allocates its output through `FlexTensor::empty`, which
/// zeroes a byte vector and then copies it into an aligned buffer (cubecl's
/// `Bytes::from_bytes_vec`): 16% of a training step, profiled, for the projections'
/// outputs and gradients. Here each output is written once into its own buffer: the
/// forward GEMM accumulates onto the broadcast bias, and the backward pass makes
/// `∂x = g·Wᵀ`, `∂W = xᵀ·g` (one GEMM over all rows) and `∂b = Σ g` directly.
pub fn linear<const D: usize>(linear: &burn::nn::Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    let device = x.device();
    if !on_flex_autodiff(&device) || x.dtype() != DType::F32 {
        return None;
    }
    let bias = linear.bias.as_ref()?.val();
    let weight = linear.weight.val();
    let [d_in, d_out] = weight.dims();
    if x.dims()[D - 1] != d_in || weight.dtype() != DType::F32 || bias.dtype() != DType::F32 {
        return None;
    }
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let w = weight.try_into_primitive::<Ad>().ok()?;
    let b = bias.try_into_primitive::<Ad>().ok()?;
    let input = x.primitive().clone().to_contiguous();
    let w_flex = w.primitive().clone();
    let rows = input.layout().num_elements() / d_in.max(1);
    let bias_row = b.primitive().clone().to_contiguous();
    let mut out = Vec::with_capacity(rows * d_out);
    for _ in 0..rows {
        out.extend_from_slice(f32s(&bias_row));
    }
    let ws = Strided::of(&w_flex);
    // out[rows, d_out] += x[rows, d_in] · W
    gemm_into(
        &mut out,
        true,
        rows,
        d_out,
        d_in,
        Strided::rows(f32s(&input), d_in),
        ws,
    );
    let mut shape = input.layout().shape().clone();
    shape[D - 1] = d_out;
    let out = f32_tensor(out, shape);
    let saved = LinearSaved {
        input,
        weight: w_flex,
    };
    Some(track(LinearOp, [x.node(), w.node(), b.node()], saved, out))
}

#[derive(Debug, Clone)]
struct LinearSaved {
    /// The contiguous input.
    input: FlexTensor,
    /// The weight, `[d_in, d_out]`, as stored (any strides).
    weight: FlexTensor,
}

#[derive(Debug)]
struct LinearOp;

impl Backward<Flex, 3> for LinearOp {
    type State = LinearSaved;

    fn backward(self, ops: Ops<LinearSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let LinearSaved { input, weight } = ops.state;
        let shape = weight.layout().shape();
        let (d_in, d_out) = (shape[0], shape[1]);
        let g = f32s(&grad);
        let rows = g.len() / d_out.max(1);
        if let Some(node) = node_x {
            // ∂x[rows, d_in] = g[rows, d_out] · Wᵀ
            let mut gx = Vec::new();
            let wt = Strided::of(&weight).transposed();
            gemm_into(
                &mut gx,
                false,
                rows,
                d_in,
                d_out,
                Strided::rows(g, d_out),
                wt,
            );
            grads.register::<Flex>(node.id, flex_shaped(gx, &input));
        }
        if let Some(node) = node_w {
            // ∂W[d_in, d_out] = xᵀ[d_in, rows] · g[rows, d_out]
            let mut gw = Vec::new();
            let xt = Strided::rows(f32s(&input), d_in).transposed();
            gemm_into(
                &mut gw,
                false,
                d_in,
                d_out,
                rows,
                xt,
                Strided::rows(g, d_out),
            );
            grads.register::<Flex>(node.id, f32_tensor(gw, [d_in, d_out].into()));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, f32_tensor(column_sums(g, d_out), [d_out].into()));
        }
    }
}

/// A strided f32 matrix view: `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    offset: usize,
    rs: isize,
    cs: isize,
}

impl<'a> Strided<'a> {
    /// A flex 2-D f32 tensor as it is laid out.
    fn of(t: &'a FlexTensor) -> Self {
        let l = t.layout();
        Self {
            data: t.storage::<f32>(),
            offset: l.start_offset(),
            rs: l.strides()[0],
            cs: l.strides()[1],
        }
    }

    /// Contiguous rows of `width`.
    fn rows(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            offset: 0,
            rs: width as isize,
            cs: 1,
        }
    }

    fn transposed(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether an `m × n` view stays inside `data`.
    fn fits(&self, m: usize, n: usize) -> bool {
        if m == 0 || n == 0 {
            return true;
        }
        let corner =
            |i: usize, j: usize| self.offset as isize + i as isize * self.rs + j as isize * self.cs;
        [
            corner(0, 0),
            corner(m - 1, 0),
            corner(0, n - 1),
            corner(m - 1, n - 1),
        ]
        .iter()
        .all(|&c| c >= 0 && (c as usize) < self.data.len())
    }
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]` (row-major), or `+=` onto `dst`'s values with
/// `accumulate`; a fresh `dst` (`accumulate` false) is filled without being zeroed
/// first. On rayon's threads.
fn gemm_into(
    dst: &mut Vec<f32>,
    accumulate: bool,
    m: usize,
    n: usize,
    k: usize,
    lhs: Strided,
    rhs: Strided,
) {
    assert!(lhs.fits(m, k) && rhs.fits(k, n), "matrix views");
    if accumulate {
        assert_eq!(dst.len(), m * n, "product output shape");
    } else {
        dst.clear();
        dst.reserve_exact(m * n);
        if k == 0 {
            dst.resize(m * n, 0.0);
            return;
        }
    }
    // SAFETY: the views were checked to lie inside their slices; `dst` has room for
    // `m·n` values, and gemm writes every one of them when it does not read `dst`
    // (k > 0), before `set_len` makes them visible.
    unsafe {
        matmul(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            n as isize,
            accumulate,
            Mat::new(lhs.data.as_ptr().add(lhs.offset), lhs.rs, lhs.cs),
            Mat::new(rhs.data.as_ptr().add(rhs.offset), rhs.rs, rhs.cs),
            1.0f32,
            gemm::Parallelism::Rayon(0),
        );
        if !accumulate {
            dst.set_len(m * n);
        }
    }
}

/// Σ over the rows of `g` (`[rows, width]`), in parallel: the bias gradient.
fn column_sums(g: &[f32], width: usize) -> Vec<f32> {
    use rayon::prelude::*;
    if width == 0 {
        return Vec::new();
    }
    let block = (16_384 / width.max(1)).max(1) * width.max(1);
    g.par_chunks(block)
        .fold(
            || vec![0.0f32; width],
            |mut acc, rows| {
                add_rows_into(&mut acc, rows);
                acc
            },
        )
        .reduce(
            || vec![0.0f32; width],
            |mut a, b| {
                add_rows_into(&mut a, &b);
                a
            },
        )
}

super::multiversion! {
    /// `acc += each row of rows`.
    fn add_rows_into(acc: &mut [f32], rows: &[f32]) {
        for r in rows.chunks_exact(acc.len()) {
            for (a, v) in acc.iter_mut().zip(r) {
                *a += v;
            }
        }
    }
}

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
        crate::model::dropout_key(&device)
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

/// Shapes of one attention block.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    seq: usize,
    queries: usize,
    hidden: usize,
    heads: usize,
}

impl Dims {
    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Elements of one (sequence, head) pair's probabilities.
    fn block(&self) -> usize {
        self.queries * self.seq
    }
}

#[derive(Debug, Clone)]
struct BlockSaved {
    /// The contiguous `[batch, seq, 3·hidden]` projections.
    qkv: FlexTensor,
    /// `[batch, heads, queries, seq]` probabilities before dropout.
    probs: Vec<f32>,
    dims: Dims,
    drop: f32,
    key: u64,
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
fn attention_block_keyed(
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
    let p_blocks = probs.par_chunks_mut(dims.block()).enumerate();
    p_blocks.for_each_init(Vec::new, |dropped, (pair, p)| {
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
        super::dropout_mask_at(dropped, first, drop, key);
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

/// `∂qkv` from `∂ctx`, one job per (sequence, head) pair.
fn block_backward(grad: FlexTensor, saved: &BlockSaved) -> FlexTensor {
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
    (0..batch * heads).into_par_iter().for_each_init(
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
        super::dropout_mask_at(mask, (pair * n) as u64, saved.drop, saved.key);
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

super::multiversion! {
    /// `a ⊙= b`.
    fn mul_into(a: &mut [f32], b: &[f32]) {
        for (a, b) in a.iter_mut().zip(b) {
            *a *= b;
        }
    }
}

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

super::multiversion! {
    fn scale_row(row: &mut [f32], by: f32) {
        for v in row.iter_mut() {
            *v *= by;
        }
    }
}

super::multiversion! {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dropout_mask;
    use burn::nn::DropoutConfig;
    use burn::tensor::activation::softmax;

    /// Reproducible values in [-3, 3).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::kernels::tests::values(n, seed)
            .iter()
            .map(|v| v * 1.5)
            .collect()
    }

    /// Largest absolute difference between two equally long slices.
    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// The attention block op against burn's ops (head split, `q·kᵀ`, masked softmax,
    /// the dropout mask of the same key, `·v`, head merge): context values and the
    /// gradient of the projections, for every query and for `[CLS]` only, dropout off
    /// and on, with padding.
    #[test]
    fn attention_block_matches_burns_ops_forward_and_backward() {
        let device = Device::flex().autodiff();
        let (b, s, heads, hd) = (2, 19, 3, 4);
        let hidden = heads * hd;
        let scale = 1.0 / (hd as f64).sqrt();
        let pad: Vec<bool> = (0..b * s).map(|i| i / s == 1 && i % s >= 11).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, s]), &device);
        let data = TensorData::new(values(b * s * 3 * hidden, 21), [b, s, 3 * hidden]);
        let key = 0x0A77_E417;
        for queries in [s, 1] {
            let weights = Tensor::<3>::from_data(
                TensorData::new(values(b * queries * hidden, 22), [b, queries, hidden]),
                &device,
            );
            for p in [0.0f32, 0.1] {
                let dims = Dims {
                    batch: b,
                    seq: s,
                    queries,
                    hidden,
                    heads,
                };
                let qkv = Tensor::<3>::from_data(data.clone(), &device).require_grad();
                let y = attention_block_keyed(&qkv, &mask, dims, p, key).expect("flex autodiff");
                let gx = qkv
                    .grad(&(y.clone() * weights.clone()).sum().backward())
                    .unwrap();

                let qkv2 = Tensor::<3>::from_data(data.clone(), &device).require_grad();
                let x = qkv2.clone().reshape([b, s, 3 * heads, hd]).swap_dims(1, 2);
                let q = x.clone().narrow(1, 0, heads).narrow(2, 0, queries);
                let k = x.clone().narrow(1, heads, heads);
                let v = x.narrow(1, 2 * heads, heads);
                let m4 = mask
                    .clone()
                    .reshape([b, 1, 1, s])
                    .expand([b, heads, queries, s]);
                let probs = softmax(
                    (q.matmul(k.swap_dims(2, 3)) * scale).mask_fill(m4, -1.0e9),
                    3,
                );
                let kept = dropout_mask(b * heads * queries * s, p, key);
                let kept =
                    Tensor::<4>::from_data(TensorData::new(kept, [b, heads, queries, s]), &device);
                let y2 = (probs * kept)
                    .matmul(v)
                    .swap_dims(1, 2)
                    .reshape([b, queries, hidden]);
                let gx2 = qkv2
                    .grad(&(y2.clone() * weights.clone()).sum().backward())
                    .unwrap();

                let (y, y2) = (floats(y.inner()), floats(y2.inner()));
                let (gx, gx2) = (floats(gx), floats(gx2));
                let d = max_diff;
                assert!(
                    gx.iter().any(|&v| v != 0.0),
                    "queries {queries}, p={p}: zero gradient"
                );
                assert!(
                    d(&y, &y2) < 1e-5,
                    "queries {queries}, p={p}: context differs by {}",
                    d(&y, &y2)
                );
                assert!(
                    d(&gx, &gx2) < 1e-5,
                    "queries {queries}, p={p}: gradient differs by {}",
                    d(&gx, &gx2)
                );
            }
        }
    }

    #[test]
    fn fused_gelu_matches_burns_gelu_forward_and_backward() {
        let device = Device::flex().autodiff();
        let n = 40_000; // more than one parallel chunk
        let data = TensorData::new(values(n, 5).iter().map(|v| v * 2.0).collect(), [4, n / 4]);
        let weights = Tensor::<2>::from_data(TensorData::new(values(n, 8), [4, n / 4]), &device);
        let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let y = gelu(&x).expect("flex autodiff");
        let gx = x
            .grad(&(y.clone() * weights.clone()).sum().backward())
            .unwrap();
        let x2 = Tensor::<2>::from_data(data, &device).require_grad();
        let y2 = burn::tensor::activation::gelu(x2.clone());
        let gx2 = x2.grad(&(y2.clone() * weights).sum().backward()).unwrap();
        let dy = max_diff(&floats(y.inner()), &floats(y2.inner()));
        let dg = max_diff(&floats(gx), &floats(gx2));
        assert!(dy < 1e-5, "GELU values differ by {dy}");
        assert!(dg < 1e-5, "GELU gradients differ by {dg}");
    }

    /// The linear op against burn's `Linear`: outputs and the gradients of input,
    /// weight and bias, for a 3-D input, with the weight stored as given and as a
    /// transposed view (how a loaded PyTorch checkpoint lands), across parallel blocks.
    #[test]
    fn linear_op_matches_burns_linear_forward_and_backward() {
        use burn::module::Param;
        let device = Device::flex().autodiff();
        let (b, s, d_in, d_out) = (3, 70, 24, 40);
        for transposed in [false, true] {
            let w = if transposed {
                Tensor::<2>::from_data(
                    TensorData::new(values(d_in * d_out, 1), [d_out, d_in]),
                    &device,
                )
                .transpose()
            } else {
                Tensor::<2>::from_data(
                    TensorData::new(values(d_in * d_out, 1), [d_in, d_out]),
                    &device,
                )
            };
            let bias = Tensor::<1>::from_data(TensorData::new(values(d_out, 2), [d_out]), &device);
            let x_data = TensorData::new(values(b * s * d_in, 3), [b, s, d_in]);
            let g = Tensor::<3>::from_data(
                TensorData::new(values(b * s * d_out, 4), [b, s, d_out]),
                &device,
            );
            let run = |ours: bool| {
                let layer = burn::nn::Linear {
                    weight: Param::from_tensor(w.clone().detach().require_grad()),
                    bias: Some(Param::from_tensor(bias.clone().detach().require_grad())),
                };
                let x = Tensor::<3>::from_data(x_data.clone(), &device).require_grad();
                let y = if ours {
                    linear(&layer, &x).expect("flex autodiff")
                } else {
                    layer.forward(x.clone())
                };
                let grads = (y.clone() * g.clone()).sum().backward();
                (
                    floats(y.inner()),
                    floats(x.grad(&grads).unwrap()),
                    floats(layer.weight.grad(&grads).unwrap()),
                    floats(layer.bias.as_ref().unwrap().grad(&grads).unwrap()),
                )
            };
            let (ours, burns) = (run(true), run(false));
            for (what, a, b) in [
                ("output", &ours.0, &burns.0),
                ("input gradient", &ours.1, &burns.1),
                ("weight gradient", &ours.2, &burns.2),
                ("bias gradient", &ours.3, &burns.3),
            ] {
                let diff = max_diff(a, b);
                assert!(
                    diff < 1e-4,
                    "{what} (transposed {transposed}) differs by {diff}"
                );
            }
        }
    }

    #[test]
    fn declines_anything_but_flex_autodiff() {
        let device = Device::flex();
        let x = Tensor::<3>::zeros([1, 2, 6], &device);
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false, false], [1, 2]), &device);
        let dropout = DropoutConfig::new(0.1).init();
        assert!(attention_block(&x, &mask, 1, 2, &dropout).is_none());
        assert!(gelu(&x).is_none());
        let layer = burn::nn::LinearConfig::new(6, 3).init(&device);
        assert!(linear(&layer, &x).is_none());
        // Tracked, but shapes that do not chain: declined too (burn's ops then panic
        // with their own message, as without the ops).
        let ad = Device::flex().autodiff();
        let x = Tensor::<3>::zeros([1, 2, 6], &ad);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 3], [1, 3]), &ad);
        assert!(
            attention_block(&x, &mask, 1, 2, &dropout).is_none(),
            "mask of another length"
        );
        assert!(
            attention_block(&x, &mask.clone().narrow(1, 0, 2), 4, 2, &dropout).is_none(),
            "2 is not divisible by 4 heads"
        );
    }
}
