//! The exact GELU as one autodiff op: flex's GELU and its gradient call `libm`'s
//! scalar `erf` and `exp`; here both use the vectorised ones of the inference kernels.

use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, unary};
use burn_flex::{Flex, FlexTensor};

use super::{Ad, flex_shaped, on_flex_autodiff, track};
use crate::kernels::{f32s, for_chunks};

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
    for_chunks(&mut out, 1 << 14, |_, chunk| {
        crate::kernels::gelu_slice(chunk)
    });
    let out = flex_shaped(out, &input);
    Some(track(GeluOp, [ad.node()], input, out))
}

crate::kernels::multiversion! {
    /// `g ← g · (Φ(x) + x·φ(x))`: the derivative of `x·Φ(x)`.
    fn gelu_grad(g: &mut [f32], x: &[f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (g, &x) in g.iter_mut().zip(x) {
            let cdf = 0.5 * (1.0 + crate::kernels::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * crate::kernels::exp(-0.5 * x * x);
            *g *= cdf + x * pdf;
        }
    }
}
