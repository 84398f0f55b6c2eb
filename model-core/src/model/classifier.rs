//! `BertForSequenceClassification`: the encoder, then dropout and a linear layer on
//! the pooled `[CLS]` representation.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;

use super::{BertInput, BertModel, linear, load_linear};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::ops::{self, ExecutionPath};
use crate::weights::{Checkpoint, LoadReport};

/// BERT with a classification head.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    /// The encoder (`bert.*` in checkpoints).
    pub bert: BertModel,
    /// Dropout before the head (training only).
    pub dropout: Dropout,
    /// `classifier`: hidden → num_labels.
    pub classifier: Linear,
}

impl BertForSequenceClassification {
    /// Fresh weights for `num_labels` classes.
    pub fn init(config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self {
            bert: BertModel::init(config, device),
            dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
            classifier: linear(config, config.hidden_size, num_labels, device),
        }
    }

    /// Load a checkpoint. The head comes from `classifier.*` when the checkpoint is
    /// already fine-tuned; otherwise it is freshly initialised, and the report says so.
    pub fn load(
        config: &BertConfig,
        num_labels: usize,
        ckpt: &mut Checkpoint,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let bert = BertModel::load(config, ckpt, device)?;
        let mut report = LoadReport::default();
        let classifier = if ckpt.contains("classifier.weight") {
            load_linear(ckpt, "classifier", config.hidden_size, num_labels, device)?
        } else {
            report.initialized = vec!["classifier.weight".into(), "classifier.bias".into()];
            linear(config, config.hidden_size, num_labels, device)
        };
        report.unused = ckpt.unused();
        Ok((
            Self {
                bert,
                dropout: DropoutConfig::new(config.classifier_dropout_prob()).init(),
                classifier,
            },
            report,
        ))
    }

    /// Load burn's own burnpack format (what the trainer checkpoints and exports);
    /// [`crate::open::read_model`] is the way in. `source_name` names the file in errors.
    pub(crate) fn load_burnpack(
        config: &BertConfig,
        num_labels: usize,
        store: &mut burn_store::BurnpackStore,
        source_name: &str,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let mut model = Self::init(config, num_labels, device);
        let unused = model.fill_from_burnpack(store, source_name)?;
        Ok((
            model,
            LoadReport {
                unused,
                initialized: vec![],
            },
        ))
    }

    /// Replace every weight with the burnpack's, keeping this model's device and which
    /// parameters train, and taking the saved parameter ids (an optimizer's state is
    /// keyed by them, so a checkpoint's optimizer state finds its weights again). Every
    /// tensor of the model must be there; what is left over is returned.
    pub(crate) fn fill_from_burnpack(
        &mut self,
        store: &mut burn_store::BurnpackStore,
        source_name: &str,
    ) -> Result<Vec<String>> {
        use burn_store::ModuleSnapshot;
        let result = self.load_from(store).map_err(|e| Error::Checkpoint {
            source_name: source_name.into(),
            message: e.to_string(),
        })?;
        if let Some(e) = result.errors.first() {
            return Err(Error::Checkpoint {
                source_name: source_name.into(),
                message: format!("{e}"),
            });
        }
        if let Some((name, _)) = result.missing.first() {
            return Err(Error::MissingTensor {
                source_name: source_name.into(),
                name: name.clone(),
                expected: vec![],
                found_like: result.applied.first().cloned(),
            });
        }
        Ok(result.unused)
    }

    /// Save in burnpack format.
    #[cfg(feature = "native")]
    pub fn save_burnpack(&self, path: &std::path::Path) -> Result<()> {
        use burn_store::ModuleSnapshot;
        let mut store = burn_store::BurnpackStore::from_file(path)
            .auto_extension(false)
            .overwrite(true);
        self.save_into(&mut store).map_err(|e| Error::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The model in burnpack format, in memory (what [`Self::save_burnpack`] writes):
    /// the f32 web bundle's weights, natively and in the browser.
    pub fn burnpack_bytes(&self) -> Result<Vec<u8>> {
        use burn_store::ModuleSnapshot;
        let mut store = burn_store::BurnpackStore::from_bytes(None);
        let fail = |e: String| Error::Write {
            path: "model.bpk".into(),
            message: e,
        };
        self.save_into(&mut store)
            .map_err(|e| fail(e.to_string()))?;
        let bytes = store.get_bytes().map_err(|e| fail(e.to_string()))?;
        Ok(bytes.to_vec())
    }

    /// Logits `[batch, num_labels]`.
    pub fn forward(&self, input: &BertInput) -> Tensor<2> {
        let pooled = self.bert.pooled(input);
        let pooled = ops::dropout(ExecutionPath::of(&pooled), &self.dropout, pooled);
        self.classifier.forward(pooled)
    }

    /// Number of classes the head predicts.
    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Replace the head with a fresh one (a different number of classes).
    pub fn reset_head(&mut self, config: &BertConfig, num_labels: usize) {
        let device = self.classifier.weight.device();
        let fresh = linear(config, config.hidden_size, num_labels, &device);
        self.classifier = Linear {
            weight: Param::from_tensor(fresh.weight.val()),
            bias: fresh.bias,
        };
    }
}
