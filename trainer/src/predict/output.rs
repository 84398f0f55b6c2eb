//! Where `trainer predict` writes: one row per text, in input order, as JSONL or CSV
//! ([`model_core::output`], the format the page's download shares), to
//! stdout or a file, flushed a chunk at a time. Every row starts with its input line,
//! which is what `--resume` reads back: a file left by a crash or a Ctrl-C is cut where
//! its last chunk begins (that chunk may have been cut short; a torn last line goes with
//! it) and the run goes on from there, so the finished file is byte for byte what an
//! uninterrupted run writes.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use model_core::Prediction;
use model_core::input::Row;
use model_core::output::{self, Origin};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header row, then one row per text.
    Csv,
}

/// Where rows go.
pub struct Sink {
    out: BufWriter<Box<dyn Write>>,
    file: Option<(PathBuf, File)>,
    format: OutFormat,
}

impl Sink {
    /// Rows to stdout; `header`: write the CSV header first.
    pub fn stdout(format: OutFormat, header: Option<&str>) -> Result<Sink> {
        let mut sink = Sink {
            out: BufWriter::new(Box::new(std::io::stdout())),
            file: None,
            format,
        };
        if let Some(h) = header.filter(|_| format == OutFormat::Csv) {
            sink.out.write_all(h.as_bytes())?;
        }
        Ok(sink)
    }

    /// Rows to a new file: one that exists and is not empty is an error, not
    /// overwritten (its rows may be hours of work: `--resume` goes on with it).
    pub fn create(path: &Path, format: OutFormat, header: Option<&str>) -> Result<Sink> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            bail!(
                "{}: already exists; pass --resume to go on with it, or remove it",
                path.display()
            );
        }
        let file =
            File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
        let mut sink = Self::to_file(path, file, format)?;
        if let Some(h) = header.filter(|_| format == OutFormat::Csv) {
            sink.out.write_all(h.as_bytes())?;
        }
        Ok(sink)
    }

    fn to_file(path: &Path, file: File, format: OutFormat) -> Result<Sink> {
        let writer = file
            .try_clone()
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(Sink {
            out: BufWriter::with_capacity(1 << 16, Box::new(writer)),
            file: Some((path.to_path_buf(), file)),
            format,
        })
    }

    /// Go on with a file an earlier run of the same command left: cut it where its last
    /// chunk (`chunk` lines each) begins and return the line to go on from (`start`
    /// when it holds no row yet). A missing file is a new one.
    pub fn resume(
        path: &Path,
        format: OutFormat,
        header: Option<&str>,
        chunk: usize,
        start: usize,
    ) -> Result<(Sink, usize)> {
        if !path.exists() {
            return Ok((Self::create(path, format, header)?, start));
        }
        let scan = scan(path, format, header, chunk)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        file.set_len(scan.cut)?;
        let next = scan
            .last_chunk
            .map_or(start, |c| (c * chunk + 1).max(start));
        let mut file = file;
        file.seek(SeekFrom::End(0))?;
        let mut sink = Self::to_file(path, file, format)?;
        if scan.body == 0
            && let Some(h) = header.filter(|_| format == OutFormat::Csv)
        {
            sink.out.write_all(h.as_bytes())?;
        }
        Ok((sink, next))
    }

    /// Append one row.
    pub fn write(&mut self, row: &Row, p: &Prediction) -> Result<()> {
        let origin = Origin {
            line: row.line,
            id: row.id.as_deref(),
        };
        let text = match self.format {
            OutFormat::Jsonl => output::jsonl_row(origin, p) + "\n",
            OutFormat::Csv => output::csv_row(origin, p, &[]),
        };
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Make everything written so far durable: flushed, and on disk for a file.
    pub fn flush(&mut self) -> Result<()> {
        let name = match &self.file {
            Some((path, _)) => path.display().to_string(),
            None => "stdout".into(),
        };
        self.out
            .flush()
            .with_context(|| format!("writing {name}"))?;
        if let Some((path, file)) = &self.file {
            file.sync_data()
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(())
    }
}

/// What an earlier run left in a file.
struct Scan {
    /// Bytes of the header (0 for JSONL or an empty file).
    body: u64,
    /// Where to cut: the first row of the last chunk (the end of the header when there
    /// is no row).
    cut: u64,
    /// The last chunk with a row (0-based).
    last_chunk: Option<usize>,
}

/// Read the file line by line, keeping only where the last chunk starts.
fn scan(path: &Path, format: OutFormat, header: Option<&str>, chunk: usize) -> Result<Scan> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut scan = Scan {
        body: 0,
        cut: 0,
        last_chunk: None,
    };
    let (mut complete, mut last_line) = (0u64, None);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf)?;
        if read == 0 || buf.last() != Some(&b'\n') {
            break; // the end, or a torn last line
        }
        n += 1;
        let offset = complete;
        complete += read as u64;
        let expected_header = header.filter(|_| format == OutFormat::Csv);
        if n == 1
            && let Some(h) = expected_header
        {
            if buf != h.as_bytes() {
                bail!(
                    "{}: its header is not `{}`: not this model's `trainer predict --format csv` output",
                    path.display(),
                    h.trim_end()
                );
            }
            scan.body = complete;
            scan.cut = complete;
            continue;
        }
        let digits = match format {
            OutFormat::Jsonl => buf.strip_prefix(b"{\"line\":"),
            OutFormat::Csv => Some(&buf[..]),
        };
        let line = digits.and_then(|d| {
            let end = d.iter().position(|b| !b.is_ascii_digit())?;
            std::str::from_utf8(&d[..end]).ok()?.parse::<usize>().ok()
        });
        let Some(line) = line.filter(|&l| l > 0 && last_line.is_none_or(|last| l > last)) else {
            bail!(
                "{}:{n}: not a row of `trainer predict` output (rows start with their input line, in order)",
                path.display()
            );
        };
        last_line = Some(line);
        let this_chunk = (line - 1) / chunk;
        if scan.last_chunk != Some(this_chunk) {
            scan.last_chunk = Some(this_chunk);
            scan.cut = offset;
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_cuts_a_torn_tail_and_the_last_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let rows = "{\"line\":1}\n{\"line\":2}\n{\"line\":4}\n{\"line\":5}\n{\"line\":7}\n{\"li";
        std::fs::write(&path, rows).unwrap();
        // Chunks of 3 lines: 1-3, 4-6, 7-9. Line 7 may have had company: redo 7-9.
        let (_, next) = Sink::resume(&path, OutFormat::Jsonl, None, 3, 1).unwrap();
        assert_eq!(next, 7);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"line\":1}\n{\"line\":2}\n{\"line\":4}\n{\"line\":5}\n"
        );
        std::fs::write(&path, "{\"line\":1}\nnot a row\n").unwrap();
        let err = Sink::resume(&path, OutFormat::Jsonl, None, 3, 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("out.jsonl:2: not a row"), "{err}");
    }

    #[test]
    fn resume_keeps_the_header_and_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let header = output::csv_header(&["negative".into(), "positive".into()], &[]);
        std::fs::write(
            &path,
            format!("{header}3,,positive,0.9,0.1,0.9,4,false\n5,"),
        )
        .unwrap();
        let (_, next) = Sink::resume(&path, OutFormat::Csv, Some(&header), 10, 1).unwrap();
        assert_eq!(next, 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), header);
        let other = output::csv_header(&["bad".into(), "good".into()], &[]);
        let err = Sink::resume(&path, OutFormat::Csv, Some(&other), 10, 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("header"), "{err}");
    }
}
