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
//! | [`ExecutionPath::Generic`] | anything else: wgpu (WebGPU, Vulkan, Metal), CUDA, ndarray, other dtypes | burn's generic ops |
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
    /// burn's generic ops (GPU, ndarray, other dtypes).
    Generic,
}

impl ExecutionPath {
    /// The path for tensors of `dtype` on `device`.
    pub fn for_input(device: &Device, dtype: DType) -> Self {
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
            Self::Generic => "burn's generic ops",
        })
    }
}

/// `linear.forward(x)`; while training on the CPU, one autodiff op with its bias fused
/// and no output copies ([`crate::kernels::train::linear`]).
pub fn linear<const D: usize>(path: ExecutionPath, linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "train")]
    if path == ExecutionPath::CpuTraining
        && let Some(y) = crate::kernels::train::linear(linear, &x)
    {
        return y;
    }
    let _ = path;
    linear.forward(x)
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

/// The exact (erf) GELU: in place for CPU inference, one autodiff op with the
/// vectorised `erf` for CPU training, burn's `gelu` otherwise.
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
        _ => burn::tensor::activation::gelu(x),
    }
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
