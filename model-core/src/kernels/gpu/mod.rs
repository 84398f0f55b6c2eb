//! Kernels for inference on the GPU runtimes (wgpu natively, WebGPU in the page,
//! CUDA), written with cubecl and registered with burn as a backend extension.
//!
//! A forward pass on burn's generic ops launches one GPU dispatch per op (fewer with
//! kernel fusion), and a MiniLM pass is mostly launches, not arithmetic: these fuse
//! what burn's fusion cannot, each into one dispatch.
//!
//! - [`attention`]: the attention core off the fused QKV projection, with the
//!   padding mask, for the first `queries` positions;
//! - [`linear`]: a projection with its bias, and the GELU after the intermediate one;
//! - [`layer_norm`]: residual + LayerNorm after an output projection.
//!
//! With burn's fusion (the `fusion` feature) each kernel is a lazy custom operation
//! in fusion's stream (burn's `#[backend_extension(.., Fusion)]`), so nothing waits
//! for the GPU; without it, a plain launch. There is no backward pass: training on the
//! GPU keeps burn's ops ([`crate::ops`] chooses), and the tests hold each kernel to
//! burn's ops.

pub mod attention;
pub mod layer_norm;
pub mod linear;

use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::prelude::*;
use burn_cubecl::CubeBackend;

/// The GPU kernels as a burn backend extension: implemented for burn's cubecl backend,
/// routed to it (and, with fusion, deferred in fusion's stream) by the macro.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
pub trait GpuKernels: Backend {
    /// See [`attention::attention`].
    #[fusion(dtype = qkv, shape = attention::context_shape(qkv, *queries))]
    fn attention_core(
        qkv: FloatTensor<Self>,
        padding_mask: BoolTensor<Self>,
        heads: usize,
        queries: usize,
    ) -> FloatTensor<Self>;

    /// See [`layer_norm::residual_layer_norm`].
    #[fusion(dtype = x, shape = x)]
    fn residual_layer_norm(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// See [`linear::linear`].
    #[fusion(dtype = x, shape = linear::output_shape(x, weight))]
    fn linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self>;
}

impl GpuKernels for CubeBackend {
    fn attention_core(
        qkv: FloatTensor<Self>,
        padding_mask: BoolTensor<Self>,
        heads: usize,
        queries: usize,
    ) -> FloatTensor<Self> {
        use burn::backend::ops::BoolTensorOps;
        let mask = if attention::mask_is_integer(padding_mask.dtype) {
            padding_mask
        } else {
            Self::bool_into_int(padding_mask, burn::tensor::IntDType::U32)
        };
        attention::attention(qkv, mask, heads, queries)
    }

    fn residual_layer_norm(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        layer_norm::residual_layer_norm(x, residual, gamma, beta, eps)
    }

    fn linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gelu: bool,
    ) -> FloatTensor<Self> {
        linear::linear(x, weight, bias, gelu)
    }
}

/// Whether `device` runs burn's cubecl backend without autodiff: where these kernels
/// apply.
pub fn applies_to(device: &Device) -> bool {
    matches!(device.as_dispatch(), burn::backend::DispatchDevice::Cube(_))
}

/// [`attention::attention`] on burn tensors (on a device [`applies_to`] accepts).
pub fn attention_core(
    qkv: Tensor<3>,
    padding_mask: Tensor<2, Bool>,
    heads: usize,
    queries: usize,
) -> Tensor<3> {
    Tensor::from_dispatch(Dispatch::attention_core(
        qkv.into_dispatch(),
        padding_mask.into_dispatch(),
        heads,
        queries,
    ))
}

/// [`linear::linear`] on burn tensors (on a device [`applies_to`] accepts).
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Tensor<1>,
    gelu: bool,
) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::linear_bias(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        gelu,
    ))
}

/// [`layer_norm::residual_layer_norm`] on burn tensors (on a device [`applies_to`]
/// accepts).
pub fn residual_layer_norm<const D: usize>(
    x: Tensor<D>,
    residual: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::residual_layer_norm(
        x.into_dispatch(),
        residual.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps,
    ))
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{DropoutConfig, LayerNormConfig, LinearConfig};
    use burn::tensor::Distribution;

    use super::*;
    use crate::ops::{self, ExecutionPath};

    fn random<const D: usize>(shape: [usize; D], scale: f64, device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, scale), device)
    }

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| {
                if x.is_finite() {
                    (x - y).abs()
                } else {
                    f32::INFINITY
                }
            })
            .fold(0.0, f32::max)
    }

    /// The attention kernel gives burn's masked attention for every query and for the
    /// first only, with trailing padding, a hole, heads of 8 and 32, and scores large
    /// enough that an unscaled or unshifted softmax would overflow.
    #[test]
    fn the_attention_kernel_matches_burns_ops() {
        let Some(gpu) = crate::backend::wgpu_for_tests("the attention kernel") else {
            return;
        };
        let device = gpu.device;
        assert_eq!(
            ExecutionPath::for_input(&device, burn::tensor::DType::F32),
            ExecutionPath::GpuInference
        );
        let dropout = DropoutConfig::new(0.1).init();
        let (batch, seq) = (3, 7);
        let is_padding = |t: usize| (t / seq == 1 && t % seq >= 4) || t == 2 * seq + 2;
        let mask: Vec<bool> = (0..batch * seq).map(is_padding).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [batch, seq]), &device);
        for (heads, head_dim, scale) in [(2, 8, 1.0), (3, 32, 4.0)] {
            let qkv = random([batch, seq, 3 * heads * head_dim], scale, &device);
            for queries in [seq, 1] {
                let run = |path| {
                    ops::attention(path, qkv.clone(), mask.clone(), heads, queries, &dropout)
                };
                let (kernel, burn) = (
                    run(ExecutionPath::GpuInference),
                    run(ExecutionPath::Generic),
                );
                assert_eq!(kernel.dims(), [batch, queries, heads * head_dim]);
                // Values of size `scale`: f32 rounding in a different order of sums.
                let err = max_diff(kernel, burn);
                assert!(
                    err < 1e-5 * scale as f32,
                    "heads {heads}×{head_dim}, {queries} queries: {err}"
                );
            }
        }
    }

    /// The projection and the residual + LayerNorm kernels give burn's
    /// `LayerNorm(linear(x) + residual)` for rows narrower and wider than a cube,
    /// off-centre (a one-pass variance would lose digits there) and with epsilon that
    /// matters.
    #[test]
    fn the_layer_norm_kernel_matches_burns_ops() {
        let Some(gpu) = crate::backend::wgpu_for_tests("the LayerNorm kernel") else {
            return;
        };
        let device = gpu.device;
        let dropout = DropoutConfig::new(0.1).init();
        for (inner, width, eps) in [(24, 48, 1e-12), (40, 300, 1e-5), (16, 4, 1.0)] {
            let mut projection = LinearConfig::new(inner, width).init(&device);
            projection.bias = Some(Param::from_tensor(random([width], 1.0, &device) + 5.0));
            let mut norm = LayerNormConfig::new(width).with_epsilon(eps).init(&device);
            norm.gamma = Param::from_tensor(random([width], 0.5, &device) + 1.0);
            norm.beta = Some(Param::from_tensor(random([width], 0.5, &device)));
            let x = random([2, 5, inner], 1.0, &device);
            let residual = random([2, 5, width], 1.0, &device) + 100.0;
            let run = |path| {
                ops::project_add_norm(
                    path,
                    &projection,
                    &dropout,
                    &norm,
                    eps,
                    x.clone(),
                    residual.clone(),
                )
            };
            let err = max_diff(
                run(ExecutionPath::GpuInference),
                run(ExecutionPath::Generic),
            );
            assert!(err < 1e-4, "width {width}, eps {eps}: {err}");
        }
    }

    /// The projection kernel gives burn's `Linear` (and the exact GELU after it) with
    /// four lanes and with one (an odd shared dimension or width), for row counts off
    /// the kernel's blocks, for one row (the pooler's `[CLS]`) and for inputs large
    /// enough that the GELU's tails matter.
    #[test]
    fn the_linear_kernel_matches_burns_ops() {
        let Some(gpu) = crate::backend::wgpu_for_tests("the linear kernel") else {
            return;
        };
        let device = gpu.device;
        for (rows, inner, width) in [(37, 48, 200), (1, 384, 1536), (9, 21, 36), (18, 32, 7)] {
            let mut projection = LinearConfig::new(inner, width).init(&device);
            projection.bias = Some(Param::from_tensor(random([width], 1.0, &device)));
            let x = random([rows, inner], 3.0, &device);
            for gelu in [false, true] {
                let run = |path| match gelu {
                    false => ops::linear(path, &projection, x.clone()),
                    true => ops::linear_gelu(path, &projection, x.clone()),
                };
                let (kernel, burn) = (
                    run(ExecutionPath::GpuInference),
                    run(ExecutionPath::Generic),
                );
                assert_eq!(kernel.dims(), [rows, width]);
                let err = max_diff(kernel, burn);
                assert!(err < 1e-4, "{rows}×{inner}→{width}, gelu {gelu}: {err}");
            }
        }
    }
}
