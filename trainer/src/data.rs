//! Labeled text from files: the IMDb archive (read straight from `aclImdb_v1.tar.gz`
//! or its extracted folder), and JSONL and CSV through model-core's input pipeline,
//! which the page shares. Everything ends up as [`Example`]s with a label index into
//! [`LabeledData::labels`].
//!
//! Errors name the file and, for line-based formats, the line: a bad row at line
//! 48,211 of a user's CSV must be findable without a debugger.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
pub use model_core::input::Columns;
use model_core::input::Labels;
pub use model_core::input::labels::MAX_CLASS_INDEX;
pub use model_core::input::split::{SplitMix64, split_validation};
use model_core::input::stream::{Format, read_all};
pub use model_core::input::{Example, LabeledData, sentiment_labels};
use model_core::input::{csv, labels};

/// Which half of the IMDb archive to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// `aclImdb/train`.
    Train,
    /// `aclImdb/test`.
    Test,
}

impl Split {
    /// The split's folder in the dataset.
    pub fn dir(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Read labeled data from `path`, whatever its format.
pub fn load(path: &Path, split: Split, columns: &Columns) -> Result<LabeledData> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let data = if path.is_dir() {
        load_imdb_dir(path, split)?
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        load_imdb_archive(path, split)?
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        load_jsonl(path)?
    } else if name.ends_with(".csv") || name.ends_with(".tsv") {
        load_csv(path, columns)?
    } else {
        bail!(
            "{}: unknown data format (expected the IMDb .tar.gz archive or folder, .jsonl, or .csv)",
            path.display()
        );
    };
    if data.examples.is_empty() {
        bail!("{}: no labeled examples found", path.display());
    }
    Ok(data)
}

/// `aclImdb/{split}/{pos,neg}/{id}_{rating}.txt` → (label, id).
pub(crate) fn imdb_entry(rel: &str, split: Split) -> Option<(usize, u64)> {
    let parts: Vec<&str> = rel.trim_start_matches("./").split('/').collect();
    let n = parts.len();
    if n < 3 || parts[n - 3] != split.dir() || !parts[n - 1].ends_with(".txt") {
        return None;
    }
    let label = match parts[n - 2] {
        "neg" => 0,
        "pos" => 1,
        _ => return None, // unsup/ and anything else
    };
    let id = parts[n - 1].split('_').next()?.parse().ok()?;
    Some((label, id))
}

fn finish_imdb(mut rows: Vec<(usize, u64, String)>, source: &Path) -> Result<LabeledData> {
    // Archive order differs between copies; sort so that seeds mean the same thing everywhere.
    rows.sort_by_key(|(label, id, _)| (*label, *id));
    if rows.is_empty() {
        bail!(
            "{}: no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews found",
            source.display()
        );
    }
    Ok(LabeledData {
        examples: rows
            .into_iter()
            .map(|(label, _, text)| Example { text, label })
            .collect(),
        labels: sentiment_labels(),
    })
}

/// Read the official archive without extracting it.
pub fn load_imdb_archive(path: &Path, split: Split) -> Result<LabeledData> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    read_imdb_archive(BufReader::new(file), split, path)
}

/// Read the reviews of `split` from a `.tar.gz` stream; errors name `path`.
pub fn read_imdb_archive(reader: impl Read, split: Split, path: &Path) -> Result<LabeledData> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut rows = Vec::new();
    let entries = archive
        .entries()
        .with_context(|| format!("{}: not a .tar.gz archive", path.display()))?;
    for entry in entries {
        let mut entry =
            entry.with_context(|| format!("{}: corrupt or truncated archive", path.display()))?;
        let rel = entry.path()?.to_string_lossy().to_string();
        let Some((label, id)) = imdb_entry(&rel, split) else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| {
            format!(
                "{}: corrupt or truncated archive (in {rel})",
                path.display()
            )
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow!("{}: {rel} is not UTF-8 text ({e})", path.display()))?;
        rows.push((label, id, text));
    }
    finish_imdb(rows, path)
}

/// Read an extracted `aclImdb` folder (the folder itself or its parent).
pub fn load_imdb_dir(path: &Path, split: Split) -> Result<LabeledData> {
    let mut rows = Vec::new();
    for (rel, file) in imdb_files(path, split)? {
        let (label, id) = imdb_entry(&rel, split).expect("listed as a review");
        let bytes =
            std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow!("{}: not UTF-8 text ({e})", file.display()))?;
        rows.push((label, id, text));
    }
    finish_imdb(rows, path)
}

/// The review files of `split` in an extracted folder (the folder itself or its
/// parent) as (path in the dataset, file), sorted by label and id so that an order
/// means the same on every machine.
pub(crate) fn imdb_files(path: &Path, split: Split) -> Result<Vec<(String, PathBuf)>> {
    let base: PathBuf = if path.join("aclImdb").is_dir() {
        path.join("aclImdb")
    } else {
        path.to_path_buf()
    };
    let mut files = Vec::new();
    for sub in ["neg", "pos"] {
        let dir = base.join(split.dir()).join(sub);
        let listing = std::fs::read_dir(&dir).with_context(|| {
            format!(
                "{}: not an IMDb folder (expected {})",
                path.display(),
                dir.display()
            )
        })?;
        for entry in listing {
            let entry = entry?;
            let rel = format!(
                "{}/{sub}/{}",
                split.dir(),
                entry.file_name().to_string_lossy()
            );
            if let Some(key) = imdb_entry(&rel, split) {
                files.push((key, rel, entry.path()));
            }
        }
    }
    files.sort_by_key(|(key, _, _)| *key);
    Ok(files.into_iter().map(|(_, rel, p)| (rel, p)).collect())
}

/// JSONL: one `{"text": ..., "label": "positive"|"negative"|0|1}` per line; blank lines skipped.
pub fn load_jsonl(path: &Path) -> Result<LabeledData> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    read_jsonl(BufReader::new(file), path)
}

/// JSONL from a stream ([`model_core::input::jsonl`]); errors name `path` and the line.
pub fn read_jsonl(reader: impl BufRead, path: &Path) -> Result<LabeledData> {
    let source = path.display().to_string();
    let rows = read_all(
        reader,
        Format::Jsonl,
        &Columns::default(),
        &source,
        Labels::Required,
    )?;
    Ok(labels::index_labels(rows, &source)?)
}

/// CSV (or TSV) with a header row.
pub fn load_csv(path: &Path, columns: &Columns) -> Result<LabeledData> {
    let delimiter = csv::delimiter_for(&path.to_string_lossy());
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    read_csv(file, delimiter, columns, path)
}

/// CSV (or TSV, with `delimiter` b'\t') with a header row, from a stream
/// ([`model_core::input::csv`]); errors name `path` and the line.
pub fn read_csv(
    reader: impl Read,
    delimiter: u8,
    columns: &Columns,
    path: &Path,
) -> Result<LabeledData> {
    let source = path.display().to_string();
    let reader = std::io::BufReader::new(reader);
    let rows = read_all(
        reader,
        Format::Csv { delimiter },
        columns,
        &source,
        Labels::Required,
    )?;
    Ok(labels::index_labels(rows, &source)?)
}

/// Map `data` onto a model's label names (for evaluation): every label in the data
/// must be one the model knows.
pub fn align_labels(
    data: LabeledData,
    model_labels: &[String],
    source: &Path,
) -> Result<LabeledData> {
    Ok(labels::align_labels(
        data,
        model_labels,
        &source.display().to_string(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imdb_paths_are_recognised() {
        assert_eq!(
            imdb_entry("aclImdb/train/pos/123_9.txt", Split::Train),
            Some((1, 123))
        );
        assert_eq!(imdb_entry("aclImdb/test/neg/7_2.txt", Split::Train), None);
        assert_eq!(
            imdb_entry("aclImdb/train/unsup/7_0.txt", Split::Train),
            None
        );
    }
}
