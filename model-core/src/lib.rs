//! # model-core
//!
//! A BERT sequence classifier in [burn](https://burn.dev) that loads Hugging Face
//! checkpoints and reproduces `transformers`' outputs, natively and in the browser.
//!
//! - [`config::BertConfig`]: straight from `config.json`.
//! - [`model`]: embeddings, encoder, pooler and the classification head.
//! - [`hf_names`]: the QKV fuse on load and its split on export, in one place.
//! - [`weights`]: safetensors / PyTorch checkpoints, with errors naming the tensor.
//! - [`input`]: the input pipeline shared by the trainer and the page (text cleaning).
//! - [`tokenizer`]: WordPiece through `tokenizers`, `head` and `head+tail` truncation.
//! - [`inference::Classifier`]: texts in, [`inference::Prediction`]s out;
//!   [`Classifier::open`] ([`open`]) builds one from any model folder or bundle,
//!   on disk or in memory.
//! - [`bundle`]: the web bundle (`manifest.json` with hashes) the page loads, and
//!   [`settings`]: `inference.json`, a model folder's tokenization settings.
//! - [`package`]: a classifier's files in memory (the web bundle, `config.json`,
//!   `tokenizer.json`), for `trainer export` and the page's `exportBundle`.
//! - [`calibration`]: the temperature (and exponent) that make the shown confidence mean what it
//!   says, how it is fitted, and the expected calibration error.
//! - [`output`]: the results format (JSONL and CSV rows) of `trainer predict` and
//!   the page's download.
//! - [`backend`]: flex, ndarray and wgpu chosen at run time.
//! - [`ops`]: the one seam between the model and its kernels: which implementation
//!   ([`ExecutionPath`]) a forward pass runs.
//! - [`kernels`]: the CPU kernels (fused inference stack, int8 products, training ops).
//! - [`training`] (feature `train`): the optimizer and the one training step, shared by
//!   the native trainer and the page.
//! - `hub` and `loader` (feature `native`): hub ids and folders on disk.

pub mod backend;
pub mod bundle;
pub mod calibration;
pub mod config;
pub mod error;
pub mod export;
pub mod hf_names;
#[cfg(feature = "native")]
pub mod hub;
pub mod inference;
pub mod input;
pub mod kernels;
#[cfg(feature = "native")]
pub mod loader;
pub mod model;
pub mod open;
pub mod ops;
pub mod output;
pub mod package;
pub mod settings;
pub mod tokenizer;
#[cfg(feature = "train")]
pub mod training;
pub mod weights;

pub use backend::BackendKind;
pub use config::BertConfig;
pub use error::{Error, Result};
pub use inference::{Classifier, InferenceOptions, Prediction};
pub use ops::{ExecutionPath, MatmulPrecision};
pub use tokenizer::{BertTokenizer, Truncation};
