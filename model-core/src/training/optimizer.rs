//! AdamW as `transformers` configures it for BERT, and clipping by the global
//! gradient norm as `torch.nn.utils.clip_grad_norm_` does.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::model::BertForSequenceClassification;

/// AdamW (ε 1e-8) with `weight_decay`, and none on biases and LayerNorm parameters.
pub fn optimizer(weight_decay: f64) -> Result<ModuleOptimizer> {
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay as f32)
            .build()
    };
    let no_decay = ParamGroup::from_regex(r"(\.bias|layer_norm\.(gamma|beta))$")
        .map_err(|e| Error::InvalidArgument(format!("optimizer parameter group: {e:?}")))?;
    Ok(ModuleOptimizer::from(adamw(weight_decay)).with_group(no_decay, adamw(0.0), None))
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
