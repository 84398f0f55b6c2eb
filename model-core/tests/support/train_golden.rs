//! The training golden (`fixtures/tiny/train_golden.json`: PyTorch's steps, made by
//! `tools/make_train_golden.py`), shared by the native test (`tests/training.rs`) and
//! the browser's (`web/tests/training.rs`): the same model, batch and settings, and one
//! comparison, so that both hold `model_core::training` to the same numbers.
#![allow(dead_code)]

use std::fmt;

use burn::prelude::*;
use model_core::model::{BertForSequenceClassification, BertInput};
use model_core::tokenizer::{Batch, BertTokenizer, Encoded};
use model_core::training::{Examples, Schedule, StepContext, StepStats};
use model_core::weights::Checkpoint;
use model_core::{BertConfig, Truncation};

const CONFIG: &str = include_str!("../fixtures/tiny/finetuned/config.json");
const TOKENIZER: &[u8] = include_bytes!("../fixtures/tiny/finetuned/tokenizer.json");
const WEIGHTS: &[u8] = include_bytes!("../fixtures/tiny/finetuned/model.safetensors");
const GOLDEN: &str = include_str!("../fixtures/tiny/train_golden.json");

/// The golden run: its settings, and its batch tokenized by this crate's tokenizer.
pub struct Golden {
    json: serde_json::Value,
    config: BertConfig,
    pub encoded: Vec<Encoded>,
    pub labels: Vec<usize>,
    pub pad_id: u32,
}

/// How far a run is from PyTorch's: relative for the per-step loss and gradient norm,
/// absolute for the probabilities after the last step.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub loss: f64,
    pub grad_norm: f64,
    pub probabilities: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "largest differences from PyTorch: loss {:.2e} (relative), gradient norm {:.2e} (relative), probabilities {:.2e}",
            self.loss, self.grad_norm, self.probabilities
        )
    }
}

impl Golden {
    /// Read the fixture; the tokenizer must give PyTorch's ids for its texts.
    pub fn load() -> Self {
        let json: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
        let mut config = BertConfig::from_json_str(CONFIG, "finetuned/config.json").unwrap();
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        config.classifier_dropout = None;
        let tokenizer = BertTokenizer::from_bytes(TOKENIZER, "finetuned/tokenizer.json").unwrap();
        let max_len = json["max_len"].as_u64().unwrap() as usize;
        let texts: Vec<&str> = json["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let encoded = tokenizer
            .encode_batch(&texts, max_len, Truncation::Head)
            .unwrap();
        for (e, want) in encoded.iter().zip(json["input_ids"].as_array().unwrap()) {
            let want: Vec<u32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(e.ids, want, "the tokenizer's ids differ from PyTorch's");
        }
        let labels = json["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        Self {
            config,
            encoded,
            labels,
            pad_id: tokenizer.pad_id(),
            json,
        }
    }

    fn number(&self, key: &str) -> f64 {
        self.json[key].as_f64().unwrap()
    }

    /// The fine-tuned tiny model with dropout off, on `device`.
    pub fn model(&self, device: &Device) -> BertForSequenceClassification {
        let mut ckpt =
            Checkpoint::from_safetensors_bytes(WEIGHTS, "finetuned/model.safetensors").unwrap();
        BertForSequenceClassification::load(&self.config, 2, &mut ckpt, device)
            .unwrap()
            .0
    }

    /// The run's weight decay (for `training::optimizer`).
    pub fn weight_decay(&self) -> f64 {
        self.number("weight_decay")
    }

    /// The run's step context on `device` (an autodiff device).
    pub fn context(&self, device: &Device) -> StepContext {
        let schedule = Schedule::new(
            self.number("lr"),
            self.number("warmup"),
            self.number("total") as usize,
        );
        StepContext::new(vec![device.clone()], 0, self.number("clip"), schedule)
    }

    /// The batch as a step's examples.
    pub fn examples(&self) -> Examples<'_> {
        Examples {
            encoded: &self.encoded,
            labels: &self.labels,
            pad_id: self.pad_id,
        }
    }

    /// Every step's group: the whole batch, once.
    pub fn group(&self) -> Vec<Vec<usize>> {
        vec![(0..self.encoded.len()).collect()]
    }

    /// How many steps PyTorch ran.
    pub fn steps(&self) -> usize {
        self.json["steps"].as_array().unwrap().len()
    }

    /// Text `i` alone, as the model's input on `device`.
    pub fn input(&self, i: usize, device: &Device) -> BertInput {
        Batch::collate(&[&self.encoded[i]], self.pad_id).to_input(device)
    }

    /// Compare a run's step statistics and its probabilities after the last step
    /// (one `[p_negative, p_positive]` per text) with PyTorch's.
    pub fn compare(&self, stats: &[StepStats], probabilities: &[Vec<f32>]) -> Report {
        let steps = self.json["steps"].as_array().unwrap();
        assert_eq!(stats.len(), steps.len(), "steps run");
        let rel = |got: f64, want: f64| ((got - want) / want).abs();
        let mut report = Report {
            loss: 0.0,
            grad_norm: 0.0,
            probabilities: 0.0,
        };
        for (s, want) in stats.iter().zip(steps) {
            let lr = want["lr"].as_f64().unwrap();
            assert!((s.lr - lr).abs() < 1e-12, "learning rate {} vs {lr}", s.lr);
            report.loss = report.loss.max(rel(s.loss, want["loss"].as_f64().unwrap()));
            report.grad_norm = report
                .grad_norm
                .max(rel(s.grad_norm as f64, want["grad_norm"].as_f64().unwrap()));
        }
        let want = self.json["probabilities"].as_array().unwrap();
        assert_eq!(probabilities.len(), want.len(), "texts");
        for (p, w) in probabilities.iter().zip(want) {
            for (got, w) in p.iter().zip(w.as_array().unwrap()) {
                let d = (*got as f64 - w.as_f64().unwrap()).abs();
                report.probabilities = report.probabilities.max(d);
            }
        }
        report
    }
}

/// Softmax of one row of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}
