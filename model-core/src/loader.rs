//! Loading a classifier from a model folder or hub id (native): the config, the
//! tokenizer (`tokenizer.json`, else `vocab.txt`) and the weights
//! (`model.safetensors`, else `pytorch_model.bin`).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::bundle::Manifest;
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::hub::resolve_model;
use crate::inference::{Classifier, InferenceOptions};
use crate::model::BertForSequenceClassification;
use crate::tokenizer::BertTokenizer;
use crate::weights::{Checkpoint, LoadReport};

/// The files of one model folder.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// The weights file.
    pub weights: PathBuf,
}

impl ModelFiles {
    /// Find the files in `dir`, with errors that say which one is missing.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(Error::MissingFile {
                dir: dir.into(),
                file: "config.json".into(),
                hint: Some(
                    "a Hugging Face model folder has config.json next to its weights".into(),
                ),
            });
        }
        let weights = crate::hub::WEIGHT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::MissingFile {
                dir: dir.into(),
                file: "model.safetensors".into(),
                hint: Some("or pytorch_model.bin, or model.bpk from the trainer".into()),
            })?;
        Ok(Self {
            dir: dir.into(),
            config,
            weights,
        })
    }

    /// Read the tokenizer: `tokenizer.json`, else `vocab.txt` with `do_lower_case`
    /// from `tokenizer_config.json` (default true, as for uncased BERT).
    pub fn tokenizer(&self) -> Result<BertTokenizer> {
        let json = self.dir.join("tokenizer.json");
        if json.is_file() {
            return BertTokenizer::from_file(&json);
        }
        let vocab = self.dir.join("vocab.txt");
        if vocab.is_file() {
            let lowercase = std::fs::read_to_string(self.dir.join("tokenizer_config.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
                .unwrap_or(true);
            let text = std::fs::read_to_string(&vocab).map_err(|e| Error::io(&vocab, e))?;
            return BertTokenizer::from_vocab(&text, lowercase, &vocab.display().to_string());
        }
        Err(Error::MissingFile {
            dir: self.dir.clone(),
            file: "tokenizer.json".into(),
            hint: Some("or vocab.txt".into()),
        })
    }

    /// Read the checkpoint tensors.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        if self.weights.extension().is_some_and(|e| e == "bin") {
            Checkpoint::from_pytorch_file(&self.weights)
        } else {
            Checkpoint::from_safetensors_file(&self.weights)
        }
    }
}

/// A loaded classifier and what loading left aside.
#[derive(Debug)]
pub struct Loaded {
    /// Ready to predict.
    pub classifier: Classifier,
    /// Unused tensors and freshly initialised parameters.
    pub report: LoadReport,
    /// The files it came from.
    pub files: ModelFiles,
}

/// Load `spec` (folder or hub id) onto `device`. `num_labels` defaults to the
/// config's `id2label`, else 2.
pub fn load_classifier(spec: &str, device: &Device, options: InferenceOptions) -> Result<Loaded> {
    let dir = resolve_model(spec)?;
    let files = ModelFiles::in_dir(&dir)?;
    if dir.join("manifest.json").is_file() {
        let mut loaded = load_bundle(files, device, options.batch_size)?;
        loaded.classifier.set_options(options)?;
        return Ok(loaded);
    }
    let config = BertConfig::from_file(&files.config)?;
    let tokenizer = files.tokenizer()?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::config(
            files.config.display().to_string(),
            format!(
                "the tokenizer has {} tokens but vocab_size is {}",
                tokenizer.vocab_size(),
                config.vocab_size
            ),
        ));
    }
    let num_labels = config.labels().len();
    let (model, report) = if files.weights.extension().is_some_and(|e| e == "bpk") {
        let mut store = burn_store::BurnpackStore::from_file(&files.weights).auto_extension(false);
        let name = files.weights.display().to_string();
        BertForSequenceClassification::load_burnpack(
            &config, num_labels, &mut store, &name, device,
        )?
    } else {
        let mut ckpt = files.checkpoint()?;
        BertForSequenceClassification::load(&config, num_labels, &mut ckpt, device)?
    };
    let classifier = Classifier::new(model, config, tokenizer, device.clone(), options)?;
    Ok(Loaded {
        classifier,
        report,
        files,
    })
}

/// A web bundle folder (`trainer export --format web`): every file is checked
/// against `manifest.json` (the caller's options then apply, which by default come
/// from the `inference.json` written next to it).
fn load_bundle(files: ModelFiles, device: &Device, batch_size: usize) -> Result<Loaded> {
    let manifest_path = files.dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    let manifest = Manifest::parse(&bytes, &manifest_path.display().to_string())?;
    let mut contents = std::collections::HashMap::new();
    for f in &manifest.files {
        let path = files.dir.join(&f.name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        contents.insert(f.name.clone(), bytes);
    }
    let (classifier, report) = Classifier::from_bundle(
        &manifest,
        |name| contents.get(name).map(Vec::as_slice),
        device,
        batch_size,
    )
    .map_err(|e| match e {
        Error::Integrity { file, message } => Error::Integrity {
            file: files.dir.join(file).display().to_string(),
            message,
        },
        other => other,
    })?;
    let files = ModelFiles {
        weights: files.dir.join(&manifest.weights),
        ..files
    };
    Ok(Loaded {
        classifier,
        report,
        files,
    })
}
