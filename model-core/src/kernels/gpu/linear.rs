//! A linear projection with its bias (and GELU) for GPU inference in one kernel:
//! `x·W + b`, optionally `gelu(x·W + b)`, for every projection of the encoder.
//!
//! burn's wgpu matmul without autotune (what the page runs: WebGPU has no
//! cooperative-matrix instructions for its accelerated tiles) is cubek's unit matmul,
//! and fusion cannot fold the bias or the GELU into it there, so each projection is
//! two dispatches. Here each unit keeps a block of `TILE_ROWS` rows × one vector of
//! columns in registers and streams the shared dimension straight from memory: no
//! shared memory and no barriers, which is what software adapters (SwiftShader,
//! lavapipe) run best, and the bias and activation are applied before the one write.

use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::CubeDim;
use cubecl::prelude::*;

/// Rows of the output each unit computes (its accumulators: this many vectors).
const TILE_ROWS: usize = 4;
/// Units per cube along the columns (vectors) and along the row blocks.
const CUBE_COLS: u32 = 16;
const CUBE_ROWS: u32 = 4;
/// Row blocks per step of the grid's second dimension (WebGPU allows at most 65,535).
const GRID_Y: usize = 32_768;

/// `out[r, c] = act(Σ_k x[r, k]·weight[k, c] + bias[c])`, with vectors of `N` along
/// `k` for `x` and along `c` for `weight`, `bias` and `out`.
#[cube(launch)]
fn linear_kernel<F: Float, N: Size>(
    x: &Tensor<Vector<F, N>>,       // [rows, inner], contiguous
    weight: &Tensor<Vector<F, N>>,  // [inner, cols], contiguous
    bias: &Tensor<Vector<F, N>>,    // [cols]
    out: &mut Tensor<Vector<F, N>>, // [rows, cols], contiguous
    rows: usize,
    inner: usize,
    cols: usize,
    #[comptime] tile_rows: usize,
    #[comptime] gelu: bool,
    #[define(F)] _dtype: ElemType,
) {
    let lanes = x.vector_size();
    let col_vecs = cols / lanes;
    let inner_vecs = inner / lanes;
    let cv = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
    let cube_row = CUBE_POS_Z as usize * CUBE_COUNT_Y as usize + CUBE_POS_Y as usize;
    let r0 = (cube_row * CUBE_DIM_Y as usize + UNIT_POS_Y as usize) * tile_rows;
    if cv >= col_vecs || r0 >= rows {
        terminate!();
    }

    // Rows past the end read the last row; their results are never written.
    let mut x_at = Array::<usize>::new(tile_rows);
    let mut acc = Array::<Vector<F, N>>::new(tile_rows);
    #[unroll]
    for r in 0..tile_rows {
        let row = if r0 + r < rows { r0 + r } else { rows - 1 };
        x_at[r] = row * inner_vecs;
        acc[r] = Vector::new(F::new(0.0));
    }
    let mut xs = Array::<Vector<F, N>>::new(tile_rows);
    for kv in 0..inner_vecs {
        #[unroll]
        for r in 0..tile_rows {
            xs[r] = x[x_at[r] + kv];
        }
        #[unroll]
        for l in 0..lanes {
            let w = weight[(kv * lanes + l) * col_vecs + cv];
            #[unroll]
            for r in 0..tile_rows {
                acc[r] += Vector::new(xs[r].extract(l)) * w;
            }
        }
    }

    let b = bias[cv];
    #[unroll]
    for r in 0..tile_rows {
        if r0 + r < rows {
            let mut v = acc[r] + b;
            if gelu {
                // The exact GELU, as BERT's "gelu": x·(1 + erf(x/√2))/2.
                let half = Vector::new(F::new(0.5));
                let one = Vector::new(F::new(1.0));
                v = v * half * (one + Vector::erf(v * Vector::new(F::new(FRAC_1_SQRT_2))));
            }
            out[(r0 + r) * col_vecs + cv] = v;
        }
    }
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// `x·weight + bias` over the last dimension (`weight` `[inner, cols]`, burn's
/// `Linear` layout; `bias` `[cols]`), then the exact GELU if `gelu`.
pub fn linear(x: CubeTensor, weight: CubeTensor, bias: CubeTensor, gelu: bool) -> CubeTensor {
    let [x, weight, bias] = [x, weight, bias].map(into_contiguous);
    let [inner, cols] = weight.shape().dims::<2>();
    let shape = output_shape(&x.shape(), &weight.shape());
    let rows = shape.num_elements() / cols.max(1);
    let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    if rows == 0 || cols == 0 {
        return out;
    }
    // Four lanes (WGSL's vec4) where both the shared dimension and the columns allow.
    let lanes = if inner % 4 == 0 && cols % 4 == 0 {
        4
    } else {
        1
    };
    let client = x.client.clone();
    let cube_dim = CubeDim::new_2d(CUBE_COLS, CUBE_ROWS);
    let row_cubes = rows.div_ceil(TILE_ROWS * CUBE_ROWS as usize);
    let cube_count = CubeCount::Static(
        (cols / lanes).div_ceil(CUBE_COLS as usize) as u32,
        row_cubes.min(GRID_Y) as u32,
        row_cubes.div_ceil(GRID_Y) as u32,
    );
    let dtype = dtype_to_storage_type(x.dtype);
    linear_kernel::launch(
        &client,
        cube_count,
        cube_dim,
        lanes,
        x.into_tensor_arg(),
        weight.into_tensor_arg(),
        bias.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        rows,
        inner,
        cols,
        TILE_ROWS,
        gelu,
        dtype,
    );
    out
}

/// The output's shape, from the inputs' (for burn's fusion, before the kernel runs).
pub fn output_shape(x: &Shape, weight: &Shape) -> Shape {
    let mut dims = x.as_slice().to_vec();
    if let (Some(last), Some(&cols)) = (dims.last_mut(), weight.as_slice().last()) {
        *last = cols;
    }
    Shape::from(dims)
}
