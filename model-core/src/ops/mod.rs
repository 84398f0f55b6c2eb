//! The one seam between the model and its kernels.
//!
//! The modules in [`crate::model`] are plain burn modules: every linear projection,
//! activation, the embeddings' LayerNorm, dropout, attention core and the encoder stack go through the functions
//! here, with the [`ExecutionPath`] their forward pass decided once from its input.
//! This is the only place that knows which implementation runs where:
//!
//! | path | when | what runs |
//! |---|---|---|
//! | [`ExecutionPath::FusedCpu`] | flex (CPU), f32, no autodiff: inference | the whole encoder stack as one kernel ([`crate::kernels::stack`]), f32 or int8 products ([`MatmulPrecision`]) |
//! | [`ExecutionPath::CpuTraining`] | flex with autodiff (the `train` feature): fine-tuning on the CPU, natively and in the browser | burn's modules with this crate's autodiff ops: projections, attention core, GELU, dropout masks ([`crate::kernels::train`]) |
//! | [`ExecutionPath::GpuInference`] | burn's cubecl backend (wgpu: WebGPU, Vulkan, Metal; CUDA), f32, no autodiff: inference | burn's ops, with this crate's GPU kernels for the projections with their bias (and GELU), the attention core and residual + LayerNorm ([`crate::kernels::gpu`]) |
//! | [`ExecutionPath::Generic`] | anything else: GPU training, ndarray, other dtypes | burn's generic ops |
//!
//! Each kernel still declines input it cannot take (a shape that does not chain, a
//! weight in another dtype); the op then falls back to burn's, so a path is a choice
//! of speed, never of results. The tests hold every path against burn's ops.

mod attention;
mod stack;

pub use attention::attention;
pub use stack::{LayerWeights, encoder_stack, encoder_stack_first_token};

pub use crate::kernels::precision::MatmulPrecision;

use burn::nn::{Dropout, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::DType;

/// Which implementation of the encoder's ops a forward pass runs (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionPath {
    /// Inference on the CPU: the fused encoder stack.
    FusedCpu,
    /// Training on the CPU: burn's modules with this crate's autodiff ops.
    CpuTraining,
    /// Inference on the GPU: burn's ops and this crate's GPU kernels.
    GpuInference,
    /// burn's generic ops (GPU training, ndarray, other dtypes).
    Generic,
}

impl ExecutionPath {
    /// The path for tensors of `dtype` on `device`.
    pub fn for_input(device: &Device, dtype: DType) -> Self {
        #[cfg(feature = "gpu")]
        if dtype == DType::F32 && crate::kernels::gpu::applies_to(device) {
            return Self::GpuInference;
        }
        if dtype != DType::F32 || device.clone().inner() != Device::flex() {
            return Self::Generic;
        }
        match device.is_autodiff() {
            false => Self::FusedCpu,
            // The training ops need burn's autodiff crate (the `train` feature).
            true if cfg!(feature = "train") => Self::CpuTraining,
            true => Self::Generic,
        }
    }

    /// The path for `x`'s device and dtype.
    pub fn of<const D: usize>(x: &Tensor<D>) -> Self {
        Self::for_input(&x.device(), x.dtype())
    }
}

impl std::fmt::Display for ExecutionPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::FusedCpu => "fused CPU kernels",
            Self::CpuTraining => "CPU training ops",
            Self::GpuInference => "GPU inference kernels",
            Self::Generic => "burn's generic ops",
        })
    }
}

/// `linear.forward(x)`; while training on the CPU, one autodiff op with its bias fused
/// and no output copies ([`crate::kernels::train::linear`]); for GPU inference, one
/// kernel with the bias ([`crate::kernels::gpu::linear`]).
pub fn linear<const D: usize>(path: ExecutionPath, linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "train")]
    if path == ExecutionPath::CpuTraining
        && let Some(y) = crate::kernels::train::linear(linear, &x)
    {
        return y;
    }
    #[cfg(feature = "gpu")]
    if let Some(bias) = gpu_bias(path, linear) {
        return crate::kernels::gpu::linear(x, linear.weight.val(), bias, false);
    }
    let _ = path;
    linear.forward(x)
}

/// `gelu(linear.forward(x))` with the exact GELU ([`gelu`]); for GPU inference, the
/// activation applied in the projection's kernel.
pub fn linear_gelu<const D: usize>(
    path: ExecutionPath,
    linear: &Linear,
    x: Tensor<D>,
) -> Tensor<D> {
    #[cfg(feature = "gpu")]
    if let Some(bias) = gpu_bias(path, linear) {
        return crate::kernels::gpu::linear(x, linear.weight.val(), bias, true);
    }
    gelu(path, self::linear(path, linear, x))
}

/// The bias of a projection the GPU linear kernel takes on `path`: with a bias, and
/// f32 weights (the kernel reads the input's dtype).
#[cfg(feature = "gpu")]
fn gpu_bias(path: ExecutionPath, linear: &Linear) -> Option<Tensor<1>> {
    if path != ExecutionPath::GpuInference || linear.weight.dtype() != DType::F32 {
        return None;
    }
    let bias = linear.bias.as_ref()?.val();
    (bias.dtype() == DType::F32).then_some(bias)
}

/// `norm.forward(x)`, over the last dimension with `eps` (burn keeps its copy
/// private); for CPU inference the fused kernels' LayerNorm, whose order of sums is
/// the same on every target ([`crate::kernels::stack::layer_norm`]).
pub fn layer_norm<const D: usize>(
    path: ExecutionPath,
    norm: &LayerNorm,
    eps: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    if path != ExecutionPath::FusedCpu {
        return norm.forward(x);
    }
    match crate::kernels::stack::layer_norm(norm, eps, x) {
        Ok(y) => y,
        Err(x) => norm.forward(x),
    }
}

/// `norm(dropout(linear(x)) + residual)`: what follows each of an encoder layer's
/// two output projections. For GPU inference, two kernels: the projection with its
/// bias ([`linear`]), then [`add_norm`]'s.
pub fn project_add_norm<const D: usize>(
    path: ExecutionPath,
    projection: &Linear,
    dropout_layer: &Dropout,
    norm: &LayerNorm,
    eps: f64,
    x: Tensor<D>,
    residual: Tensor<D>,
) -> Tensor<D> {
    let h = linear(path, projection, x);
    let h = dropout(path, dropout_layer, h);
    add_norm(path, norm, eps, h, residual)
}

/// `norm(x + residual)`, over the last dimension with `eps`; for GPU inference one
/// kernel ([`crate::kernels::gpu::residual_layer_norm`]).
pub fn add_norm<const D: usize>(
    path: ExecutionPath,
    norm: &LayerNorm,
    eps: f64,
    x: Tensor<D>,
    residual: Tensor<D>,
) -> Tensor<D> {
    #[cfg(feature = "gpu")]
    if path == ExecutionPath::GpuInference
        && let Some(beta) = &norm.beta
    {
        let (gamma, beta) = (norm.gamma.val(), beta.val());
        return crate::kernels::gpu::residual_layer_norm(x, residual, gamma, beta, eps);
    }
    layer_norm(path, norm, eps, x + residual)
}

/// The exact (erf) GELU: in place for CPU inference, one autodiff op with the
/// vectorised `erf` for CPU training, spelled out from `erf` while training on any
/// other backend ([`gelu_from_erf`]), burn's `gelu` otherwise.
pub fn gelu<const D: usize>(path: ExecutionPath, x: Tensor<D>) -> Tensor<D> {
    match path {
        ExecutionPath::FusedCpu => match crate::kernels::gelu::gelu(x) {
            Ok(y) => y,
            Err(x) => burn::tensor::activation::gelu(x),
        },
        #[cfg(feature = "train")]
        ExecutionPath::CpuTraining => match crate::kernels::train::gelu(&x) {
            Some(y) => y,
            None => burn::tensor::activation::gelu(x),
        },
        _ if x.device().is_autodiff() => gelu_from_erf(x),
        _ => burn::tensor::activation::gelu(x),
    }
}

/// `x · Φ(x)` as `x · (1 + erf(x/√2)) / 2` in burn's elementary ops, for training
/// off the CPU path. burn's `gelu` differentiates as the *tanh approximation*: its
/// gradient is off the exact one (PyTorch's) by up to 4e-4, and it evaluates
/// `tanh(0.0357·x³ + 0.798·x)`, which GPU drivers that compute `tanh` from `exp`
/// (SwiftShader, so Chromium's software WebGPU) return as NaN once |x| passes about
/// 12: a pre-activation that large in any layer below the top made the whole step's
/// gradient NaN. Autodiff through `erf` gives the exact `Φ(x) + x·φ(x)`, with
/// `exp(-x²/2)` that only underflows. burn's fusion compiles the chain into one kernel.
pub fn gelu_from_erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let phi = (x.clone() * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0;
    x * phi * 0.5
}

/// Dropout while training, identity otherwise: burn's `Dropout::forward`, except for
/// CPU training, where the mask comes from [`crate::kernels::dropout_mask`] (a
/// parallel counter-based hash keyed from burn's seeded stream, so a run stays a
/// function of its seed and resumes exactly) and one multiply replaces burn's two.
pub fn dropout<const D: usize>(path: ExecutionPath, d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if path != ExecutionPath::CpuTraining || !d.training.is_enabled() || d.prob == 0.0 {
        return d.forward(x);
    }
    let device = x.device();
    let key = crate::kernels::dropout_key(&device);
    let shape = x.shape();
    let mask = crate::kernels::dropout_mask(shape.num_elements(), d.prob as f32, key);
    x * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `d/dx [x·Φ(x)] = Φ(x) + x·φ(x)`, from Python's `math.erf` in f64.
    const EXACT_GELU_GRADIENT: [(f64, f64); 12] = [
        (-30.0, -4.420938405e-195),
        (-15.0, -8.296064325e-49),
        (-6.0, -3.546870945e-08),
        (-3.0, -1.194564720e-02),
        (-1.0, -8.331547059e-02),
        (0.0, 5.000000000e-01),
        (0.5, 8.674951247e-01),
        (1.0, 1.083315471e+00),
        (3.0, 1.011945647e+00),
        (6.0, 1.000000035e+00),
        (15.0, 1.0),
        (30.0, 1.0),
    ];

    /// The largest gap between `gelu`'s gradient on `path` and the exact one.
    fn gelu_gradient_error(device: &Device, path: ExecutionPath) -> f32 {
        let (xs, want): (Vec<f32>, Vec<f32>) = EXACT_GELU_GRADIENT
            .iter()
            .map(|&(x, g)| (x as f32, g as f32))
            .unzip();
        let x = Tensor::<1>::from_data(TensorData::new(xs, [want.len()]), device).require_grad();
        let grads = gelu(path, x.clone()).sum().backward();
        let got = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        got.iter()
            .zip(&want)
            .map(|(g, w)| {
                if g.is_finite() {
                    (g - w).abs()
                } else {
                    f32::INFINITY
                }
            })
            .fold(0.0, f32::max)
    }

    /// Training differentiates the exact GELU on every path, finite however large the
    /// input: burn's own `gelu` backward is the tanh approximation's (4e-4 off at
    /// x = -3) and NaN past |x| ≈ 12 on SwiftShader, which made a page's WebGPU
    /// fine-tune of more than the top layer stop at its first step.
    #[test]
    fn training_differentiates_the_exact_gelu() {
        let flex = Device::flex().autodiff();
        for path in [ExecutionPath::CpuTraining, ExecutionPath::Generic] {
            let err = gelu_gradient_error(&flex, path);
            assert!(err < 1e-6, "{path}: {err}");
        }
        #[cfg(feature = "gpu")]
        if let Some(gpu) = crate::backend::wgpu_for_tests("the GELU gradient") {
            let err = gelu_gradient_error(&gpu.device.autodiff(), ExecutionPath::Generic);
            assert!(err < 1e-6, "wgpu ({}): {err}", gpu.description);
        }
    }

    #[test]
    fn the_path_follows_device_autodiff_and_dtype() {
        let flex = Device::flex();
        assert_eq!(
            ExecutionPath::for_input(&flex, DType::F32),
            ExecutionPath::FusedCpu
        );
        assert_eq!(
            ExecutionPath::for_input(&flex.clone().autodiff(), DType::F32),
            ExecutionPath::CpuTraining
        );
        assert_eq!(
            ExecutionPath::for_input(&flex, DType::F16),
            ExecutionPath::Generic
        );
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // ndarray: a second CPU backend, opt-in
        {
            assert_eq!(
                ExecutionPath::for_input(&Device::ndarray(), DType::F32),
                ExecutionPath::Generic
            );
        }
    }
}
