//! The one error type of this crate. Every variant says *which* file, tensor or
//! input went wrong, because users feed in their own checkpoints and data and need
//! to know what to fix without reading a backtrace.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A file a model folder must have is not there.
    #[error("{}: missing {file} in the model folder{}", dir.display(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingFile {
        /// The model folder.
        dir: PathBuf,
        /// The missing file name, e.g. `config.json`.
        file: String,
        /// What to do about it, when there is something to say.
        hint: Option<String>,
    },

    /// A data file (JSONL, CSV, a text list) has a bad row: `at` is `file:line`.
    #[error("{at}: {message}")]
    Input {
        /// Where: the file and, for line-based formats, the line (`reviews.csv:12`).
        at: String,
        /// What is wrong there.
        message: String,
    },

    /// `config.json` or `manifest.json` is not what we can use.
    #[error("{source_name}: {message}")]
    Config {
        /// The file (or in-memory source) the configuration came from.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },

    /// The checkpoint file itself is unreadable: truncated, not safetensors, not a PyTorch pickle...
    #[error("{source_name}: cannot read checkpoint: {message}")]
    Checkpoint {
        /// The checkpoint file.
        source_name: String,
        /// What the reader said.
        message: String,
    },

    /// Writing a model file failed (full disk, permissions...).
    #[error("{path}: cannot write the model: {message}")]
    Write {
        /// The file being written.
        path: String,
        /// What the writer said.
        message: String,
    },

    /// A tensor the model needs is absent from the checkpoint.
    #[error("{source_name}: tensor `{name}` is missing (expected shape {expected:?}){}", found_like.as_deref().map(|f| format!("; the checkpoint has e.g. `{f}`")).unwrap_or_default())]
    MissingTensor {
        /// The checkpoint file.
        source_name: String,
        /// The tensor name as the checkpoint would spell it.
        name: String,
        /// The shape the model configuration implies.
        expected: Vec<usize>,
        /// A name present in the checkpoint, to show what naming scheme it uses.
        found_like: Option<String>,
    },

    /// A tensor is present but its shape disagrees with `config.json`.
    #[error(
        "{source_name}: tensor `{name}` has shape {found:?} but the config implies {expected:?}"
    )]
    ShapeMismatch {
        /// The checkpoint file.
        source_name: String,
        /// The tensor name.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
    },

    /// A tensor is stored in a dtype we do not convert (integers, fp8...).
    #[error(
        "{source_name}: tensor `{name}` has unsupported dtype {dtype} (supported: F32, F16, BF16, F64)"
    )]
    UnsupportedDtype {
        /// The checkpoint file.
        source_name: String,
        /// The tensor name.
        name: String,
        /// The dtype as the file names it.
        dtype: String,
    },

    /// The tokenizer files are missing or malformed.
    #[error("{source_name}: tokenizer: {message}")]
    Tokenizer {
        /// The tokenizer file.
        source_name: String,
        /// What went wrong.
        message: String,
    },

    /// A hub id could neither be found in the local cache nor downloaded.
    #[error("model `{model_id}`: {message}")]
    Hub {
        /// The hub id, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
        model_id: String,
        /// What failed and how to point at local files instead.
        message: String,
    },

    /// The requested compute backend is unavailable.
    #[error("backend {backend}: {message}")]
    Backend {
        /// The backend name (`wgpu`, `flex`...).
        backend: String,
        /// Why it cannot be used.
        message: String,
    },

    /// A bundle file does not match its manifest entry (truncated download, stale
    /// cache, edited file).
    #[error("{file}: integrity check failed: {message}")]
    Integrity {
        /// The file name as the manifest lists it.
        file: String,
        /// Size or hash, found and expected.
        message: String,
    },

    /// An argument is out of range (batch size 0, max length above the model's...).
    #[error("{0}")]
    InvalidArgument(String),

    /// Reading results back from the device failed.
    #[error("reading results from the device failed: {0}")]
    Execution(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    #[cfg_attr(not(feature = "native"), allow(dead_code))]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(at: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            at: at.into(),
            message: message.into(),
        }
    }

    pub(crate) fn config(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}
