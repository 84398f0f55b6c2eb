//! The input pipeline the trainer and the page share, wasm-safe (no file system: the
//! readers take any `Read`/`BufRead`, and a `source` name for errors), so that
//! training, `predict`, `evaluate` and the browser read files and see tokens alike.
//!
//! - [`clean`]: the one text-cleaning rule (IMDb's `<br />` tags), applied by the
//!   tokenizer to every text it reads;
//! - [`jsonl`], [`csv`]: labelled and unlabelled rows from JSONL and CSV/TSV, each
//!   error naming the file and line, with the fields they look for in [`fields`];
//! - [`labels`]: labels as written in files, turned into class indices (from the data
//!   for training, onto a model's labels for evaluation and the page);
//! - [`confusion`]: accuracy and the confusion matrix;
//! - [`split`]: the seeded PRNG, and the stratified held-out split made with it;
//! - [`stream`]: rows one at a time, in any of those formats or one text per line,
//!   for inputs of any size, with bad rows reported and skippable, or all at once
//!   ([`stream::read_all`]);
//! - [`feed`]: the same rows from a file pushed a slice at a time (the page, which
//!   awaits each slice of a picked file).

pub mod clean;
pub mod confusion;
pub mod csv;
pub mod feed;
pub mod fields;
pub mod jsonl;
pub mod labels;
pub mod split;
pub mod stream;

pub use clean::clean_text;
pub use fields::{Columns, Labels};
pub use labels::{RawLabel, sentiment_labels};

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The text as read (the tokenizer cleans it, [`clean`]).
    pub text: String,
    /// Index into [`LabeledData::labels`].
    pub label: usize,
}

/// A dataset and its label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledData {
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Label names in class-index order.
    pub labels: Vec<String>,
}

/// One row of a data file, before labels become class indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The text.
    pub text: String,
    /// Its label, when the row has one.
    pub label: Option<RawLabel>,
    /// The 1-based line it starts on.
    pub line: usize,
    /// Its id (an `id` field or column), when it has one.
    pub id: Option<String>,
}

/// Where a row is, for errors: `file:line`.
pub(crate) fn at(source: &str, line: usize) -> String {
    format!("{source}:{line}")
}
