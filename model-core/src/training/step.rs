//! One optimisation step: forward, cross-entropy and backward over a group of batches
//! (gradient accumulation) and over the shards of each batch (data parallelism), then
//! global-norm clipping, the learning-rate schedule and the AdamW update.
//!
//! A step is [`StepContext::backward`] (everything that stays on the devices), a read
//! of its losses and squared gradient norm, and [`StepContext::apply`] (the checks and
//! the update). [`train_step`] reads synchronously, natively and on flex in the
//! browser; [`train_step_async`] awaits the reads, which WebGPU requires.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::optimizer::{clip_to, sum_of_squares};
use super::schedule::Schedule;
use crate::error::{Error, Result};
use crate::model::BertForSequenceClassification;
use crate::tokenizer::{Batch, Encoded};

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
    /// A batch's loss was not finite.
    Loss(f64),
    /// The summed gradients' norm was not finite.
    GradNorm(f32),
}

/// A step's gradients, computed on the devices and not yet applied, with the tensors
/// its checks read.
pub struct Backward {
    grads: GradientsParams,
    /// Per batch of the group: each shard's loss and its share of the batch.
    losses: Vec<Vec<(Tensor<1>, f64)>>,
    /// Σ g² over the summed gradients.
    sum_squares: Option<Tensor<1>>,
    samples: usize,
}

/// The values [`StepContext::apply`] needs, read back from a [`Backward`].
struct Read {
    /// Each batch's loss (the shards' losses weighted by their share).
    batch_losses: Vec<f64>,
    sum_squares: Option<f32>,
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

    /// Forward and backward for step number `step` (0-based) over `group`, the
    /// batches (lists of indices into `data`) whose gradients are accumulated into
    /// this one update. Reads nothing back.
    pub fn backward(
        &self,
        model: &BertForSequenceClassification,
        data: &Examples<'_>,
        group: &[Vec<usize>],
        step: usize,
    ) -> Backward {
        let devices = &self.devices;
        let device = &devices[0];
        let mut accumulator = GradientsAccumulator::<BertForSequenceClassification>::new();
        let mut losses = Vec::with_capacity(group.len());
        let mut samples = 0usize;
        let group_len = group.len() as f64;
        for (k, idx) in group.iter().enumerate() {
            // Reseeding per batch makes dropout a function of the position in the run,
            // so a resumed run draws the same masks as an uninterrupted one.
            let seed =
                self.seed ^ ((step as u64) << 8 | k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
            // Data parallelism: one contiguous shard of the batch per device, each with
            // a replica of the model; a shard's loss is weighted by its share of the
            // batch, so the summed gradients are the whole batch's mean-loss gradient.
            // With one device this is the whole batch on `model` itself.
            let per_shard = idx.len().div_ceil(devices.len());
            let mut shards = Vec::with_capacity(devices.len());
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
                let targets = Tensor::<1, Int>::from_data(
                    TensorData::new(targets, [shard.len()]),
                    shard_device,
                );
                let logits = replica.forward(&batch.to_input(shard_device));
                let loss = self.loss.forward(logits, targets);
                let share = shard.len() as f64 / idx.len() as f64;
                let scaled = loss.clone() * (share / group_len);
                let mut grads = GradientsParams::from_grads(scaled.backward(), &replica);
                if d > 0 {
                    grads = grads.to_device(device, model);
                }
                accumulator.accumulate(model, grads);
                shards.push((loss, share));
            }
            losses.push(shards);
            samples += idx.len();
        }
        let grads = accumulator.grads();
        let sum_squares = sum_of_squares(model, &grads);
        Backward {
            grads,
            losses,
            sum_squares,
            samples,
        }
    }

    /// [`Self::backward`] run on one of rayon's threads (where there is a pool): its
    /// hundreds of parallel kernels then split their work by stealing inside the
    /// pool instead of each being handed over from the calling thread and waited for,
    /// two cross-thread wake-ups apiece (in the browser's threaded module, the
    /// library's worker is outside the pool).
    fn backward_in_pool(
        &self,
        model: &BertForSequenceClassification,
        data: &Examples<'_>,
        group: &[Vec<usize>],
        step: usize,
    ) -> Backward {
        crate::kernels::simd::in_pool(|| self.backward(model, data, group, step))
    }

    /// The update of step `step` from its [`Backward`] and the values read from it:
    /// the model updated when every loss and the gradient norm are finite, unchanged
    /// (with why) when not, so the caller never applies a non-finite update.
    fn apply(
        &self,
        model: BertForSequenceClassification,
        optim: &mut ModuleOptimizer,
        backward: Backward,
        read: Read,
        step: usize,
    ) -> (BertForSequenceClassification, Result<StepStats, Diverged>) {
        let group_len = read.batch_losses.len() as f64;
        let mut step_loss = 0.0f64;
        for value in read.batch_losses {
            if !value.is_finite() {
                return (model, Err(Diverged::Loss(value)));
            }
            step_loss += value / group_len;
        }
        let mut grads = backward.grads;
        let grad_norm = read.sum_squares.map_or(0.0, f32::sqrt);
        clip_to(&model, &mut grads, grad_norm, self.clip);
        if !grad_norm.is_finite() {
            // Stop before the update: the weights in memory and on disk stay finite.
            return (model, Err(Diverged::GradNorm(grad_norm)));
        }
        let lr = self.schedule.at(step);
        let model = optim.step(lr, model, grads);
        let stats = StepStats {
            loss: step_loss,
            grad_norm,
            lr,
            samples: backward.samples,
        };
        (model, Ok(stats))
    }
}

/// One optimizer step number `step` (0-based) over `group` (see
/// [`StepContext::backward`]), reading its losses synchronously: natively, and on
/// flex in the browser.
///
/// Returns the model, updated when the step completed and unchanged when it
/// [`Diverged`].
pub fn train_step(
    model: BertForSequenceClassification,
    optim: &mut ModuleOptimizer,
    ctx: &StepContext,
    data: &Examples<'_>,
    group: &[Vec<usize>],
    step: usize,
) -> (BertForSequenceClassification, Result<StepStats, Diverged>) {
    let backward = ctx.backward_in_pool(&model, data, group, step);
    // Read the losses only now, so the devices work at the same time.
    let batch_losses = backward
        .losses
        .iter()
        .map(|shards| {
            shards
                .iter()
                .map(|(loss, share)| loss.clone().into_scalar::<f32>() as f64 * share)
                .sum()
        })
        .collect();
    let sum_squares = backward
        .sum_squares
        .as_ref()
        .map(|t| t.clone().into_scalar::<f32>());
    let read = Read {
        batch_losses,
        sum_squares,
    };
    ctx.apply(model, optim, backward, read, step)
}

/// [`train_step`] with its reads awaited, for WebGPU in the browser (where a
/// synchronous read panics); on other devices the same arithmetic. A failed read is
/// the outer error; the model then comes back unchanged.
pub async fn train_step_async(
    model: BertForSequenceClassification,
    optim: &mut ModuleOptimizer,
    ctx: &StepContext,
    data: &Examples<'_>,
    group: &[Vec<usize>],
    step: usize,
) -> (
    BertForSequenceClassification,
    Result<Result<StepStats, Diverged>>,
) {
    let backward = ctx.backward_in_pool(&model, data, group, step);
    let read = match read_async(&backward).await {
        Ok(read) => read,
        Err(e) => return (model, Err(e)),
    };
    let (model, outcome) = ctx.apply(model, optim, backward, read, step);
    (model, Ok(outcome))
}

async fn read_async(backward: &Backward) -> Result<Read> {
    let scalar = |e| Error::Execution(format!("reading a training step's loss: {e:?}"));
    let mut batch_losses = Vec::with_capacity(backward.losses.len());
    for shards in &backward.losses {
        let mut value = 0.0f64;
        for (loss, share) in shards {
            let v: f32 = loss.clone().into_scalar_async().await.map_err(scalar)?;
            value += v as f64 * share;
        }
        batch_losses.push(value);
    }
    let sum_squares = match &backward.sum_squares {
        Some(t) => Some(t.clone().into_scalar_async::<f32>().await.map_err(scalar)?),
        None => None,
    };
    Ok(Read {
        batch_losses,
        sum_squares,
    })
}
