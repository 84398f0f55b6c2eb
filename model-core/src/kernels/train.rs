//! Attention probabilities for CPU training as one autodiff op on flex.
//!
//! Under autodiff, `softmax(mask_fill(q·kᵀ·scale, -1e9))` followed by dropout is seven
//! of burn's ops over the `[batch, heads, seq, seq]` scores (scale, mask, max, subtract,
//! exp, sum, divide, then the dropout product), each a pass over 50 MB at batch 16 ×
//! 256 tokens with a fresh tensor, and as many again backwards. Here the forward is one
//! pass (the vectorised masked softmax of [`super::exp_row`], then the dropout mask)
//! and the backward one more: `∂s = scale · p ⊙ (g' − Σ g'⊙p)` with `g' = g ⊙ mask`.
//! The dropout mask is not stored: it is regenerated from its key in the backward pass.
//!
//! [`gelu`] does the same for the feed-forward activation: flex's GELU and its
//! gradient call `libm`'s scalar `erf` and `exp` (11% of a train step, profiled);
//! here both use the vectorised ones of the inference kernels.

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops, OpsKind, unary};
use burn_flex::{Flex, FlexTensor};

use super::{LANES, dropout_mask, exp_row, f32_tensor, f32s, for_chunks};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// What the backward pass needs.
#[derive(Debug, Clone)]
struct Saved {
    /// The softmax probabilities, before dropout.
    probs: FlexTensor,
    /// Dropout probability and mask key (0 and unused when dropout is off).
    drop: f32,
    key: u64,
    scale: f32,
}

#[derive(Debug)]
struct SoftmaxDropout;

impl Backward<Flex, 1> for SoftmaxDropout {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let saved = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| backward(grad, &saved));
    }
}

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
    if !device.is_autodiff() || device.inner() != Device::flex() || x.dtype() != DType::F32 {
        return None;
    }
    let ad = x.clone().try_into_primitive::<Ad>().ok()?;
    let input = ad.primitive().clone().to_contiguous();
    let mut out = f32s(&input).to_vec();
    for_chunks(&mut out, 1 << 14, |_, chunk| super::gelu_slice(chunk));
    let out = flex_shaped(out, &input);
    Some(track(GeluOp, ad.node(), input, out))
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

/// Register `op` as the graph node making `out` from the tensor behind `node`, keeping
/// `state` for its backward pass (dropped when nothing needs a gradient).
fn track<O: Backward<Flex, 1>, const D: usize>(
    op: O,
    node: NodeGuard,
    state: O::State,
    out: FlexTensor,
) -> Tensor<D> {
    let tracked = match op
        .prepare::<NoCheckpointing>([node])
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

/// `dropout(softmax(scores · scale, keys masked where padding))` over the last axis of
/// `scores` (`[batch, heads, seq, seq]`, tracked on flex autodiff without gradient
/// checkpointing); `padding_mask`: `[batch, seq]`, true at padding. `None` when the
/// tensors are anything else: the caller then runs burn's ops.
pub fn attention_probs(
    scores: &Tensor<4>,
    padding_mask: &Tensor<2, Bool>,
    scale: f32,
    dropout: &Dropout,
) -> Option<Tensor<4>> {
    let device = scores.device();
    if !device.is_autodiff() || device.clone().inner() != Device::flex() {
        return None;
    }
    let [batch, heads, seq, keys] = scores.dims();
    if keys != seq || padding_mask.dims() != [batch, seq] || scores.dtype() != DType::F32 {
        return None;
    }
    let ad = scores.clone().try_into_primitive::<Ad>().ok()?;
    let keep: Vec<f32> = padding_mask
        .clone()
        .into_data()
        .iter::<bool>()
        .map(|pad| if pad { 0.0 } else { 1.0 })
        .collect();
    let training = dropout.training.is_enabled() && dropout.prob > 0.0;
    let drop = if training { dropout.prob as f32 } else { 0.0 };
    let key = if training {
        crate::model::dropout_key(&device)
    } else {
        0
    };
    let input = ad.primitive().clone().to_contiguous();
    let probs = forward_probs(&input, &keep, [heads, seq], scale);
    let out = if drop > 0.0 {
        apply_mask(&probs, drop, key)
    } else {
        probs.clone()
    };
    let saved = Saved {
        probs,
        drop,
        key,
        scale,
    };
    Some(track(SoftmaxDropout, ad.node(), saved, out))
}

/// Rows of `seq` scores → masked softmax probabilities, in parallel natively.
fn forward_probs(
    scores: &FlexTensor,
    keep: &[f32],
    [heads, seq]: [usize; 2],
    scale: f32,
) -> FlexTensor {
    let mut probs = f32s(scores).to_vec();
    let per_seq = heads * seq * seq;
    for_chunks(&mut probs, per_seq, |b, chunk| {
        let keep = &keep[b * seq..(b + 1) * seq];
        for row in chunk.chunks_exact_mut(seq) {
            scale_row(row, scale);
            let inv = exp_row(row, keep);
            scale_row(row, inv);
        }
    });
    flex_shaped(probs, scores)
}

/// `probs ⊙ mask`, the mask regenerated from `key`.
fn apply_mask(probs: &FlexTensor, drop: f32, key: u64) -> FlexTensor {
    let p = f32s(probs);
    let mut out = dropout_mask(p.len(), drop, key);
    for (o, &v) in out.iter_mut().zip(p) {
        *o *= v;
    }
    flex_shaped(out, probs)
}

/// `∂scores` from `∂out`.
fn backward(grad: FlexTensor, saved: &Saved) -> FlexTensor {
    let grad = grad.to_contiguous();
    let seq = saved.probs.layout().shape()[3];
    let p = f32s(&saved.probs);
    let mut g = f32s(&grad).to_vec();
    if saved.drop > 0.0 {
        let mask = dropout_mask(g.len(), saved.drop, saved.key);
        for (g, m) in g.iter_mut().zip(&mask) {
            *g *= m;
        }
    }
    let block = seq * seq;
    for_chunks(&mut g, block, |c, chunk| {
        let probs = &p[c * block..(c + 1) * block];
        for (g, p) in chunk.chunks_exact_mut(seq).zip(probs.chunks_exact(seq)) {
            softmax_backward_row(g, p, saved.scale);
        }
    });
    flex_shaped(g, &saved.probs)
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
    use burn::nn::DropoutConfig;
    use burn::tensor::activation::softmax;

    /// Reproducible values in [-3, 3).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::kernels::tests::values(n, seed)
            .iter()
            .map(|v| v * 1.5)
            .collect()
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The op against burn's `softmax(mask_fill(x · scale))` + dropout, values and
    /// gradients, with dropout off and on (both draw the same mask key from the same seed).
    #[test]
    fn fused_softmax_dropout_matches_burns_ops_forward_and_backward() {
        let device = Device::flex().autodiff();
        let (b, h, s) = (2, 3, 20);
        let scale = 0.35f32;
        let pad: Vec<bool> = (0..b * s).map(|i| i / s == 1 && i % s >= 13).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, s]), &device);
        let data = TensorData::new(values(b * h * s * s, 3), [b, h, s, s]);
        let weights = Tensor::<4>::from_data(
            TensorData::new(values(b * h * s * s, 9), [b, h, s, s]),
            &device,
        );
        for p in [0.0, 0.1] {
            let dropout = DropoutConfig::new(p).init();

            device.seed(7);
            let x = Tensor::<4>::from_data(data.clone(), &device).require_grad();
            let y = attention_probs(&x, &mask, scale, &dropout).expect("flex autodiff");
            let grads = (y.clone() * weights.clone()).sum().backward();
            let gx = x.grad(&grads).unwrap();

            device.seed(7);
            let x2 = Tensor::<4>::from_data(data.clone(), &device).require_grad();
            let m4 = mask.clone().reshape([b, 1, 1, s]).expand([b, h, s, s]);
            let probs = softmax((x2.clone() * scale as f64).mask_fill(m4, -1.0e9), 3);
            let y2 = crate::model::dropout(&dropout, probs);
            let grads2 = (y2.clone() * weights.clone()).sum().backward();
            let gx2 = x2.grad(&grads2).unwrap();

            let dy = max_diff(y.inner(), y2.inner());
            let dg = max_diff(gx, gx2);
            assert!(dy < 1e-5, "p={p}: probabilities differ by {dy}");
            assert!(dg < 1e-5, "p={p}: gradients differ by {dg}");
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
        let d = |a: Tensor<2>, b: Tensor<2>| {
            let (a, b) = (
                a.into_data().try_to_vec::<f32>().unwrap(),
                b.into_data().try_to_vec::<f32>().unwrap(),
            );
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let (dy, dg) = (d(y.inner(), y2.inner()), d(gx, gx2));
        assert!(dy < 1e-5, "GELU values differ by {dy}");
        assert!(dg < 1e-5, "GELU gradients differ by {dg}");
    }

    #[test]
    fn declines_anything_but_flex_autodiff() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 1, 2, 2], &device);
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false, false], [1, 2]), &device);
        let dropout = DropoutConfig::new(0.1).init();
        assert!(attention_probs(&x, &mask, 1.0, &dropout).is_none());
        assert!(gelu(&x).is_none());
    }
}
