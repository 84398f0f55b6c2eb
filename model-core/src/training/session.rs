//! A fine-tuning run held in memory and driven one step at a time: what the page's
//! worker runs for `clf.fineTune`, awaiting each step so that progress, a cancel and
//! the page's other messages get in between. The step itself is the trainer's
//! ([`super::step`]), on the trainer's epoch order ([`super::plan`]) and schedule.

use burn::optim::ModuleOptimizer;

use super::optimizer::optimizer;
use super::plan::plan_epoch;
use super::recipe::Layers;
use super::recipe::{DEFAULT_CLIP, DEFAULT_LR, DEFAULT_SEED, DEFAULT_WARMUP, DEFAULT_WEIGHT_DECAY};
use super::schedule::Schedule;
use super::step::{Diverged, Examples, StepContext, StepStats, train_step_async};
use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::inference::Classifier;
use crate::model::BertForSequenceClassification;
use crate::tokenizer::Encoded;

/// The settings of an in-memory run, with the page's defaults: a few hundred
/// examples, two epochs, 128 tokens (most short texts fit; twice as fast as 256).
#[derive(Debug, Clone, PartialEq)]
pub struct TuneSettings {
    /// Passes over the training examples.
    pub epochs: usize,
    /// Peak learning rate (warmup over the first 10% of steps, then linear decay).
    pub learning_rate: f64,
    /// Examples per step.
    pub batch_size: usize,
    /// Tokens per training text, special tokens included.
    pub max_len: usize,
    /// Which parameters train.
    pub layers: Layers,
    /// The fraction of the examples held out (stratified, seeded) to score the model
    /// before and after and to fit its calibration; 0 holds none out.
    pub validation: f64,
    /// The seed of the split, the data order and dropout.
    pub seed: u64,
}

impl Default for TuneSettings {
    fn default() -> Self {
        Self {
            epochs: 2,
            learning_rate: DEFAULT_LR,
            batch_size: 16,
            max_len: 128,
            layers: Layers::All,
            validation: 0.2,
            seed: DEFAULT_SEED,
        }
    }
}

impl TuneSettings {
    /// Each setting in range for a model whose position table holds `max_positions`;
    /// errors name the setting as the JS API spells it.
    pub fn check(&self, max_positions: usize) -> Result<()> {
        let bad = |what: &str, why: String| Err(Error::InvalidArgument(format!("{what}: {why}")));
        if self.epochs == 0 {
            return bad("epochs", "at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learningRate",
                format!("{} is not a positive number", self.learning_rate),
            );
        }
        if self.batch_size == 0 {
            return bad("batchSize", "at least 1".into());
        }
        if self.max_len < 3 || self.max_len > max_positions {
            return bad(
                "maxLen",
                format!(
                    "{} is not within 3..={max_positions} (the model's positions)",
                    self.max_len
                ),
            );
        }
        if !(0.0..1.0).contains(&self.validation) {
            return bad(
                "validation",
                format!("{} is not a fraction in [0, 1)", self.validation),
            );
        }
        Ok(())
    }
}

/// Accuracy and mean cross-entropy of a model on labelled examples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Scores {
    /// Fraction classified right.
    pub accuracy: f64,
    /// Mean cross-entropy of the raw (uncalibrated) logits.
    pub loss: f64,
}

/// Each example's raw logits under `c`, in order, read back asynchronously (WebGPU
/// allows nothing else).
pub async fn logits_async(c: &Classifier, encoded: &[Encoded]) -> Result<Vec<Vec<f32>>> {
    let n = c.labels.len();
    let mut out = vec![Vec::new(); encoded.len()];
    for idx in c.plan_batches(encoded) {
        let rows: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
        let values = c
            .logits(&rows)
            .into_data_async()
            .await
            .map_err(|e| Error::Execution(format!("reading logits: {e:?}")))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Execution(format!("reading logits: {e:?}")))?;
        for (row, &i) in idx.iter().enumerate() {
            out[i] = values[row * n..(row + 1) * n].to_vec();
        }
    }
    Ok(out)
}

/// [`Scores`] of `logits` against `labels`, with the pairs the calibration is fitted on.
pub fn scores(logits: Vec<Vec<f32>>, labels: &[usize]) -> (Scores, Vec<(Vec<f32>, usize)>) {
    let pairs: Vec<(Vec<f32>, usize)> = logits.into_iter().zip(labels.iter().copied()).collect();
    let right = pairs
        .iter()
        .filter(|(l, y)| (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])) == Some(*y))
        .count();
    let scores = Scores {
        accuracy: right as f64 / pairs.len().max(1) as f64,
        loss: Calibration::NONE.nll(&pairs),
    };
    (scores, pairs)
}

/// A run in progress: the model (on an autodiff device), its optimizer and the
/// training examples, tokenized.
pub struct FineTune {
    model: Option<BertForSequenceClassification>,
    optim: ModuleOptimizer,
    ctx: StepContext,
    encoded: Vec<Encoded>,
    labels: Vec<usize>,
    lengths: Vec<usize>,
    pad_id: u32,
    batch_size: usize,
    layers: Layers,
    steps_per_epoch: usize,
    step: usize,
    plan: Option<(usize, Vec<Vec<usize>>)>,
}

/// Where a run stands, as bytes a browser can keep: the weights and the optimizer's
/// state (both burnpack) after `step` of `steps` steps. With the same examples and
/// settings, [`FineTune::restore`] goes on from it to the weights an uninterrupted run
/// reaches, since the epoch order and dropout are functions of the seed and the step.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Steps done.
    pub step: usize,
    /// Steps of the whole run (a snapshot of another run's plan is refused).
    pub steps: usize,
    /// The model, trainable parameters and frozen alike, in burnpack format.
    pub model: Vec<u8>,
    /// AdamW's moments, in burnpack format.
    pub optimizer: Vec<u8>,
}

impl FineTune {
    /// A run of `settings` over `encoded` (with class `labels`) starting from
    /// `model`, which must live on an autodiff device; `pad_id` is the tokenizer's.
    pub fn new(
        model: BertForSequenceClassification,
        encoded: Vec<Encoded>,
        labels: Vec<usize>,
        pad_id: u32,
        settings: &TuneSettings,
    ) -> Result<Self> {
        if encoded.is_empty() {
            return Err(Error::InvalidArgument(
                "examples: none left to train on".into(),
            ));
        }
        let device = model.classifier.weight.val().device();
        let steps_per_epoch = encoded.len().div_ceil(settings.batch_size.max(1));
        let total = steps_per_epoch * settings.epochs;
        let schedule = Schedule::new(settings.learning_rate, DEFAULT_WARMUP, total);
        let ctx = StepContext::new(vec![device], settings.seed, DEFAULT_CLIP, schedule);
        Ok(Self {
            model: Some(settings.layers.apply(model)),
            optim: optimizer(DEFAULT_WEIGHT_DECAY)?,
            ctx,
            lengths: encoded.iter().map(|e| e.ids.len()).collect(),
            encoded,
            labels,
            pad_id,
            batch_size: settings.batch_size.max(1),
            layers: settings.layers,
            steps_per_epoch,
            step: 0,
            plan: None,
        })
    }

    /// Steps of the whole run.
    pub fn steps(&self) -> usize {
        self.ctx.schedule.total
    }

    /// Steps done.
    pub fn done(&self) -> usize {
        self.step
    }

    /// The epoch (0-based) of the next step.
    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch
    }

    /// The next step: the update made, with what it reports. A step whose loss or
    /// gradient is not finite leaves the model as it was and is an error that says so.
    pub async fn step(&mut self) -> Result<StepStats> {
        if self.step >= self.steps() {
            return Err(Error::InvalidArgument("the run has ended".into()));
        }
        let epoch = self.epoch();
        if self.plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let plan = plan_epoch(&self.lengths, self.batch_size, self.ctx.seed, epoch);
            self.plan = Some((epoch, plan));
        }
        let (_, plan) = self.plan.as_ref().expect("planned");
        let group = vec![plan[self.step % self.steps_per_epoch].clone()];
        let data = Examples {
            encoded: &self.encoded,
            labels: &self.labels,
            pad_id: self.pad_id,
        };
        let model = self.model.take().expect("a model between steps");
        let (model, outcome) =
            train_step_async(model, &mut self.optim, &self.ctx, &data, &group, self.step).await;
        self.model = Some(model);
        match outcome? {
            Ok(stats) => {
                self.step += 1;
                Ok(stats)
            }
            Err(Diverged::Loss(v)) => Err(Error::Execution(format!(
                "step {}: the loss became {v}; try a lower learning rate",
                self.step + 1
            ))),
            Err(Diverged::GradNorm(v)) => Err(Error::Execution(format!(
                "step {}: the gradient norm became {v}; try a lower learning rate",
                self.step + 1
            ))),
        }
    }

    /// The model as it stands (on the autodiff device).
    pub fn model(&self) -> &BertForSequenceClassification {
        self.model.as_ref().expect("a model between steps")
    }

    /// The run as it stands. It reads the weights synchronously: on the CPU engine
    /// only (a WebGPU tensor can only be read asynchronously, and burn's optimizer
    /// state has no asynchronous read).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let optimizer = self
            .optim
            .into_bytes()
            .map_err(|e| Error::Execution(format!("saving the optimizer state: {e:?}")))?;
        Ok(Snapshot {
            step: self.step,
            steps: self.steps(),
            model: self.model().burnpack_bytes()?,
            optimizer: optimizer.to_vec(),
        })
    }

    /// Go on from `snapshot`, taken from a run of the same examples and settings: its
    /// weights, optimizer state and step replace this run's.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        if snapshot.steps != self.steps() || snapshot.step > snapshot.steps {
            return Err(Error::InvalidArgument(format!(
                "checkpoint: step {} of {} does not fit this run of {} steps",
                snapshot.step,
                snapshot.steps,
                self.steps()
            )));
        }
        let mut model = self.model().clone();
        let bytes = burn::tensor::Bytes::from_bytes_vec(snapshot.model.clone());
        let mut store = burn_store::BurnpackStore::from_bytes(Some(bytes));
        model.fill_from_burnpack(&mut store, "checkpoint model")?;
        let optim = optimizer(DEFAULT_WEIGHT_DECAY)?
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(
                snapshot.optimizer.clone(),
            ))
            .map_err(|e| Error::Checkpoint {
                source_name: "checkpoint optimizer state".into(),
                message: format!("{e:?}"),
            })?;
        self.model = Some(self.layers.apply(model));
        self.optim = optim;
        self.step = snapshot.step;
        self.plan = None;
        Ok(())
    }
}
