//! AdamW as `transformers` configures it for BERT, and clipping by the global
//! gradient norm as `torch.nn.utils.clip_grad_norm_` does.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer,
    RecordState, StateSink, StateSource,
};
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::model::BertForSequenceClassification;

/// AdamW (ε 1e-8) with `weight_decay`, and none on biases and LayerNorm parameters.
pub fn optimizer(weight_decay: f64) -> Result<ModuleOptimizer> {
    let adamw = |decay: f64| {
        HostLoaded(
            AdamWConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(decay as f32)
                .build(),
        )
    };
    let no_decay = ParamGroup::from_regex(r"(\.bias|layer_norm\.(gamma|beta))$")
        .map_err(|e| Error::InvalidArgument(format!("optimizer parameter group: {e:?}")))?;
    Ok(ModuleOptimizer::from(adamw(weight_decay)).with_group(no_decay, adamw(0.0), None))
}

/// burn's AdamW, whose saved state loads onto the CPU (flex) device: burn builds a
/// loaded state on its default device, which in the browser is WebGPU, which cannot
/// start synchronously there (a checkpoint's restore panicked on the CPU engine). The
/// first step after a load moves each state to its parameter's device, as it does from
/// any device. Steps, state and record format are AdamW's own.
#[derive(Clone)]
struct HostLoaded(AdamW);

/// [`HostLoaded`]'s per-parameter state: AdamW's.
#[derive(Clone)]
struct HostState<const D: usize>(AdamWState<D>);

impl<const D: usize> RecordState for HostState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.0.state_flatten(prefix, out);
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        AdamWState::state_unflatten(prefix, src, &Device::flex()).map(HostState)
    }
}

impl Optimizer for HostLoaded {
    type State<const D: usize> = HostState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (tensor, state) = self.0.step(lr, tensor, grad, state.map(|s| s.0));
        (tensor, state.map(HostState))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        HostState(AdamW::to_device(state.0, device))
    }
}

/// Σ g² over every gradient of `model`'s parameters in `grads`, as one tensor still on
/// the device (`None` when there are none), so that the caller decides how to read it.
pub fn sum_of_squares(
    model: &BertForSequenceClassification,
    grads: &GradientsParams,
) -> Option<Tensor<1>> {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    sum.total
}

/// Scale `grads` so that their global L2 norm, `norm`, becomes at most `max_norm`
/// (nothing to do when it already is, or `max_norm` is 0). burn's own clipping is per
/// tensor.
pub fn clip_to(
    model: &BertForSequenceClassification,
    grads: &mut GradientsParams,
    norm: f32,
    max_norm: f64,
) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let id: ParamId = param.id;
            if let Some(g) = self.grads.remove::<D>(id) {
                self.grads.register::<D>(id, g.mul_scalar(self.factor));
            }
        }
    }
    if max_norm > 0.0 && (norm as f64) > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (norm as f64 + 1e-6),
        };
        model.visit(&mut scale);
    }
}

/// [`sum_of_squares`] read back, then [`clip_to`]: clip `grads` to a global norm of
/// `max_norm` and return the norm before clipping (on a backend whose tensors can be
/// read synchronously).
pub fn clip_global_norm(
    model: &BertForSequenceClassification,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f32 {
    let Some(total) = sum_of_squares(model, grads) else {
        return 0.0;
    };
    let norm = total.into_scalar::<f32>().sqrt();
    clip_to(model, grads, norm, max_norm);
    norm
}
