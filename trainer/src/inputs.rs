//! Where `predict` and `evaluate` read their texts: arguments, stdin (one per line), a
//! text, JSONL or CSV file, or the IMDb archive or folder, as a stream of rows read on
//! their own thread into a bounded queue, so that reading overlaps classifying and
//! memory does not grow with the input.
//!
//! Every row has a position, `line`: its line in a file (the line a CSV record starts
//! on), its argument's number, or its place among the archive's reviews. Shards and
//! `--resume` are line ranges of it.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result, bail};
use model_core::Error;
use model_core::input::Row;
use model_core::input::labels::RawLabel;
use model_core::input::sentiment_labels;
use model_core::input::stream::{BadRow, Format, RowStream, count_lines};
use model_core::input::{Columns, Labels};

use crate::data::{Split, imdb_entry, imdb_files};

/// A row, or why one could not be read.
pub type Item = std::result::Result<Row, BadRow>;

/// What to read.
#[derive(Debug, Clone)]
pub enum Input {
    /// Texts given on the command line.
    Texts(Vec<String>),
    /// One text per line on stdin.
    Stdin,
    /// A file in a line-based format.
    File(PathBuf, Format),
    /// The official `aclImdb_v1.tar.gz`, read without extracting it.
    ImdbArchive(PathBuf, Split),
    /// An extracted `aclImdb` folder.
    ImdbDir(PathBuf, Split),
}

impl Input {
    /// `--data path`: the IMDb archive or folder, else a file whose name says its format.
    pub fn data(path: &Path, split: Split) -> Result<Input> {
        if !path.exists() {
            bail!("{}: no such file or folder", path.display());
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(if path.is_dir() {
            Input::ImdbDir(path.to_path_buf(), split)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Input::ImdbArchive(path.to_path_buf(), split)
        } else {
            Input::File(path.to_path_buf(), Format::for_name(&name))
        })
    }

    /// Whether rows can carry labels (everything but plain text).
    pub fn has_labels(&self) -> bool {
        !matches!(
            self,
            Input::Texts(_) | Input::Stdin | Input::File(_, Format::Lines)
        )
    }

    /// Whether [`Self::count`] is quick (a scan for newlines, a listing), so that
    /// progress can show the time left even in a log; the archive must be
    /// decompressed to be counted, and stdin cannot be.
    pub fn count_is_cheap(&self) -> bool {
        !matches!(self, Input::Stdin | Input::ImdbArchive(..))
    }

    /// How many positions the input has (what a shard is a share of), reading it
    /// once; `None` for stdin, which can be read only once.
    pub fn count(&self) -> Result<Option<usize>> {
        Ok(Some(match self {
            Input::Texts(t) => t.len(),
            Input::Stdin => return Ok(None),
            Input::File(path, _) => count_lines(BufReader::new(open(path)?))
                .with_context(|| format!("{}: cannot read", path.display()))?,
            Input::ImdbArchive(path, split) => {
                let (tx, rx) = sync_channel(1024);
                let (path, split) = (path.clone(), *split);
                let reader = std::thread::spawn(move || {
                    read_archive(&path, split, &(0..0), &tx);
                });
                let mut n = 0;
                for item in rx {
                    match item {
                        Ok(_) => n += 1,
                        Err(bad) => return Err(bad.error.into()),
                    }
                }
                reader.join().expect("the archive reader does not panic");
                n
            }
            Input::ImdbDir(path, split) => imdb_files(path, *split)?.len(),
        }))
    }

    /// Start reading the rows whose position is in `lines` on a thread of their own;
    /// errors that stop the input before its first row (a missing file, a CSV header
    /// without the columns) come back here.
    pub fn spawn(
        &self,
        columns: &Columns,
        labels: Labels,
        lines: Range<usize>,
        queue: usize,
    ) -> Result<Receiver<Item>> {
        let (tx, rx) = sync_channel(queue.max(1));
        match self {
            Input::Texts(texts) => {
                let texts = texts.clone();
                std::thread::spawn(move || {
                    for (i, text) in texts.into_iter().enumerate() {
                        if lines.contains(&(i + 1)) {
                            let row = Row {
                                text,
                                label: None,
                                line: i + 1,
                                id: None,
                            };
                            if tx.send(Ok(row)).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
            Input::Stdin => {
                let reader = BufReader::new(std::io::stdin());
                let rows = RowStream::new(reader, Format::Lines, columns, "stdin", labels)?;
                forward(rows.lines(lines), tx);
            }
            Input::File(path, format) => {
                let source = path.display().to_string();
                let reader = BufReader::with_capacity(1 << 16, open(path)?);
                let rows = RowStream::new(reader, *format, columns, &source, labels)?;
                forward(rows.lines(lines), tx);
            }
            Input::ImdbArchive(path, split) => {
                open(path)?;
                let (path, split) = (path.clone(), *split);
                std::thread::spawn(move || read_archive(&path, split, &lines, &tx));
            }
            Input::ImdbDir(path, split) => {
                let (files, split) = (imdb_files(path, *split)?, *split);
                std::thread::spawn(move || read_files(files, split, &lines, &tx));
            }
        }
        Ok(rx)
    }
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))
}

fn forward<R: BufRead + Send + 'static>(rows: RowStream<R>, tx: SyncSender<Item>) {
    std::thread::spawn(move || {
        for item in rows {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
}

fn fatal(path: &Path, line: usize, message: String) -> Item {
    Err(BadRow {
        line,
        error: Error::Input {
            at: path.display().to_string(),
            message,
        },
        fatal: true,
    })
}

/// A review of the archive or folder as a row: its id is its path in the dataset
/// (`test/pos/123_9`), its label the folder's.
fn review(bytes: Vec<u8>, rel: &str, split: Split, line: usize, source: &Path) -> Item {
    let (label, _) = imdb_entry(rel, split).expect("only reviews are read");
    let id = rel
        .trim_start_matches("./")
        .trim_start_matches("aclImdb/")
        .trim_end_matches(".txt")
        .to_string();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Row {
            text,
            label: Some(RawLabel::Name(sentiment_labels()[label].clone())),
            line,
            id: Some(id),
        }),
        Err(_) => Err(BadRow {
            line,
            error: Error::Input {
                at: format!("{}: {rel}", source.display()),
                message: "not UTF-8 text".into(),
            },
            fatal: false,
        }),
    }
}

/// The archive's reviews of `split`, in archive order; `lines` empty means all of
/// them with empty texts (for counting).
fn read_archive(path: &Path, split: Split, lines: &Range<usize>, tx: &SyncSender<Item>) {
    let counting = lines.is_empty();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(fatal(path, 0, format!("cannot open ({e})")));
            return;
        }
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(_) => {
            let _ = tx.send(fatal(path, 0, "not a .tar.gz archive".into()));
            return;
        }
    };
    let mut line = 0;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(_) => {
                let _ = tx.send(fatal(path, line, "corrupt or truncated archive".into()));
                return;
            }
        };
        let rel = entry
            .path()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        if imdb_entry(&rel, split).is_none() {
            continue;
        }
        line += 1;
        if !counting && line < lines.start {
            continue;
        }
        if !counting && line >= lines.end {
            return;
        }
        let mut bytes = Vec::new();
        if !counting && entry.read_to_end(&mut bytes).is_err() {
            let message = format!("corrupt or truncated archive (in {rel})");
            let _ = tx.send(fatal(path, line, message));
            return;
        }
        if tx.send(review(bytes, &rel, split, line, path)).is_err() {
            return;
        }
    }
    if line == 0 {
        let message = format!("no aclImdb/{}/{{pos,neg}}/*.txt reviews found", split.dir());
        let _ = tx.send(fatal(path, 0, message));
    }
}

fn read_files(
    files: Vec<(String, PathBuf)>,
    split: Split,
    lines: &Range<usize>,
    tx: &SyncSender<Item>,
) {
    for (i, (rel, file)) in files.iter().enumerate() {
        let line = i + 1;
        if !lines.contains(&line) {
            continue;
        }
        let item = match std::fs::read(file) {
            Ok(bytes) => review(bytes, rel, split, line, file),
            Err(e) => fatal(file, line, format!("cannot read ({e})")),
        };
        let stop = item.as_ref().is_err_and(|b| b.fatal);
        if tx.send(item).is_err() || stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_read(input: &Input, lines: Range<usize>) -> Vec<usize> {
        input
            .spawn(&Columns::default(), Labels::Optional, lines, 4)
            .unwrap()
            .into_iter()
            .map(|item| item.unwrap().line)
            .collect()
    }

    #[test]
    fn positions_are_counted_and_ranges_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "a\n\nb\nc").unwrap();
        let file = Input::data(&path, Split::Test).unwrap();
        assert_eq!(file.count().unwrap(), Some(4));
        assert_eq!(lines_read(&file, 1..usize::MAX), [1, 3, 4]);
        assert_eq!(lines_read(&file, 2..4), [3]);
        let texts = Input::Texts(vec!["x".into(), "y".into(), "z".into()]);
        assert_eq!(texts.count().unwrap(), Some(3));
        assert_eq!(lines_read(&texts, 2..usize::MAX), [2, 3]);
        assert!(Input::Stdin.count().unwrap().is_none());
    }
}
