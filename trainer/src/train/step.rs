//! One optimisation step: forward, cross-entropy, backward over a group of batches
//! (gradient accumulation) and over the shards of each batch (data parallelism),
//! global-norm clipping, the learning-rate schedule, the AdamW update.
//!
//! `trainer fine-tune` runs every step through [`train_step`], and so does
//! `trainer bench --what train-step`, so the benchmark times the step training runs.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use model_core::model::BertForSequenceClassification;
use model_core::tokenizer::{Batch, Encoded};

/// Linear warmup to `lr`, then linear decay to zero (the `transformers` default).
pub fn learning_rate(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        lr * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// The learning-rate schedule of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Steps of linear warmup.
    pub warmup: usize,
    /// Steps of the whole run.
    pub total: usize,
}

impl Schedule {
    /// `peak` reached after `warmup_fraction` of `total` steps (rounded).
    pub fn new(peak: f64, warmup_fraction: f64, total: usize) -> Self {
        Self {
            peak,
            warmup: (warmup_fraction * total as f64).round() as usize,
            total,
        }
    }

    /// The learning rate of step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        learning_rate(self.peak, step, self.warmup, self.total)
    }
}

/// What stays the same from one step of a run to the next.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// Shard `d` of every batch runs on `devices[d]` (autodiff devices). `devices[0]`
    /// holds the model and receives the summed gradients; one device is the plain
    /// single-device step.
    pub devices: Vec<Device>,
    /// The run's seed; dropout is reseeded from it and the step's position.
    pub seed: u64,
    /// Global gradient-norm clipping (0 disables).
    pub clip: f64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    loss: CrossEntropyLoss,
}

impl StepContext {
    /// The context of steps on `devices` (at least one).
    pub fn new(devices: Vec<Device>, seed: u64, clip: f64, schedule: Schedule) -> Self {
        assert!(!devices.is_empty(), "a step needs at least one device");
        let loss = CrossEntropyLossConfig::new().init(&devices[0]);
        Self {
            devices,
            seed,
            clip,
            schedule,
            loss,
        }
    }
}

/// The examples a step's batches index into.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    /// Tokenized texts.
    pub encoded: &'a [Encoded],
    /// Their class indices.
    pub labels: &'a [usize],
    /// The tokenizer's padding id.
    pub pad_id: u32,
}

/// What a completed step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy over the step's batches.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// The learning rate applied.
    pub lr: f64,
    /// Examples the step saw.
    pub samples: usize,
}

/// Why a step stopped without updating the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Diverged {
    /// A batch's loss was not finite; the remaining batches of the step did not run.
    Loss(f64),
    /// The summed gradients' norm was not finite.
    GradNorm(f32),
}

/// AdamW as `transformers` configures it for BERT: no weight decay on biases and
/// LayerNorm parameters. `bench --what train-step` builds its optimizer here too.
pub fn optimizer(weight_decay: f64) -> anyhow::Result<ModuleOptimizer> {
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay as f32)
            .build()
    };
    let no_decay = ParamGroup::from_regex(r"(\.bias|layer_norm\.(gamma|beta))$")
        .map_err(|e| anyhow::anyhow!("parameter group: {e:?}"))?;
    Ok(ModuleOptimizer::from(adamw(weight_decay)).with_group(no_decay, adamw(0.0), None))
}

/// Scale gradients so their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (burn's own clipping is per tensor).
/// Returns the norm before clipping.
pub fn clip_global_norm(
    model: &BertForSequenceClassification,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f32 {
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
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else { return 0.0 };
    let norm = total.into_scalar::<f32>().sqrt();
    if max_norm > 0.0 && (norm as f64) > max_norm {
        let mut scale = Scale {
            grads,
            factor: max_norm / (norm as f64 + 1e-6),
        };
        model.visit(&mut scale);
    }
    norm
}

/// One optimizer step number `step` (0-based) over `group`: the batches (lists of
/// indices into `data`) whose gradients are accumulated into this one update.
///
/// Returns the model, updated when the step completed and unchanged when it
/// [`Diverged`], so the caller never applies a non-finite update.
pub fn train_step(
    model: BertForSequenceClassification,
    optim: &mut ModuleOptimizer,
    ctx: &StepContext,
    data: &Examples<'_>,
    group: &[Vec<usize>],
    step: usize,
) -> (BertForSequenceClassification, Result<StepStats, Diverged>) {
    let devices = &ctx.devices;
    let device = &devices[0];
    let mut accumulator = GradientsAccumulator::<BertForSequenceClassification>::new();
    let mut step_loss = 0.0f64;
    let mut samples = 0usize;
    let group_len = group.len() as f64;
    for (k, idx) in group.iter().enumerate() {
        // Reseeding per batch makes dropout a function of the position in the run, so
        // a resumed run draws the same masks as an uninterrupted one.
        let seed = ctx.seed ^ ((step as u64) << 8 | k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Data parallelism: one contiguous shard of the batch per device, each with a
        // replica of the model; a shard's loss is weighted by its share of the batch,
        // so the summed gradients are the whole batch's mean-loss gradient. With one
        // device this is the whole batch on `model` itself.
        let per_shard = idx.len().div_ceil(devices.len());
        let mut losses = Vec::with_capacity(devices.len());
        for (d, (shard, shard_device)) in idx.chunks(per_shard).zip(devices).enumerate() {
            shard_device.seed(seed ^ (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let replica = if d == 0 {
                model.clone()
            } else {
                model.clone().fork(shard_device)
            };
            let rows: Vec<&Encoded> = shard.iter().map(|&i| &data.encoded[i]).collect();
            let batch = Batch::collate(&rows, data.pad_id);
            let targets: Vec<i64> = shard.iter().map(|&i| data.labels[i] as i64).collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(targets, [shard.len()]), shard_device);
            let logits = replica.forward(&batch.to_input(shard_device));
            let loss = ctx.loss.forward(logits, targets);
            let share = shard.len() as f64 / idx.len() as f64;
            let scaled = loss.clone() * (share / group_len);
            let mut grads = GradientsParams::from_grads(scaled.backward(), &replica);
            if d > 0 {
                grads = grads.to_device(device, &model);
            }
            accumulator.accumulate(&model, grads);
            losses.push((loss, share));
        }
        // Read the losses only now, so the devices work at the same time.
        let value: f64 = losses
            .into_iter()
            .map(|(loss, share)| loss.into_scalar::<f32>() as f64 * share)
            .sum();
        if !value.is_finite() {
            return (model, Err(Diverged::Loss(value)));
        }
        step_loss += value / group_len;
        samples += idx.len();
    }
    let mut grads = accumulator.grads();
    let grad_norm = clip_global_norm(&model, &mut grads, ctx.clip);
    if !grad_norm.is_finite() {
        // Stop before the update: the weights in memory and on disk stay finite.
        return (model, Err(Diverged::GradNorm(grad_norm)));
    }
    let lr = ctx.schedule.at(step);
    let model = optim.step(lr, model, grads);
    let stats = StepStats {
        loss: step_loss,
        grad_norm,
        lr,
        samples,
    };
    (model, Ok(stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Columns, Split};
    use crate::train::testing::{self, backbone_without_dropout, tiny};
    use model_core::Truncation;
    use model_core::loader::ModelFolder;
    use tempfile::TempDir;

    /// A few tiny reviews, alternately positive and negative, tokenized for the tiny
    /// backbone with dropout off.
    struct TinyBatch {
        backbone: TempDir,
        encoded: Vec<Encoded>,
        labels: Vec<usize>,
        pad_id: u32,
    }

    impl TinyBatch {
        /// `n` reviews (at most 20).
        fn new(n: usize) -> Self {
            let backbone = backbone_without_dropout();
            let files = ModelFolder::in_dir(backbone.path()).unwrap();
            let tokenizer = files.tokenizer().unwrap();
            let all =
                data::load(&tiny("reviews.jsonl"), Split::Train, &Columns::default()).unwrap();
            assert_eq!(
                all.examples.len(),
                20,
                "the tiny reviews: 10 positive, then 10 negative"
            );
            let picked: Vec<&data::Example> = (0..n)
                .map(|i| &all.examples[if i % 2 == 0 { i / 2 } else { 10 + i / 2 }])
                .collect();
            let texts: Vec<&str> = picked.iter().map(|e| e.text.as_str()).collect();
            Self {
                encoded: tokenizer
                    .encode_batch(&texts, 64, Truncation::HeadTail)
                    .unwrap(),
                labels: picked.iter().map(|e| e.label).collect(),
                pad_id: tokenizer.pad_id(),
                backbone,
            }
        }

        /// The backbone with a new two-class head, initialised from a fixed seed.
        fn model(&self, device: &Device) -> BertForSequenceClassification {
            let files = ModelFolder::in_dir(self.backbone.path()).unwrap();
            let config = files.config().unwrap();
            let mut ckpt = files.checkpoint().unwrap();
            device.seed(7);
            BertForSequenceClassification::load(&config, 2, &mut ckpt, device)
                .unwrap()
                .0
        }

        /// The reviews as a step's examples.
        fn examples(&self) -> Examples<'_> {
            Examples {
                encoded: &self.encoded,
                labels: &self.labels,
                pad_id: self.pad_id,
            }
        }

        /// One batch of all of them.
        fn all(&self) -> Vec<usize> {
            (0..self.encoded.len()).collect()
        }
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let s = Schedule::new(1.0, 0.1, 100);
        assert_eq!(s.warmup, 10);
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        assert!(s.at(55) < s.at(10) && s.at(55) > 0.0);
        assert_eq!(s.at(100), 0.0);
        // No warmup: the first step runs at the peak.
        assert_eq!(Schedule::new(2.0, 0.0, 10).at(0), 2.0);
    }

    /// `steps` steps on the same batch of 8 reviews, from the tiny backbone.
    fn train(t: &TinyBatch, ctx: &StepContext, steps: usize) -> (Vec<StepStats>, Vec<f32>) {
        let mut model = t.model(&ctx.devices[0]);
        let mut optim = optimizer(0.01).unwrap();
        let mut stats = Vec::new();
        for step in 0..steps {
            let (next, outcome) =
                train_step(model, &mut optim, ctx, &t.examples(), &[t.all()], step);
            model = next;
            stats.push(outcome.expect("a finite step"));
        }
        (stats, testing::weights(&model))
    }

    fn ctx(devices: usize, lr: f64) -> StepContext {
        let device = Device::flex().autodiff();
        StepContext::new(vec![device; devices], 7, 1.0, Schedule::new(lr, 0.0, 1000))
    }

    #[test]
    fn steps_lower_the_loss_and_identical_runs_give_identical_weights() {
        let _serial = testing::serial();
        let t = TinyBatch::new(8);
        let before = testing::weights(&t.model(&Device::flex().autodiff()));
        let ctx = ctx(1, 1e-3);
        let (stats, after) = train(&t, &ctx, 6);
        assert!(
            stats[5].loss < stats[0].loss,
            "six steps on one batch should lower its loss: {stats:?}"
        );
        assert!(stats.iter().all(|s| s.samples == 8 && s.grad_norm > 0.0));
        assert!(
            testing::max_diff(&before, &after) > 1e-4,
            "the weights did not move"
        );
        let (again, after_again) = train(&t, &ctx, 6);
        assert_eq!(stats, again);
        assert_eq!(testing::max_diff(&after, &after_again), 0.0);
    }

    #[test]
    fn two_shards_and_two_accumulated_batches_compute_the_whole_batch_step() {
        let _serial = testing::serial();
        let t = TinyBatch::new(8);
        let one = {
            let mut optim = optimizer(0.01).unwrap();
            let ctx = ctx(1, 1e-3);
            train_step(
                t.model(&ctx.devices[0]),
                &mut optim,
                &ctx,
                &t.examples(),
                &[t.all()],
                0,
            )
            .1
            .unwrap()
        };
        let sharded = {
            let mut optim = optimizer(0.01).unwrap();
            let ctx = ctx(2, 1e-3);
            train_step(
                t.model(&ctx.devices[0]),
                &mut optim,
                &ctx,
                &t.examples(),
                &[t.all()],
                0,
            )
            .1
            .unwrap()
        };
        let accumulated = {
            let mut optim = optimizer(0.01).unwrap();
            let ctx = ctx(1, 1e-3);
            let halves: [Vec<usize>; 2] = [(0..4).collect(), (4..8).collect()];
            train_step(
                t.model(&ctx.devices[0]),
                &mut optim,
                &ctx,
                &t.examples(),
                &halves,
                0,
            )
            .1
            .unwrap()
        };
        for other in [sharded, accumulated] {
            assert_eq!(other.samples, 8);
            assert!(
                (other.loss - one.loss).abs() < 1e-5 * one.loss,
                "{other:?} vs {one:?}"
            );
            let rel = ((other.grad_norm - one.grad_norm) / one.grad_norm).abs();
            assert!(rel < 1e-4, "{other:?} vs {one:?}");
        }
    }

    #[test]
    fn a_non_finite_loss_leaves_the_model_unchanged() {
        let _serial = testing::serial();
        let t = TinyBatch::new(4);
        let ctx = ctx(1, 1e-3);
        let mut model = t.model(&ctx.devices[0]);
        let dims = model.classifier.weight.dims();
        model.classifier.weight =
            Param::from_tensor(Tensor::<2>::full(dims, f32::NAN, &ctx.devices[0]));
        let bias = model.classifier.bias.as_ref().unwrap().val().into_data();
        let mut optim = optimizer(0.01).unwrap();
        let (model, outcome) = train_step(model, &mut optim, &ctx, &t.examples(), &[t.all()], 0);
        assert!(
            matches!(outcome, Err(Diverged::Loss(v)) if v.is_nan()),
            "{outcome:?}"
        );
        assert_eq!(model.classifier.bias.unwrap().val().into_data(), bias);
    }

    /// With zero gradients AdamW's update is the decay alone: decayed weights shrink
    /// by `lr * weight_decay`, biases and LayerNorm parameters stay put.
    #[test]
    fn the_optimizer_decays_weights_but_not_biases_or_layer_norms() {
        let _serial = testing::serial();
        let t = TinyBatch::new(4);
        let device = Device::flex().autodiff();
        let model = t.model(&device);
        let rows: Vec<&Encoded> = t.examples().encoded.iter().collect();
        let batch = Batch::collate(&rows, t.examples().pad_id);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 1, 0], [4]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(model.forward(&batch.to_input(&device)), targets);
        let grads = GradientsParams::from_grads((loss * 0.0).backward(), &model);
        let params = |m: &BertForSequenceClassification| {
            (
                m.classifier
                    .weight
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
                m.classifier.bias.as_ref().unwrap().val().into_data(),
                m.bert.embeddings.layer_norm.gamma.val().into_data(),
            )
        };
        let (weight, bias, gamma) = params(&model);
        let mut optim = optimizer(0.5).unwrap();
        let updated = optim.step(0.1, model, grads);
        let (weight_after, bias_after, gamma_after) = params(&updated);
        assert_eq!(bias_after, bias, "a bias was decayed");
        assert_eq!(gamma_after, gamma, "a LayerNorm gamma was decayed");
        for (w, a) in weight.iter().zip(&weight_after) {
            assert!(
                (a - w * 0.95).abs() <= 1e-6 * w.abs().max(1e-3),
                "{w} -> {a}"
            );
        }
    }
}
