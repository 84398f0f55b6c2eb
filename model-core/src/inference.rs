//! Text in, [`Prediction`] out: tokenization, length-sorted batching with dynamic
//! padding, the forward pass, and the model's logits turned into probabilities with
//! its calibration ([`crate::calibration`]), behind one type, [`Classifier`].
//!
//! Results are read back with `into_data_async` in [`Classifier::predict_async`],
//! which is the only way that works on WebGPU; native code may use the blocking
//! [`Classifier::predict`].

use burn::prelude::*;
use serde::ser::{SerializeMap, SerializeStruct};

use crate::calibration::Calibration;
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::BertForSequenceClassification;
use crate::ops::MatmulPrecision;
use crate::tokenizer::{Batch, BertTokenizer, Encoded, Truncation};

/// The model's answer for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Every label with its probability, in class-index order.
    pub probabilities: Vec<(String, f32)>,
    /// Content tokens in the text before truncation.
    pub tokens: usize,
    /// Whether the text was longer than the max length.
    pub truncated: bool,
}

impl Prediction {
    /// From one row of logits, through `calibration` ([`Calibration::probabilities`]).
    pub fn from_logits(
        labels: &[String],
        logits: &[f32],
        calibration: Calibration,
        enc: &Encoded,
    ) -> Self {
        Self::from_probabilities(labels, &calibration.probabilities(logits), enc)
    }

    /// From one row of probabilities.
    pub fn from_probabilities(labels: &[String], probs: &[f32], enc: &Encoded) -> Self {
        let (best, &confidence) = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one class");
        Prediction {
            label: labels[best].clone(),
            confidence,
            probabilities: labels.iter().cloned().zip(probs.iter().copied()).collect(),
            tokens: enc.content_tokens,
            truncated: enc.truncated,
        }
    }

    /// The probability of `label`, if the model has it.
    pub fn probability(&self, label: &str) -> Option<f32> {
        self.probabilities
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, p)| *p)
    }
}

struct Probabilities<'a>(&'a [(String, f32)]);

impl serde::Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (label, p) in self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

/// `{"label": "positive", "confidence": 0.97, "probabilities": {"negative": 0.03, "positive": 0.97}}`
impl serde::Serialize for Prediction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Prediction", 3)?;
        st.serialize_field("label", &self.label)?;
        st.serialize_field("confidence", &self.confidence)?;
        st.serialize_field("probabilities", &Probabilities(&self.probabilities))?;
        st.end()
    }
}

/// Inference settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferenceOptions {
    /// Longest input in tokens, special tokens included.
    pub max_len: usize,
    /// What to drop from longer inputs.
    pub truncation: Truncation,
    /// Texts per forward pass.
    pub batch_size: usize,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        Self {
            max_len: 256,
            truncation: Truncation::HeadTail,
            batch_size: 32,
        }
    }
}

/// A ready-to-use sentiment classifier: model, tokenizer, labels and device.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// The network.
    pub model: BertForSequenceClassification,
    /// Its configuration.
    pub config: BertConfig,
    /// Its tokenizer.
    pub tokenizer: BertTokenizer,
    /// Label names in class order.
    pub labels: Vec<String>,
    /// Where it runs.
    pub device: Device,
    /// Length, truncation, batch size.
    pub options: InferenceOptions,
    /// How the logits become probabilities: the model's own ([`crate::calibration`]),
    /// [`Calibration::NONE`] until [`Self::set_calibration`].
    pub calibration: Calibration,
}

impl Classifier {
    /// Assemble from parts, checking the options against the model.
    pub fn new(
        model: BertForSequenceClassification,
        config: BertConfig,
        tokenizer: BertTokenizer,
        device: Device,
        options: InferenceOptions,
    ) -> Result<Self> {
        check_options(&config, &options)?;
        let labels = config.labels();
        if labels.len() != model.num_labels() {
            return Err(Error::config(
                "config.json",
                format!(
                    "id2label names {} labels but the classifier head has {} outputs",
                    labels.len(),
                    model.num_labels()
                ),
            ));
        }
        Ok(Self {
            model,
            config,
            tokenizer,
            labels,
            device,
            options,
            calibration: Calibration::NONE,
        })
    }

    /// Show probabilities through `calibration` from now on; `source` (the file it
    /// came from) names it when its numbers are not positive.
    pub fn set_calibration(&mut self, calibration: Calibration, source: &str) -> Result<()> {
        self.calibration = calibration.check(source)?;
        Ok(())
    }

    /// Change length/truncation/batch size.
    pub fn set_options(&mut self, options: InferenceOptions) -> Result<()> {
        check_options(&self.config, &options)?;
        self.options = options;
        Ok(())
    }

    /// The arithmetic of the CPU kernel's matrix products (see [`MatmulPrecision`]).
    pub fn matmul_precision(&self) -> MatmulPrecision {
        self.model.bert.encoder.precision
    }

    /// Compute the projections in f32 or int8 from now on (CPU kernel path only).
    pub fn set_matmul_precision(&mut self, products: MatmulPrecision) {
        self.model.bert.encoder.precision = products;
    }

    /// Tokenize with this classifier's settings.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        self.tokenizer
            .encode_batch(texts, self.options.max_len, self.options.truncation)
    }

    /// Logits `[rows, labels]` for already-tokenized rows (one forward pass). They are
    /// read back as they are and turned into probabilities on the host, in one place
    /// ([`Calibration::probabilities`]), whatever the device.
    pub fn logits(&self, rows: &[&Encoded]) -> Tensor<2> {
        let batch = Batch::collate(rows, self.tokenizer.pad_id());
        self.model.forward(&batch.to_input(&self.device))
    }

    /// Batches of row indices, longest first, so that each batch pads little.
    pub fn plan_batches(&self, encoded: &[Encoded]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].ids.len()));
        order
            .chunks(self.options.batch_size.max(1))
            .map(|c| c.to_vec())
            .collect()
    }

    fn collect(
        &self,
        encoded: &[Encoded],
        plan: &[Vec<usize>],
        logits: Vec<Vec<f32>>,
    ) -> Vec<Prediction> {
        let n = self.labels.len();
        let mut out: Vec<Option<Prediction>> = vec![None; encoded.len()];
        for (idx, rows) in plan.iter().zip(logits) {
            for (row, &i) in idx.iter().enumerate() {
                out[i] = Some(Prediction::from_logits(
                    &self.labels,
                    &rows[row * n..(row + 1) * n],
                    self.calibration,
                    &encoded[i],
                ));
            }
        }
        out.into_iter()
            .map(|p| p.expect("every row predicted"))
            .collect()
    }

    /// Classify texts (blocking read-back; native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        let encoded = self.encode(texts)?;
        let plan = self.plan_batches(&encoded);
        let results = self.read_logits(&encoded, &plan)?;
        Ok(self.collect(&encoded, &plan, results))
    }

    /// The raw logits of `texts`, one row each in input order (blocking; native
    /// only): what fitting a calibration, or measuring a model under several, needs.
    #[cfg(not(target_family = "wasm"))]
    pub fn predict_logits(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encoded = self.encode(texts)?;
        let plan = self.plan_batches(&encoded);
        let n = self.labels.len();
        let mut out = vec![Vec::new(); encoded.len()];
        for (idx, rows) in plan.iter().zip(self.read_logits(&encoded, &plan)?) {
            for (row, &i) in idx.iter().enumerate() {
                out[i] = rows[row * n..(row + 1) * n].to_vec();
            }
        }
        Ok(out)
    }

    #[cfg(not(target_family = "wasm"))]
    fn read_logits(&self, encoded: &[Encoded], plan: &[Vec<usize>]) -> Result<Vec<Vec<f32>>> {
        let mut results = Vec::with_capacity(plan.len());
        for idx in plan {
            let rows: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
            let data = self
                .logits(&rows)
                .try_into_data()
                .map_err(|e| Error::Execution(format!("{e:?}")))?;
            results.push(to_f32_vec(data)?);
        }
        Ok(results)
    }

    /// Classify texts, reading results back asynchronously (required on WebGPU).
    pub async fn predict_async(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        self.predict_encoded_async(self.encode(texts)?).await
    }

    /// [`Self::predict_async`] on texts already tokenized (with [`Self::encode`] or
    /// piece by piece, as the page does for very long reviews).
    pub async fn predict_encoded_async(&self, encoded: Vec<Encoded>) -> Result<Vec<Prediction>> {
        let plan = self.plan_batches(&encoded);
        let mut results = Vec::with_capacity(plan.len());
        for idx in &plan {
            let rows: Vec<&Encoded> = idx.iter().map(|&i| &encoded[i]).collect();
            let data = self
                .logits(&rows)
                .into_data_async()
                .await
                .map_err(|e| Error::Execution(format!("{e:?}")))?;
            results.push(to_f32_vec(data)?);
        }
        Ok(self.collect(&encoded, &plan, results))
    }
}

fn to_f32_vec(data: TensorData) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))
}

fn check_options(config: &BertConfig, o: &InferenceOptions) -> Result<()> {
    if o.batch_size == 0 {
        return Err(Error::InvalidArgument(
            "batch size must be at least 1".into(),
        ));
    }
    if o.max_len > config.max_position_embeddings {
        return Err(Error::InvalidArgument(format!(
            "max length {} is above the model's max_position_embeddings {}",
            o.max_len, config.max_position_embeddings
        )));
    }
    if o.max_len < 3 {
        return Err(Error::InvalidArgument(format!(
            "max length {} leaves no room for text",
            o.max_len
        )));
    }
    Ok(())
}
