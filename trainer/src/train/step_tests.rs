//! model-core's training step ([`model_core::training`], the one the page runs too)
//! driven with the trainer's data and fixtures: it learns, it is deterministic, data
//! parallelism and gradient accumulation compute the whole batch's step, a non-finite
//! loss leaves the weights alone, and AdamW's decay skips biases and LayerNorms.

use crate::data::{self, Columns, Split};
use crate::train::testing::{self, backbone_without_dropout, tiny};
use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use model_core::Truncation;
use model_core::loader::ModelFolder;
use model_core::model::BertForSequenceClassification;
use model_core::tokenizer::{Batch, Encoded};
use model_core::training::{
    Diverged, Examples, Schedule, StepContext, StepStats, optimizer, train_step,
};
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
        let all = data::load(&tiny("reviews.jsonl"), Split::Train, &Columns::default()).unwrap();
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

/// `steps` steps on the same batch of 8 reviews, from the tiny backbone.
fn train(t: &TinyBatch, ctx: &StepContext, steps: usize) -> (Vec<StepStats>, Vec<f32>) {
    let mut model = t.model(&ctx.devices[0]);
    let mut optim = optimizer(0.01).unwrap();
    let mut stats = Vec::new();
    for step in 0..steps {
        let (next, outcome) = train_step(model, &mut optim, ctx, &t.examples(), &[t.all()], step);
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
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 1, 0], [4]), &device);
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
