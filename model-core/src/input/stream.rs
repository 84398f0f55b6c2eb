//! Rows of a data file one at a time, so that inputs of any size are read in bounded
//! memory (`trainer predict` and `trainer evaluate` hold one chunk, not the file).
//!
//! A bad row (malformed JSON, a missing text, a bad label, invalid UTF-8, a CSV record
//! with the wrong number of fields) is a [`BadRow`] naming its line, and the rows after
//! it can still be read: the caller decides whether to stop or skip. A read error ends
//! the stream. A line range restricts the stream to part of the file (a shard, the rest
//! of an interrupted run): rows outside it are neither returned nor parsed, so a bad
//! row outside the range is no error.

use std::io::BufRead;
use std::ops::Range;

use super::csv::Positions;
use super::fields::{Columns, Labels};
use super::jsonl;
use super::{Row, at};
use crate::error::{Error, Result};

/// How a file holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One text per line; blank lines are skipped.
    Lines,
    /// One JSON object per line ([`jsonl`]).
    Jsonl,
    /// CSV or TSV with a header row ([`super::csv`]).
    Csv {
        /// b',' or b'\t'.
        delimiter: u8,
    },
}

impl Format {
    /// The format a file name implies: `.jsonl`, `.ndjson` and `.json` are JSONL,
    /// `.csv` CSV, `.tsv` TSV, anything else one text per line.
    pub fn for_name(name: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        if [".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            Format::Jsonl
        } else if lower.ends_with(".csv") || lower.ends_with(".tsv") {
            Format::Csv {
                delimiter: super::csv::delimiter_for(&lower),
            }
        } else {
            Format::Lines
        }
    }
}

/// A row that could not be read.
#[derive(Debug)]
pub struct BadRow {
    /// The line it starts on (1-based).
    pub line: usize,
    /// What is wrong, naming the file and line.
    pub error: Error,
    /// Whether the stream ends here (a read error): nothing after it can be read.
    pub fatal: bool,
}

/// An iterator over the rows of a stream, in file order.
pub struct RowStream<R: BufRead> {
    source: String,
    columns: Columns,
    labels: Labels,
    lines: Range<usize>,
    /// Added to the reader's line numbers: the file line its first line is, less one.
    offset: usize,
    kind: Kind<R>,
    done: bool,
}

enum Kind<R: BufRead> {
    Lines {
        reader: R,
        line: usize,
        json: bool,
    },
    Csv {
        records: Box<::csv::Reader<R>>,
        positions: Positions,
    },
}

impl<R: BufRead> RowStream<R> {
    /// Rows of `reader` in `format`; `source` names it in errors. A CSV header without
    /// the columns needed is an error here.
    pub fn new(
        reader: R,
        format: Format,
        columns: &Columns,
        source: &str,
        labels: Labels,
    ) -> Result<Self> {
        let kind = match format {
            Format::Lines | Format::Jsonl => Kind::Lines {
                reader,
                line: 0,
                json: format == Format::Jsonl,
            },
            Format::Csv { delimiter } => {
                let mut records = ::csv::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .flexible(false)
                    .from_reader(reader);
                let headers = records.byte_headers().map_err(|e| {
                    Error::input(at(source, 1), format!("cannot read the header ({e})"))
                })?;
                let positions = Positions::find(headers, columns, source, labels)?;
                Kind::Csv {
                    records: Box::new(records),
                    positions,
                }
            }
        };
        Ok(Self {
            source: source.to_string(),
            columns: columns.clone(),
            labels,
            lines: 1..usize::MAX,
            offset: 0,
            kind,
            done: false,
        })
    }

    /// The reader is part of a file: its line 1 is the file's line `offset + 1`, and
    /// rows, errors and [`Self::lines`] are numbered as in the file ([`super::feed`]
    /// reads a file a piece at a time this way). Call it before reading any row.
    pub fn offset_lines(mut self, offset: usize) -> Self {
        self.offset = offset;
        if let Kind::Lines { line, .. } = &mut self.kind {
            *line = offset;
        }
        self
    }

    /// Only the rows that start on a line in `lines` (1-based, end excluded).
    pub fn lines(mut self, lines: Range<usize>) -> Self {
        self.lines = lines;
        self
    }

    fn bad(&mut self, line: usize, error: Error, fatal: bool) -> Option<<Self as Iterator>::Item> {
        if fatal {
            self.done = true;
        }
        Some(Err(BadRow { line, error, fatal }))
    }

    fn next_line(&mut self) -> Option<<Self as Iterator>::Item> {
        let Kind::Lines { reader, line, json } = &mut self.kind else {
            unreachable!("called for line formats only")
        };
        let json = *json;
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            *line += 1;
            let n = *line;
            if n >= self.lines.end {
                self.done = true;
                return None;
            }
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    let error = Error::input(at(&self.source, n), format!("cannot read ({e})"));
                    return self.bad(n, error, true);
                }
            }
            if n < self.lines.start {
                continue;
            }
            while matches!(bytes.last(), Some(b'\n' | b'\r')) {
                bytes.pop();
            }
            let Ok(text) = std::str::from_utf8(&bytes) else {
                let error = Error::input(at(&self.source, n), "not UTF-8 text");
                return self.bad(n, error, false);
            };
            if !json {
                if text.trim().is_empty() {
                    continue;
                }
                return Some(Ok(Row {
                    text: text.to_string(),
                    label: None,
                    line: n,
                    id: None,
                }));
            }
            match jsonl::parse_line(text, n, &self.source, &self.columns, self.labels) {
                Ok(Some(row)) => return Some(Ok(row)),
                Ok(None) => continue,
                Err(error) => return self.bad(n, error, false),
            }
        }
    }

    fn next_record(&mut self) -> Option<<Self as Iterator>::Item> {
        let Kind::Csv { records, positions } = &mut self.kind else {
            unreachable!("called for CSV only")
        };
        let mut record = ::csv::ByteRecord::new();
        loop {
            let start = records.position().line() as usize + self.offset;
            if start >= self.lines.end {
                self.done = true;
                return None;
            }
            match records.read_byte_record(&mut record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {
                    let line = record
                        .position()
                        .map_or(start, |p| p.line() as usize + self.offset);
                    if line < self.lines.start {
                        continue;
                    }
                    if line >= self.lines.end {
                        self.done = true;
                        return None;
                    }
                    let row = positions.row(&record, line, &self.source, self.labels);
                    return Some(row.map_err(|error| BadRow {
                        line,
                        error,
                        fatal: false,
                    }));
                }
                Err(e) => {
                    let line = e
                        .position()
                        .map_or(start, |p| p.line() as usize + self.offset);
                    let fatal = matches!(e.kind(), ::csv::ErrorKind::Io(_));
                    if !fatal && !self.lines.contains(&line) {
                        continue;
                    }
                    let error = Error::input(at(&self.source, line), csv_problem(&e));
                    return self.bad(line, error, fatal);
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for RowStream<R> {
    type Item = std::result::Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.kind {
            Kind::Lines { .. } => self.next_line(),
            Kind::Csv { .. } => self.next_record(),
        }
    }
}

/// What is wrong with a CSV record, without the `csv` reader's own record and byte
/// position (the error names the line; a file read in pieces, [`super::feed`], has
/// other positions inside each piece).
fn csv_problem(e: &::csv::Error) -> String {
    match e.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("malformed CSV: {len} fields where the header has {expected_len}"),
        ::csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
        ::csv::ErrorKind::Io(io) => format!("cannot read ({io})"),
        _ => format!("malformed CSV ({e})"),
    }
}

/// Every row of a stream, for inputs that fit in memory (training data, the page's
/// batch files); the first bad row, naming `source` and its line, is the error.
pub fn read_all(
    reader: impl BufRead,
    format: Format,
    columns: &Columns,
    source: &str,
    labels: Labels,
) -> Result<Vec<Row>> {
    RowStream::new(reader, format, columns, source, labels)?
        .map(|r| r.map_err(|bad| bad.error))
        .collect()
}

/// Lines in a stream (a last line without a newline counts): what a line range of a
/// file is a share of.
pub fn count_lines(mut reader: impl BufRead) -> std::io::Result<usize> {
    let (mut lines, mut last) = (0, b'\n');
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count();
        last = buf[buf.len() - 1];
        let n = buf.len();
        reader.consume(n);
    }
    Ok(lines + usize::from(last != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(data: &str, format: Format) -> RowStream<&[u8]> {
        RowStream::new(
            data.as_bytes(),
            format,
            &Columns::default(),
            "f",
            Labels::Optional,
        )
        .unwrap()
    }

    fn lines_of(s: RowStream<&[u8]>) -> Vec<std::result::Result<usize, usize>> {
        s.map(|r| r.map(|row| row.line).map_err(|bad| bad.line))
            .collect()
    }

    #[test]
    fn bad_rows_name_their_line_and_the_stream_goes_on() {
        let data = "{\"text\": \"a\"}\n{oops\n\n{\"text\": \"c\"}\n";
        assert_eq!(
            lines_of(stream(data, Format::Jsonl)),
            [Ok(1), Err(2), Ok(4)]
        );
        let data = "text,label\na,1\nb,1,extra\n\"c\nd\",0\n";
        assert_eq!(
            lines_of(stream(data, Format::Csv { delimiter: b',' })),
            [Ok(2), Err(3), Ok(4)]
        );
        let data = "one\r\n\n  \nt\u{e9}\n";
        let rows: Vec<Row> = stream(data, Format::Lines).map(|r| r.unwrap()).collect();
        assert_eq!(
            rows.iter()
                .map(|r| (r.line, r.text.as_str()))
                .collect::<Vec<_>>(),
            [(1, "one"), (4, "t\u{e9}")]
        );
        let bad = &b"ok\n\xff\nfine"[..];
        let s = RowStream::new(
            bad,
            Format::Lines,
            &Columns::default(),
            "f",
            Labels::Optional,
        );
        let got: Vec<_> = s
            .unwrap()
            .map(|r| r.map(|row| row.line).map_err(|b| b.error.to_string()))
            .collect();
        assert_eq!(got, [Ok(1), Err("f:2: not UTF-8 text".into()), Ok(3)]);
    }

    #[test]
    fn a_line_range_drops_the_rows_and_errors_outside_it() {
        let data = "{oops\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n{oops\n";
        assert_eq!(
            lines_of(stream(data, Format::Jsonl).lines(2..4)),
            [Ok(2), Ok(3)]
        );
        let data = "text\nx,y\nb\n\"c\nd\"\ne\n";
        assert_eq!(
            lines_of(stream(data, Format::Csv { delimiter: b',' }).lines(3..6)),
            [Ok(3), Ok(4)],
            "the record starting on line 4 is in, the one on line 6 out"
        );
    }

    #[test]
    fn formats_follow_the_file_name_and_lines_are_counted() {
        assert_eq!(Format::for_name("A.JSONL"), Format::Jsonl);
        assert_eq!(Format::for_name("x.tsv"), Format::Csv { delimiter: b'\t' });
        assert_eq!(Format::for_name("reviews.txt"), Format::Lines);
        assert_eq!(count_lines(&b"a\nb\n"[..]).unwrap(), 2);
        assert_eq!(count_lines(&b"a\nb"[..]).unwrap(), 2);
        assert_eq!(count_lines(&b""[..]).unwrap(), 0);
    }

    /// `read_all` on JSONL, as the trainer's and the page's JSONL files are read.
    mod jsonl_files {
        use super::*;
        use crate::input::RawLabel;

        fn read(reader: impl BufRead, source: &str, labels: Labels) -> Result<Vec<Row>> {
            read_all(reader, Format::Jsonl, &Columns::default(), source, labels)
        }

        #[test]
        fn rows_keep_their_line_and_blank_lines_are_skipped() {
            let data = "{\"text\": \"good\", \"label\": \"positive\"}\n\n{\"review\": \"bad\", \"sentiment\": 0}\n";
            let rows = read(data.as_bytes(), "d.jsonl", Labels::Required).unwrap();
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[1].line, 3);
            assert_eq!(rows[1].label, Some(RawLabel::Index(0)));
        }

        #[test]
        fn ids_are_strings_or_numbers() {
            let data = "{\"text\": \"a\", \"id\": \"r-1\"}\n{\"text\": \"b\", \"id\": 7}\n{\"text\": \"c\"}\n";
            let rows = read(data.as_bytes(), "d.jsonl", Labels::Optional).unwrap();
            let ids: Vec<Option<&str>> = rows.iter().map(|r| r.id.as_deref()).collect();
            assert_eq!(ids, [Some("r-1"), Some("7"), None]);
        }

        #[test]
        fn errors_name_the_file_and_line() {
            let err = |data: &str, labels| {
                read(data.as_bytes(), "d.jsonl", labels)
                    .unwrap_err()
                    .to_string()
            };
            assert!(
                err("{\"text\": \"a\", \"label\": 1}\n{oops\n", Labels::Required)
                    .starts_with("d.jsonl:2: malformed JSON")
            );
            assert_eq!(
                err("{\"label\": 1}", Labels::Optional),
                "d.jsonl:1: no string field \"text\" or \"review\""
            );
            assert!(
                err("{\"text\": \"a\"}", Labels::Required)
                    .starts_with("d.jsonl:1: missing or invalid")
            );
            assert!(
                err("{\"text\": \"a\", \"label\": 0.5}", Labels::Optional)
                    .starts_with("d.jsonl:1: missing or invalid")
            );
            let bad_utf8 =
                read(&b"{\"text\": \"\xff\"}"[..], "d.jsonl", Labels::Optional).unwrap_err();
            assert_eq!(bad_utf8.to_string(), "d.jsonl:1: not UTF-8 text");
            let rows = read(
                "{\"text\": \"a\", \"label\": null}".as_bytes(),
                "d",
                Labels::Optional,
            )
            .unwrap();
            assert_eq!(rows[0].label, None);
        }
    }

    /// `read_all` on CSV, as the trainer's and the page's CSV files are read.
    mod csv_files {
        use super::*;
        use crate::input::RawLabel;

        fn read(
            reader: &[u8],
            delimiter: u8,
            columns: &Columns,
            source: &str,
            labels: Labels,
        ) -> Result<Vec<Row>> {
            read_all(reader, Format::Csv { delimiter }, columns, source, labels)
        }

        #[test]
        fn columns_are_found_by_name_and_lines_counted() {
            let data = "id,Review,sentiment\n1,\"two\nlines\",positive\n2,bad,0\n";
            let rows = read(
                data.as_bytes(),
                b',',
                &Columns::default(),
                "r.csv",
                Labels::Required,
            )
            .unwrap();
            assert_eq!(rows[0].text, "two\nlines");
            assert_eq!(rows[1].line, 4, "the record after a two-line field");
            assert_eq!(rows[1].label, Some(RawLabel::Index(0)));
            assert_eq!(rows[1].id.as_deref(), Some("2"));
        }

        #[test]
        fn missing_columns_and_labels_are_errors_naming_the_line() {
            let err = |data: &str, labels| {
                read(data.as_bytes(), b',', &Columns::default(), "r.csv", labels)
                    .unwrap_err()
                    .to_string()
            };
            assert_eq!(
                err("body,label\nx,1\n", Labels::Optional),
                "r.csv:1: no text column (looked for text, review; the header has body, label)"
            );
            assert!(err("text\nx\n", Labels::Required).starts_with("r.csv:1: no label column"));
            assert_eq!(
                err("text,label\nx,1\ny,\n", Labels::Required),
                "r.csv:3: missing or invalid label"
            );
            let rows = read(
                "text\nx\n".as_bytes(),
                b',',
                &Columns::default(),
                "r.csv",
                Labels::Optional,
            );
            assert_eq!(rows.unwrap()[0].label, None);
        }
    }
}
