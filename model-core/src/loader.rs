//! Model folders on disk (native): a [`ModelFolder`] is the [`ModelFiles`] of a
//! directory, and [`load_classifier`] opens a folder or hub id with
//! [`Classifier::open`], the same rules the page applies to files in memory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::hub::resolve_model;
use crate::inference::{Classifier, InferenceOptions};
use crate::open::{ModelFiles, read_checkpoint, read_config, read_tokenizer, weights_file};
use crate::tokenizer::BertTokenizer;
use crate::weights::{Checkpoint, LoadReport};

/// A model folder: Hugging Face (`config.json`, a tokenizer, safetensors or PyTorch
/// weights), the trainer's (`model.bpk`), or an exported web bundle.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its weights file: the first of [`crate::open::WEIGHT_FILES`] it holds.
    pub weights: &'static str,
}

impl ModelFolder {
    /// The folder `dir`, with errors that say which file is missing.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let mut folder = Self {
            dir: dir.into(),
            weights: "",
        };
        if !folder.has("config.json")? {
            read_config(&folder)?;
        }
        folder.weights = weights_file(&folder)?;
        Ok(folder)
    }

    /// `config.json`.
    pub fn config(&self) -> Result<BertConfig> {
        read_config(self)
    }

    /// The tokenizer (`tokenizer.json`, else `vocab.txt`).
    pub fn tokenizer(&self) -> Result<BertTokenizer> {
        read_tokenizer(self)
    }

    /// The checkpoint tensors of a Hugging Face folder.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        read_checkpoint(self, self.weights)
    }
}

impl ModelFiles for ModelFolder {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Cow::Owned(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn display(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join(name))
    }

    fn has(&self, name: &str) -> Result<bool> {
        Ok(self.dir.join(name).is_file())
    }
}

/// A loaded classifier and what loading left aside.
#[derive(Debug)]
pub struct Loaded {
    /// Ready to predict.
    pub classifier: Classifier,
    /// Unused tensors and freshly initialised parameters.
    pub report: LoadReport,
    /// The folder it came from.
    pub folder: ModelFolder,
}

/// Open `spec` (a folder or hub id) on `device` with [`Classifier::open`]; `options`
/// replace the model's own (its manifest's or `inference.json`'s).
pub fn load_classifier(spec: &str, device: &Device, options: InferenceOptions) -> Result<Loaded> {
    let folder = ModelFolder::in_dir(&resolve_model(spec)?)?;
    let (classifier, report) = Classifier::open(&folder, device, Some(options))?;
    Ok(Loaded {
        classifier,
        report,
        folder,
    })
}
