//! `x·W + b` as one autodiff op with its three gradients, each written once.

use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};

use super::{Ad, flex_shaped, on_flex_autodiff, track};
use crate::kernels::simd::fold_chunks;
#[cfg(not(target_arch = "wasm32"))]
use crate::kernels::{Mat, matmul};
use crate::kernels::{f32_tensor, f32s};

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

    /// The `m × n` view as contiguous rows: borrowed when it already is, else copied.
    #[cfg(target_arch = "wasm32")]
    fn contiguous(&self, m: usize, n: usize) -> std::borrow::Cow<'a, [f32]> {
        if self.cs == 1 && (self.rs == n as isize || m <= 1) {
            return std::borrow::Cow::Borrowed(&self.data[self.offset..self.offset + m * n]);
        }
        // A transposed view (the weight gradient's `xᵀ`): rows gathered in parallel.
        let mut out = vec![0.0f32; m * n];
        crate::kernels::for_chunks(&mut out, n * 64, |b, block| {
            for (r, row) in block.chunks_exact_mut(n).enumerate() {
                let start = self.offset as isize + (b * 64 + r) as isize * self.rs;
                for (j, v) in row.iter_mut().enumerate() {
                    *v = self.data[(start + j as isize * self.cs) as usize];
                }
            }
        });
        std::borrow::Cow::Owned(out)
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
/// `accumulate`. Natively gemm on rayon's threads, writing a fresh `dst` without
/// zeroing it first.
///
/// In the browser the packed kernel instead: `rhs` packed for this one call (`k·n`
/// values moved against the product's `m·k·n` multiply-adds), `lhs` made contiguous
/// where it is a transposed view, and the rows split over the threaded module's pool,
/// with relaxed SIMD's fused multiply-add where the module has it. Why not gemm there:
/// in wasm gemm runs on one thread (its rayon feature is a native build's) with an
/// unfused multiply-add; a MiniLM fine-tune in the page spent 80% of its time in gemm's
/// simd128 kernel while the pool's other thread waited.
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
    }
    #[cfg(target_arch = "wasm32")]
    {
        if !accumulate {
            dst.resize(m * n, 0.0);
        }
        let w =
            crate::kernels::packed::PackedWeight::pack(rhs.data, rhs.offset, rhs.rs, rhs.cs, k, n);
        w.accumulate(dst, &lhs.contiguous(m, k), m);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        if !accumulate {
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
}

/// Σ over the rows of `g` (`[rows, width]`), in parallel: the bias gradient.
fn column_sums(g: &[f32], width: usize) -> Vec<f32> {
    if width == 0 {
        return Vec::new();
    }
    let block = (16_384 / width).max(1) * width;
    fold_chunks(
        g,
        block,
        || vec![0.0f32; width],
        |acc, rows| add_rows_into(acc, rows),
        |a, b| add_rows_into(a, &b),
    )
}

crate::kernels::multiversion! {
    /// `acc += each row of rows`.
    fn add_rows_into(acc: &mut [f32], rows: &[f32]) {
        for r in rows.chunks_exact(acc.len()) {
            for (a, v) in acc.iter_mut().zip(r) {
                *a += v;
            }
        }
    }
}
