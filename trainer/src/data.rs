//! Labeled text: the IMDb archive (read straight from `aclImdb_v1.tar.gz` or its
//! extracted folder), JSONL and CSV. Everything ends up as [`Example`]s with a label
//! index into [`LabeledData::labels`].
//!
//! Errors name the file and, for line-based formats, the line: a bad row at line
//! 48,211 of a user's CSV must be findable without a debugger.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// One labeled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The text, with `<br />` tags turned into spaces.
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

/// Which half of the IMDb archive to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// `aclImdb/train`.
    Train,
    /// `aclImdb/test`.
    Test,
}

impl Split {
    fn dir(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Column names for CSV files.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The text column; default `text`, else `review`.
    pub text: Option<String>,
    /// The label column; default `label`, else `sentiment`.
    pub label: Option<String>,
}

/// IMDb label names: 0 = negative, 1 = positive.
pub fn sentiment_labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

/// `<br />` (and its variants) become spaces, as the reviews are plain text otherwise.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("<br") {
        let after = &rest[pos + 3..];
        match after.find('>') {
            Some(end) if after[..end].chars().all(|c| c == ' ' || c == '/') => {
                out.push_str(&rest[..pos]);
                out.push(' ');
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..pos + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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

/// `aclImdb/{split}/{pos,neg}/{id}_{rating}.txt` → (sort key, example).
fn imdb_entry(rel: &str, split: Split) -> Option<(usize, u64)> {
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
            .map(|(label, _, text)| Example {
                text: clean_text(&text),
                label,
            })
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
    let base: PathBuf = if path.join("aclImdb").is_dir() {
        path.join("aclImdb")
    } else {
        path.to_path_buf()
    };
    let mut rows = Vec::new();
    for (label, sub) in [(0usize, "neg"), (1usize, "pos")] {
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
            let file = entry.path();
            let rel = format!(
                "{}/{sub}/{}",
                split.dir(),
                entry.file_name().to_string_lossy()
            );
            let Some((_, id)) = imdb_entry(&rel, split) else {
                continue;
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|e| anyhow!("{}: not UTF-8 text ({e})", file.display()))?;
            rows.push((label, id, text));
        }
    }
    finish_imdb(rows, path)
}

/// A label as it appears in the data: a name, or a 0/1-style index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RawLabel {
    Index(u64),
    Name(String),
}

/// The largest numeric label read as a class index: a classifier with thousands of
/// classes is not what a numeric column means (found by fuzzing the readers).
pub const MAX_CLASS_INDEX: u64 = 1000;

/// Turn raw labels into indices. Integer labels index `negative`/`positive` (0/1);
/// names are kept, ordered `negative`, `positive` when those are the names, else sorted.
fn index_labels(raw: Vec<(String, RawLabel, usize)>, source: &Path) -> Result<LabeledData> {
    let names: BTreeSet<String> = raw
        .iter()
        .filter_map(|(_, l, _)| match l {
            RawLabel::Name(n) => Some(n.clone()),
            RawLabel::Index(_) => None,
        })
        .collect();
    let has_index = raw.iter().any(|(_, l, _)| matches!(l, RawLabel::Index(_)));
    let labels: Vec<String> = if names.is_empty() {
        let max = raw
            .iter()
            .filter_map(|(_, l, _)| {
                if let RawLabel::Index(i) = l {
                    Some(*i)
                } else {
                    None
                }
            })
            .max()
            .unwrap_or(1);
        if max > MAX_CLASS_INDEX {
            let line = raw
                .iter()
                .find(|(_, l, _)| *l == RawLabel::Index(max))
                .map(|r| r.2)
                .unwrap_or(0);
            bail!(
                "{}:{line}: label {max} is not a class index (at most {MAX_CLASS_INDEX}); \
                 use label names for more classes",
                source.display()
            );
        }
        if max <= 1 {
            sentiment_labels()
        } else {
            (0..=max).map(|i| i.to_string()).collect()
        }
    } else if has_index {
        let line = raw
            .iter()
            .find(|(_, l, _)| matches!(l, RawLabel::Index(_)))
            .map(|r| r.2)
            .unwrap_or(0);
        bail!(
            "{}:{line}: mixes numeric and named labels",
            source.display()
        );
    } else {
        let mut v: Vec<String> = names.into_iter().collect();
        if v.iter().any(|n| n == "negative") && v.iter().any(|n| n == "positive") {
            v.retain(|n| n != "negative" && n != "positive");
            v.insert(0, "positive".into());
            v.insert(0, "negative".into());
        }
        v
    };
    let examples = raw
        .into_iter()
        .map(|(text, l, _)| Example {
            text,
            label: match l {
                RawLabel::Index(i) => i as usize,
                RawLabel::Name(n) => labels.iter().position(|x| *x == n).expect("name collected"),
            },
        })
        .collect();
    Ok(LabeledData { examples, labels })
}

fn parse_label(value: &str) -> Option<RawLabel> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    Some(match v.parse::<u64>() {
        Ok(i) => RawLabel::Index(i),
        Err(_) => RawLabel::Name(v.to_string()),
    })
}

/// JSONL: one `{"text": ..., "label": "positive"|"negative"|0|1}` per line; blank lines skipped.
pub fn load_jsonl(path: &Path) -> Result<LabeledData> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    read_jsonl(BufReader::new(file), path)
}

/// JSONL from a stream; errors name `path` and the line.
pub fn read_jsonl(reader: impl BufRead, path: &Path) -> Result<LabeledData> {
    let mut raw = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{}:{n}: cannot read", path.display()))?;
        let line = String::from_utf8(line)
            .map_err(|_| anyhow!("{}:{n}: not UTF-8 text", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| anyhow!("{}:{n}: malformed JSON ({e})", path.display()))?;
        let text = value
            .get("text")
            .or_else(|| value.get("review"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| anyhow!("{}:{n}: no string field \"text\"", path.display()))?;
        let label = match value.get("label").or_else(|| value.get("sentiment")) {
            Some(serde_json::Value::String(s)) => parse_label(s),
            Some(serde_json::Value::Number(x)) => x.as_u64().map(RawLabel::Index),
            Some(serde_json::Value::Bool(b)) => Some(RawLabel::Index(*b as u64)),
            _ => None,
        }
        .ok_or_else(|| {
            anyhow!(
                "{}:{n}: missing or invalid \"label\" (expected a name or 0/1)",
                path.display()
            )
        })?;
        raw.push((clean_text(text), label, n));
    }
    index_labels(raw, path)
}

/// CSV (or TSV) with a header row.
pub fn load_csv(path: &Path, columns: &Columns) -> Result<LabeledData> {
    let delimiter = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
    {
        b'\t'
    } else {
        b','
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    read_csv(file, delimiter, columns, path)
}

/// CSV (or TSV, with `delimiter` b'\t') with a header row, from a stream; errors
/// name `path` and the line.
pub fn read_csv(
    reader: impl Read,
    delimiter: u8,
    columns: &Columns,
    path: &Path,
) -> Result<LabeledData> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| anyhow!("{}:1: cannot read the header ({e})", path.display()))?
        .clone();
    let find = |wanted: &Option<String>, defaults: &[&str], what: &str| -> Result<usize> {
        let names: Vec<&str> = match wanted {
            Some(w) => vec![w.as_str()],
            None => defaults.to_vec(),
        };
        names
            .iter()
            .find_map(|n| {
                headers
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(n))
            })
            .ok_or_else(|| {
                anyhow!(
                    "{}:1: no {what} column (looked for {}; the header has {})",
                    path.display(),
                    names.join(", "),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
    };
    let text_col = find(&columns.text, &["text", "review"], "text")?;
    let label_col = find(&columns.label, &["label", "sentiment"], "label")?;
    let mut raw = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{}:{line}: malformed CSV ({e})", path.display())
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let text = std::str::from_utf8(record.get(text_col).unwrap_or_default())
            .map_err(|_| anyhow!("{}:{line}: not UTF-8 text", path.display()))?;
        let label = std::str::from_utf8(record.get(label_col).unwrap_or_default())
            .ok()
            .and_then(parse_label)
            .ok_or_else(|| anyhow!("{}:{line}: missing or invalid label", path.display()))?;
        raw.push((clean_text(text), label, line));
    }
    index_labels(raw, path)
}

/// Map `data` onto a model's label names (for evaluation): every label in the data
/// must be one the model knows.
pub fn align_labels(
    data: LabeledData,
    model_labels: &[String],
    source: &Path,
) -> Result<LabeledData> {
    if data.labels == model_labels {
        return Ok(data);
    }
    let map: Vec<usize> = data
        .labels
        .iter()
        .map(|l| {
            model_labels.iter().position(|m| m == l).ok_or_else(|| {
                anyhow!(
                    "{}: label `{l}` is not one the model knows ({})",
                    source.display(),
                    model_labels.join(", ")
                )
            })
        })
        .collect::<Result<_>>()?;
    Ok(LabeledData {
        examples: data
            .examples
            .into_iter()
            .map(|e| Example {
                label: map[e.label],
                text: e.text,
            })
            .collect(),
        labels: model_labels.to_vec(),
    })
}

/// A small deterministic PRNG (SplitMix64): the data order must be the same for a
/// seed on every machine and every version of every crate, or resume breaks.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Split off a seeded, stratified validation set of `fraction` of `data`.
pub fn split_validation(data: LabeledData, fraction: f64, seed: u64) -> (LabeledData, LabeledData) {
    let mut rng = SplitMix64(seed ^ 0x005E_ED0F_5A11);
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for class in 0..data.labels.len() {
        let mut idx: Vec<&Example> = data.examples.iter().filter(|e| e.label == class).collect();
        rng.shuffle(&mut idx);
        let n_valid = ((idx.len() as f64) * fraction).round() as usize;
        valid.extend(idx[..n_valid].iter().map(|e| (*e).clone()));
        train.extend(idx[n_valid..].iter().map(|e| (*e).clone()));
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut valid);
    (
        LabeledData {
            examples: train,
            labels: data.labels.clone(),
        },
        LabeledData {
            examples: valid,
            labels: data.labels,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn br_tags_become_spaces() {
        assert_eq!(
            clean_text("Good.<br /><br />Bad<br/>end<br>x"),
            "Good.  Bad end x"
        );
        assert_eq!(clean_text("a <bread> b"), "a <bread> b");
    }

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

    #[test]
    fn shuffle_is_reproducible() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64(7).shuffle(&mut a);
        SplitMix64(7).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }
}
