//! Opening a classifier from its files, wherever they are: a Hugging Face folder
//! (safetensors or PyTorch weights, `tokenizer.json` or `vocab.txt`), a folder the
//! trainer wrote (`model.bpk`, `inference.json`), or a web bundle (`manifest.json`,
//! every file checked against its SHA-256), on disk or in memory.
//!
//! One entry point, [`Classifier::open`], and one reader per file kind, so the CLI,
//! the trainer, the tests and the page read each kind of folder by the same rules and
//! report a bad file the same way.

use std::borrow::Cow;
use std::collections::HashMap;

use burn::tensor::Device;

use crate::bundle::{MANIFEST_FILE, Manifest};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::inference::{Classifier, InferenceOptions};
use crate::model::BertForSequenceClassification;
use crate::settings::InferenceSettings;
use crate::tokenizer::BertTokenizer;
use crate::weights::{Checkpoint, LoadReport};

/// Weight files a model folder may hold, in the order they are preferred.
pub const WEIGHT_FILES: [&str; 3] = ["model.safetensors", "pytorch_model.bin", "model.bpk"];

/// The files of one model, by name: a folder on disk
/// ([`crate::loader::ModelFolder`]), files in memory (a `HashMap` of name → bytes,
/// what the browser fetched or the user picked), or [`HfBytes`].
pub trait ModelFiles {
    /// Where the files are, for messages about a missing one (a folder's path).
    fn location(&self) -> String;

    /// The bytes of `name`; `None` when there is no such file.
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>>;

    /// How errors name file `name`: its path for a folder, the bare name otherwise.
    fn display(&self, name: &str) -> String {
        name.to_string()
    }

    /// A path on disk for `name`, for the readers that need a file (PyTorch `.bin`).
    fn path(&self, _name: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Whether there is a file called `name`.
    fn has(&self, name: &str) -> Result<bool> {
        Ok(self.read(name)?.is_some())
    }

    /// The SHA-256 of `name` (hex) when whoever holds the files computed it already,
    /// for checking a bundle against its manifest without hashing it again.
    fn sha256(&self, _name: &str) -> Option<String> {
        None
    }
}

impl ModelFiles for HashMap<String, Vec<u8>> {
    fn location(&self) -> String {
        "the model's files".into()
    }

    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>> {
        Ok(self.get(name).map(|b| Cow::Borrowed(b.as_slice())))
    }
}

/// The three files of a Hugging Face model folder, already in memory.
#[derive(Debug, Clone, Copy)]
pub struct HfBytes<'a> {
    /// `config.json`.
    pub config_json: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer_json: &'a [u8],
    /// `model.safetensors`.
    pub safetensors: &'a [u8],
}

impl ModelFiles for HfBytes<'_> {
    fn location(&self) -> String {
        "the model's files".into()
    }

    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>> {
        Ok(match name {
            "config.json" => Some(Cow::Borrowed(self.config_json)),
            "tokenizer.json" => Some(Cow::Borrowed(self.tokenizer_json)),
            "model.safetensors" => Some(Cow::Borrowed(self.safetensors)),
            _ => None,
        })
    }
}

impl Classifier {
    /// Open the model in `files`, ready to predict on `device`.
    ///
    /// A folder with `manifest.json` is a web bundle: every file it lists is checked
    /// against its size and SHA-256 first, and the labels and tokenization come from
    /// the manifest. Otherwise it is a Hugging Face or trainer folder: `config.json`,
    /// the tokenizer and the first of [`WEIGHT_FILES`], with tokenization from
    /// `inference.json` when there is one (else the defaults, the max length capped
    /// at the model's `max_position_embeddings`). `options`, when given, replace the
    /// model's own.
    pub fn open(
        files: &dyn ModelFiles,
        device: &Device,
        options: Option<InferenceOptions>,
    ) -> Result<(Self, LoadReport)> {
        if let Some(bytes) = files.read(MANIFEST_FILE)? {
            let manifest = Manifest::parse(&bytes, &files.display(MANIFEST_FILE))?;
            return open_bundle(&manifest, files, device, options);
        }
        let config = read_config(files)?;
        let tokenizer = read_tokenizer(files)?;
        check_vocab(files, &config, &tokenizer)?;
        let weights = weights_file(files)?;
        let num_labels = config.labels().len();
        let (model, report) = read_model(files, weights, &config, num_labels, device)?;
        let settings_name = files.display(InferenceSettings::FILE);
        let recorded = match files.read(InferenceSettings::FILE)? {
            Some(bytes) => Some(InferenceSettings::from_json(&bytes, &settings_name)?),
            None => None,
        };
        let options = match (options, &recorded) {
            (Some(o), _) => o,
            (None, Some(s)) => s.options(InferenceOptions::default().batch_size),
            // The defaults, within what the model's position table holds.
            (None, None) => {
                let d = InferenceOptions::default();
                InferenceOptions {
                    max_len: d.max_len.min(config.max_position_embeddings),
                    ..d
                }
            }
        };
        let mut classifier = Classifier::new(model, config, tokenizer, device.clone(), options)?;
        // Options given for this run replace the tokenization, never the model's
        // calibration.
        if let Some(s) = recorded {
            classifier.set_calibration(s.calibration, &settings_name)?;
        }
        Ok((classifier, report))
    }
}

/// A web bundle: verified file by file against `manifest`.
fn open_bundle(
    manifest: &Manifest,
    files: &dyn ModelFiles,
    device: &Device,
    options: Option<InferenceOptions>,
) -> Result<(Classifier, LoadReport)> {
    let config_name = files.display("config.json");
    let config_bytes = verified(manifest, files, "config.json")?;
    let config_text = std::str::from_utf8(&config_bytes)
        .map_err(|e| Error::config(&config_name, format!("not UTF-8: {e}")))?;
    let mut config = BertConfig::from_json_str(config_text, &config_name)?;
    config.set_labels(&manifest.labels);
    let tokenizer = BertTokenizer::from_bytes(
        &verified(manifest, files, "tokenizer.json")?,
        &files.display("tokenizer.json"),
    )?;
    check_vocab(files, &config, &tokenizer)?;
    let num_labels = manifest.labels.len();
    let (model, report) = model_from_bytes(
        &files.display(&manifest.weights),
        &manifest.weights,
        verified(manifest, files, &manifest.weights)?,
        &config,
        num_labels,
        device,
    )?;
    let options =
        options.unwrap_or_else(|| manifest.options(InferenceOptions::default().batch_size));
    let mut classifier = Classifier::new(model, config, tokenizer, device.clone(), options)?;
    classifier.set_calibration(manifest.calibration, &files.display(MANIFEST_FILE))?;
    Ok((classifier, report))
}

/// File `name` of a bundle, checked against its manifest entry; errors name it as
/// `files` shows it.
fn verified<'a>(
    manifest: &Manifest,
    files: &'a dyn ModelFiles,
    name: &str,
) -> Result<Cow<'a, [u8]>> {
    let bytes = files.read(name)?.ok_or_else(|| Error::Integrity {
        file: files.display(name),
        message: "missing from the bundle".into(),
    })?;
    let digest = files.sha256(name);
    manifest
        .verify_digest(name, &bytes, digest.as_deref())
        .map_err(|e| match e {
            Error::Integrity { message, .. } => Error::Integrity {
                file: files.display(name),
                message,
            },
            other => other,
        })?;
    Ok(bytes)
}

/// `config.json`.
pub fn read_config(files: &dyn ModelFiles) -> Result<BertConfig> {
    let name = files.display("config.json");
    let bytes = files
        .read("config.json")?
        .ok_or_else(|| Error::MissingFile {
            dir: files.location().into(),
            file: "config.json".into(),
            hint: Some("a Hugging Face model folder has config.json next to its weights".into()),
        })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| Error::config(&name, format!("not UTF-8: {e}")))?;
    BertConfig::from_json_str(text, &name)
}

/// The tokenizer: `tokenizer.json`, else `vocab.txt` with `do_lower_case` from
/// `tokenizer_config.json` (default true, as for uncased BERT).
pub fn read_tokenizer(files: &dyn ModelFiles) -> Result<BertTokenizer> {
    if let Some(bytes) = files.read("tokenizer.json")? {
        return BertTokenizer::from_bytes(&bytes, &files.display("tokenizer.json"));
    }
    let Some(vocab) = files.read("vocab.txt")? else {
        return Err(Error::MissingFile {
            dir: files.location().into(),
            file: "tokenizer.json".into(),
            hint: Some("or vocab.txt".into()),
        });
    };
    let name = files.display("vocab.txt");
    let lowercase = files
        .read("tokenizer_config.json")?
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
        .unwrap_or(true);
    let text =
        std::str::from_utf8(&vocab).map_err(|e| Error::config(&name, format!("not UTF-8: {e}")))?;
    BertTokenizer::from_vocab(text, lowercase, &name)
}

/// The first of [`WEIGHT_FILES`] that `files` holds.
pub fn weights_file(files: &dyn ModelFiles) -> Result<&'static str> {
    for name in WEIGHT_FILES {
        if files.has(name)? {
            return Ok(name);
        }
    }
    Err(Error::MissingFile {
        dir: files.location().into(),
        file: "model.safetensors".into(),
        hint: Some("or pytorch_model.bin, or model.bpk from the trainer".into()),
    })
}

/// The tensors of a Hugging Face checkpoint (safetensors, or PyTorch on native
/// targets), named as in the file.
pub fn read_checkpoint(files: &dyn ModelFiles, name: &str) -> Result<Checkpoint> {
    let shown = files.display(name);
    if name.ends_with(".bin") {
        if let Some(ckpt) = pytorch_file(files, name) {
            return ckpt;
        }
        return Err(Error::Checkpoint {
            source_name: shown,
            message: "PyTorch .bin checkpoints are read from a folder on disk only; \
                      save the model as model.safetensors"
                .into(),
        });
    }
    Checkpoint::from_safetensors_bytes(&read_required(files, name)?, &shown)
}

/// A PyTorch pickle, read from its path on disk (native builds only).
#[cfg(feature = "native")]
fn pytorch_file(files: &dyn ModelFiles, name: &str) -> Option<Result<Checkpoint>> {
    files
        .path(name)
        .map(|path| Checkpoint::from_pytorch_file(&path))
}

#[cfg(not(feature = "native"))]
fn pytorch_file(_: &dyn ModelFiles, _: &str) -> Option<Result<Checkpoint>> {
    None
}

/// The model in weights file `name`: burn's burnpack (`.bpk`, what the trainer
/// saves), else a Hugging Face checkpoint ([`read_checkpoint`]), whose head is
/// freshly initialised when it has none (the report says so).
pub fn read_model(
    files: &dyn ModelFiles,
    name: &str,
    config: &BertConfig,
    num_labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, LoadReport)> {
    if name.ends_with(".bpk") {
        let bytes = read_required(files, name)?;
        return burnpack_model(&files.display(name), bytes, config, num_labels, device);
    }
    let mut ckpt = read_checkpoint(files, name)?;
    BertForSequenceClassification::load(config, num_labels, &mut ckpt, device)
}

/// The model in weights `bytes` already read (and, for a bundle, verified).
fn model_from_bytes(
    shown: &str,
    name: &str,
    bytes: Cow<'_, [u8]>,
    config: &BertConfig,
    num_labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, LoadReport)> {
    if name.ends_with(".bpk") {
        return burnpack_model(shown, bytes, config, num_labels, device);
    }
    let mut ckpt = Checkpoint::from_safetensors_bytes(&bytes, shown)?;
    BertForSequenceClassification::load(config, num_labels, &mut ckpt, device)
}

fn burnpack_model(
    shown: &str,
    bytes: Cow<'_, [u8]>,
    config: &BertConfig,
    num_labels: usize,
    device: &Device,
) -> Result<(BertForSequenceClassification, LoadReport)> {
    let bytes = burn::tensor::Bytes::from_bytes_vec(bytes.into_owned());
    let mut store = burn_store::BurnpackStore::from_bytes(Some(bytes));
    BertForSequenceClassification::load_burnpack(config, num_labels, &mut store, shown, device)
}

fn read_required<'a>(files: &'a dyn ModelFiles, name: &str) -> Result<Cow<'a, [u8]>> {
    files.read(name)?.ok_or_else(|| Error::MissingFile {
        dir: files.location().into(),
        file: name.into(),
        hint: None,
    })
}

/// A tokenizer whose ids the embedding table cannot hold would index out of range.
fn check_vocab(
    files: &dyn ModelFiles,
    config: &BertConfig,
    tokenizer: &BertTokenizer,
) -> Result<()> {
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::config(
            files.display("config.json"),
            format!(
                "the tokenizer has {} tokens but vocab_size is {}",
                tokenizer.vocab_size(),
                config.vocab_size
            ),
        ));
    }
    Ok(())
}
