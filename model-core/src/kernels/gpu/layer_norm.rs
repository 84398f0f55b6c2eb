//! Residual + LayerNorm for GPU inference in one kernel: what follows each of an
//! encoder layer's two output projections (`LayerNorm(x·W + b + residual)`, the
//! projection and its bias from [`super::linear`]).
//!
//! burn has no LayerNorm kernel: its LayerNorm is mean, subtract, square, mean, add
//! epsilon, square root, divide, scale and shift, which its fusion compiles (without
//! autotune) into several reductions and element-wise kernels, plus the residual
//! addition before them. Here one cube owns one row: its units add the residual,
//! and two tree reductions in shared memory give the mean and
//! then the variance of the deviations (two passes, as PyTorch's LayerNorm).

use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::CubeDim;
use cubecl::prelude::*;

/// Units per cube (one cube per row); a power of two for the tree reduction.
const UNITS: usize = 128;
/// Rows per step of the grid's first dimension (WebGPU allows at most 65,535).
const GRID_X: usize = 32_768;

/// The sum of the cube's `partial` values (one per unit, `CUBE_DIM` a power of two),
/// on every unit; `partial` is free again when it returns.
#[cube]
fn cube_sum<F: Float>(partial: &mut Shared<[F]>) -> F {
    sync_cube();
    let mut active = CUBE_DIM;
    while active > 1 {
        active /= 2;
        if UNIT_POS < active {
            let other = partial[(UNIT_POS + active) as usize];
            partial[UNIT_POS as usize] += other;
        }
        sync_cube();
    }
    let total = partial[0];
    // Every unit has read the total before the next reduction overwrites it.
    sync_cube();
    total
}

/// Row `r` of `out` = LayerNorm(`x[r] + residual[r]`) · `gamma` + `beta`.
#[cube(launch)]
fn residual_layer_norm_kernel<F: Float>(
    x: &Tensor<F>,        // [rows, width]
    residual: &Tensor<F>, // [rows, width]
    gamma: &Tensor<F>,    // [width]
    beta: &Tensor<F>,     // [width]
    out: &mut Tensor<F>,  // [rows, width]
    rows: usize,
    eps: f32,
    #[comptime] units: usize,
    #[define(F)] _dtype: ElemType,
) {
    let row = CUBE_POS_Y as usize * CUBE_COUNT_X as usize + CUBE_POS_X as usize;
    // A cube past the last row still takes part in every barrier: WGSL rejects a
    // barrier after an exit it cannot prove uniform, and `rows` comes from a buffer.
    let width = if row < rows { gamma.len() } else { 0usize };
    let base = row * width;
    let t = UNIT_POS as usize;
    let mut partial = Shared::new_slice(units);

    let mut sum = F::new(0.0);
    let mut c = t;
    while c < width {
        let v = x[base + c] + residual[base + c];
        out[base + c] = v;
        sum += v;
        c += units;
    }
    let n = F::cast_from(gamma.len());
    partial[t] = sum;
    let mean = cube_sum::<F>(&mut partial) / n;

    // Each unit reads back only the elements it wrote.
    let mut squares = F::new(0.0);
    let mut c = t;
    while c < width {
        let d = out[base + c] - mean;
        squares += d * d;
        c += units;
    }
    partial[t] = squares;
    let variance = cube_sum::<F>(&mut partial) / n;
    let inv = F::new(1.0) / F::sqrt(variance + F::cast_from(eps));

    let mut c = t;
    while c < width {
        out[base + c] = (out[base + c] - mean) * inv * gamma[c] + beta[c];
        c += units;
    }
}

/// `LayerNorm(x + residual)` over the last dimension, `gamma`/`beta` `[width]`; `x`
/// and `residual` of one shape.
pub fn residual_layer_norm(
    x: CubeTensor,
    residual: CubeTensor,
    gamma: CubeTensor,
    beta: CubeTensor,
    eps: f64,
) -> CubeTensor {
    let [x, residual, gamma, beta] = [x, residual, gamma, beta].map(into_contiguous);
    let shape = x.shape();
    let width = shape[shape.num_dims() - 1];
    let rows = shape.num_elements() / width.max(1);
    let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    if rows == 0 || width == 0 {
        return out;
    }
    let client = x.client.clone();
    let cube_count = CubeCount::Static(rows.min(GRID_X) as u32, rows.div_ceil(GRID_X) as u32, 1);
    let dtype = dtype_to_storage_type(x.dtype);
    residual_layer_norm_kernel::launch(
        &client,
        cube_count,
        CubeDim::new_1d(UNITS as u32),
        x.into_tensor_arg(),
        residual.into_tensor_arg(),
        gamma.into_tensor_arg(),
        beta.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        rows,
        eps as f32,
        UNITS,
        dtype,
    );
    out
}
