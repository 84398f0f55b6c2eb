//! # model-core
//!
//! A BERT sequence classifier in [burn](https://burn.dev) that loads Hugging Face
//! checkpoints and reproduces `transformers`' outputs, natively and in the browser.
//!
//! - [`config::BertConfig`]: straight from `config.json`.
//! - [`model`]: embeddings, encoder, pooler and the classification head.
//! - [`weights`]: safetensors / PyTorch checkpoints, with errors naming the tensor.
//! - [`tokenizer`]: WordPiece through `tokenizers`, `head` and `head+tail` truncation.
//! - [`inference::Classifier`]: texts in, [`inference::Prediction`]s out.
//! - [`bundle`]: the web bundle (`manifest.json` with hashes) the page loads.
//! - [`backend`]: flex, ndarray and wgpu chosen at run time.
//! - [`kernels`]: fused CPU kernels (attention, GELU) for inference on flex.
//! - `hub` and `loader` (feature `native`): folders and hub ids.

pub mod backend;
pub mod bundle;
pub mod config;
pub mod error;
pub mod export;
#[cfg(feature = "native")]
pub mod hub;
pub mod inference;
pub mod kernels;
#[cfg(feature = "native")]
pub mod loader;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use backend::BackendKind;
pub use config::BertConfig;
pub use error::{Error, Result};
pub use inference::{Classifier, InferenceOptions, Prediction};
pub use kernels::layer::Products;
pub use tokenizer::{BertTokenizer, Truncation};
