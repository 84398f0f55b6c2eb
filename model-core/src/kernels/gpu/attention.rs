//! The attention core for GPU inference in one kernel: scaled dot products, the
//! padding mask, softmax and the weighted sum of values, read straight out of the
//! fused `[q | k | v]` projection and written as the merged heads.
//!
//! burn's `module::attention` on wgpu (without autotune, and on WebGPU, which has no
//! cooperative-matrix instructions for its flash kernels) materialises the scores and
//! runs about ten kernels per layer: the head split, two matrix products, the scale,
//! the mask, five for a NaN-safe softmax, the head merge. Here one unit owns one
//! (sequence, head, query) row and sweeps the keys with an online softmax (running
//! maximum and sum), so nothing of size `seq²` is ever written.

use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

/// One unit per output row `(b, h, i)`: `out[b, i, h·d..(h+1)·d] =
/// softmax_j(q_i·k_j·scale, keys j not padding)·v_j`.
#[cube(launch)]
fn attention_kernel<F: Float, M: Int>(
    qkv: &Tensor<F>,     // [batch, seq, 3·hidden], contiguous
    mask: &Tensor<M>,    // [batch, seq], non-zero at padding, contiguous
    out: &mut Tensor<F>, // [batch, queries, hidden], contiguous
    scale: f32,
    #[comptime] heads: usize,
    #[comptime] head_dim: usize,
    #[define(F, M)] _dtypes: [ElemType; 2],
) {
    let seq = qkv.shape(1);
    let width = qkv.shape(2);
    let hidden = width / 3;
    let queries = out.shape(1);
    let row = ABSOLUTE_POS;
    if row >= out.len() / head_dim {
        terminate!();
    }
    // Rows run (b, h, i) with i fastest, so the units of a cube share their keys.
    let i = row % queries;
    let h = (row / queries) % heads;
    let b = row / (queries * heads);

    let base = b * seq * width;
    let q_at = base + i * width + h * head_dim;
    let k_col = hidden + h * head_dim;
    let v_col = 2 * hidden + h * head_dim;
    let scale = F::cast_from(scale);

    let mut q = Array::<F>::new(head_dim);
    let mut acc = Array::<F>::new(head_dim);
    for d in 0..head_dim {
        q[d] = qkv[q_at + d] * scale;
        acc[d] = F::new(0.0);
    }
    let mut max = F::new(0.0);
    let mut sum = F::new(0.0);
    let mut started = false;
    for j in 0..seq {
        if u32::cast_from(mask[b * seq + j]) == 0 {
            let k_at = base + j * width + k_col;
            let mut s = F::new(0.0);
            for d in 0..head_dim {
                s += q[d] * qkv[k_at + d];
            }
            if !started || s > max {
                // A new maximum rescales what was summed so far (nothing yet on the first key).
                let c = if started {
                    F::exp(max - s)
                } else {
                    F::new(0.0)
                };
                sum *= c;
                for d in 0..head_dim {
                    acc[d] *= c;
                }
                max = s;
                started = true;
            }
            let p = F::exp(s - max);
            sum += p;
            let v_at = base + j * width + v_col;
            for d in 0..head_dim {
                acc[d] += p * qkv[v_at + d];
            }
        }
    }
    // A row whose keys are all padding attends to nothing: zeros, not NaN.
    let inv = if sum > F::new(0.0) {
        F::new(1.0) / sum
    } else {
        F::new(0.0)
    };
    let o_at = (b * queries + i) * hidden + h * head_dim;
    for d in 0..head_dim {
        out[o_at + d] = acc[d] * inv;
    }
}

/// `[batch, seq, 3·hidden]` fused projections and a `[batch, seq]` padding mask (true
/// at padding) → the merged context of the first `queries` positions,
/// `[batch, queries, hidden]`.
pub fn attention(qkv: CubeTensor, mask: CubeTensor, heads: usize, queries: usize) -> CubeTensor {
    let qkv = into_contiguous(qkv);
    let mask = into_contiguous(mask);
    let [batch, _seq, width] = qkv.shape().dims::<3>();
    let hidden = width / 3;
    let out = empty_device_contiguous_dtype(
        qkv.client.clone(),
        qkv.device.clone(),
        Shape::new([batch, queries, hidden]),
        qkv.dtype,
    );
    let head_dim = hidden / heads;
    let rows = batch * heads * queries;
    if rows == 0 {
        return out;
    }
    let client = qkv.client.clone();
    let cube_dim = CubeDim::new(&client, rows);
    let cube_count = calculate_cube_count_elemwise(&client, rows, cube_dim);
    let dtypes = [
        dtype_to_storage_type(qkv.dtype),
        dtype_to_storage_type(mask.dtype),
    ];
    attention_kernel::launch(
        &client,
        cube_count,
        cube_dim,
        qkv.into_tensor_arg(),
        mask.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        (head_dim as f32).sqrt().recip(),
        heads,
        head_dim,
        dtypes,
    );
    out
}

/// The output's shape, from the inputs' (for burn's fusion, before the kernel runs).
pub fn context_shape(qkv: &Shape, queries: usize) -> Shape {
    Shape::new([qkv[0], queries, qkv[2] / 3])
}

/// Whether `dtype` is a mask the kernel reads as an integer (wgpu stores bools as
/// `u32` or `u8`; a native bool is converted first).
pub fn mask_is_integer(dtype: DType) -> bool {
    matches!(dtype, DType::Bool(store) if store != burn::tensor::BoolStore::Native)
}
