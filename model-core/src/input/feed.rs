//! A data file read a slice at a time, for readers that cannot block: the page gets a
//! picked file's bytes with `Blob.slice(..).arrayBuffer()`, awaiting each slice, so it
//! cannot hand [`RowStream`] a `BufRead`. Push slices of any size into a [`Feed`] and
//! it returns the rows each slice completes; memory holds one slice and the record it
//! ends inside, never the file.
//!
//! The rows are [`RowStream`]'s, numbered as in the file, with the same errors: every
//! whole-record piece of the file goes through a `RowStream` (with the CSV header put
//! before it), so this module decides only where a piece may end. For line formats
//! that is after a line break; for CSV after a record, found by `csv-core`, the state
//! machine under the `csv` reader, so a quoted field holding line breaks is never cut.

use std::io::Cursor;

use super::Row;
use super::fields::{Columns, Labels};
use super::stream::{BadRow, Format, RowStream};
use crate::error::Result;

/// A row, or a row that could not be read.
pub type Item = std::result::Result<Row, BadRow>;

/// Rows of a file pushed in slices.
pub struct Feed {
    format: Format,
    columns: Columns,
    source: String,
    labels: Labels,
    from_line: usize,
    /// Bytes pushed and not yet parsed: the records of the next piece, and the start
    /// of one not yet complete.
    carry: Vec<u8>,
    /// How far into `carry` the search for record ends has got.
    scanned: usize,
    /// The end of the last complete record in `carry`.
    end: usize,
    /// CSV: where records end (it keeps its state across slices).
    records: Option<csv_core::Reader>,
    /// The file line `carry` starts on.
    line: usize,
    /// CSV: where the first record (the header) ends in the file, once found.
    header_end: Option<usize>,
    /// CSV: the header record (its line break included) and the line breaks it holds.
    header: Option<(Vec<u8>, usize)>,
    /// Bytes of the file parsed so far.
    consumed: u64,
}

impl Feed {
    /// Rows of a file in `format`; `source` names it in errors.
    pub fn new(format: Format, columns: &Columns, source: &str, labels: Labels) -> Feed {
        let records = match format {
            Format::Csv { delimiter } => {
                Some(csv_core::ReaderBuilder::new().delimiter(delimiter).build())
            }
            Format::Lines | Format::Jsonl => None,
        };
        Feed {
            format,
            columns: columns.clone(),
            source: source.to_string(),
            labels,
            from_line: 1,
            carry: Vec::new(),
            scanned: 0,
            end: 0,
            records,
            line: 1,
            header_end: None,
            header: None,
            consumed: 0,
        }
    }

    /// Only the rows from file line `line` on (an interrupted run going on): the rows
    /// before it are neither returned nor parsed, so a bad one is no error.
    pub fn from_line(mut self, line: usize) -> Self {
        self.from_line = line.max(1);
        self
    }

    /// Bytes of the file read into rows so far: how far through it the reader is.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next slice of the file; the rows it completes, in file order. A CSV header
    /// without the columns needed is the error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Item>> {
        self.carry.extend_from_slice(bytes);
        self.find_ends();
        let end = self.end;
        self.parse(end)
    }

    /// The end of the file: the rows of what is left (a last line without a line break).
    pub fn finish(&mut self) -> Result<Vec<Item>> {
        let end = self.carry.len();
        self.parse(end)
    }

    /// Move `end` to the last record end in `carry`.
    fn find_ends(&mut self) {
        let new = &self.carry[self.scanned..];
        match &mut self.records {
            None => {
                if let Some(i) = new.iter().rposition(|&b| b == b'\n') {
                    self.end = self.scanned + i + 1;
                }
            }
            Some(reader) => {
                let (mut input, mut at) = (new, self.scanned);
                let mut out = [0u8; 4096];
                let mut ends = [0usize; 64];
                loop {
                    let (result, read, _, _) = reader.read_record(input, &mut out, &mut ends);
                    input = &input[read..];
                    at += read;
                    match result {
                        csv_core::ReadRecordResult::Record => {
                            // Nothing is parsed before the header is found, so `carry`
                            // still starts at the file's start here.
                            self.header_end.get_or_insert(at);
                            self.end = at;
                        }
                        csv_core::ReadRecordResult::InputEmpty
                        | csv_core::ReadRecordResult::End => break,
                        // A field or record longer than the scratch space: its bytes
                        // are not needed here, only where it ends.
                        csv_core::ReadRecordResult::OutputFull
                        | csv_core::ReadRecordResult::OutputEndsFull => {}
                    }
                }
            }
        }
        self.scanned = self.carry.len();
    }

    /// Rows of `carry[..end]`, which ends with a record (or is the file's last bytes).
    fn parse(&mut self, end: usize) -> Result<Vec<Item>> {
        if end == 0 {
            return Ok(Vec::new());
        }
        let piece: Vec<u8> = self.carry.drain(..end).collect();
        self.scanned -= end.min(self.scanned);
        self.end = 0;
        self.consumed += end as u64;
        let first_line = self.line;
        self.line += piece.iter().filter(|&&b| b == b'\n').count();
        match self.format {
            Format::Lines | Format::Jsonl => self.rows(piece, first_line - 1),
            Format::Csv { .. } => {
                let (header, breaks) = match &self.header {
                    Some(h) => h.clone(),
                    None => {
                        // The first piece: its first record is the header (the whole
                        // piece when the file ends inside it).
                        let header = piece[..self.header_end.unwrap_or(piece.len())].to_vec();
                        let breaks = header.iter().filter(|&&b| b == b'\n').count();
                        self.header = Some((header, breaks));
                        return self.rows(piece, 0);
                    }
                };
                let mut bytes = header;
                bytes.extend_from_slice(&piece);
                self.rows(bytes, first_line - 1 - breaks)
            }
        }
    }

    /// The rows of `bytes` (a piece of whole records, after the CSV header) through the
    /// one reader, its line 1 being file line `offset + 1`. A CSV header without the
    /// columns needed is the error.
    fn rows(&self, bytes: Vec<u8>, offset: usize) -> Result<Vec<Item>> {
        Ok(RowStream::new(
            Cursor::new(bytes),
            self.format,
            &self.columns,
            &self.source,
            self.labels,
        )?
        .offset_lines(offset)
        .lines(self.from_line..usize::MAX)
        .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reader of the whole file gets: rows, or bad rows as (line, message).
    fn whole(
        data: &[u8],
        format: Format,
        from: usize,
    ) -> Vec<std::result::Result<Row, (usize, String)>> {
        RowStream::new(
            Cursor::new(data.to_vec()),
            format,
            &Columns::default(),
            "f",
            Labels::Optional,
        )
        .unwrap()
        .lines(from..usize::MAX)
        .map(|r| r.map_err(|b| (b.line, b.error.to_string())))
        .collect()
    }

    /// The same file pushed `size` bytes at a time.
    fn fed(
        data: &[u8],
        format: Format,
        from: usize,
        size: usize,
    ) -> Vec<std::result::Result<Row, (usize, String)>> {
        let mut feed =
            Feed::new(format, &Columns::default(), "f", Labels::Optional).from_line(from);
        let mut items = Vec::new();
        for slice in data.chunks(size) {
            items.extend(feed.push(slice).unwrap());
            assert!(
                feed.carry.len() < size + 200,
                "holds more than a slice and a record"
            );
        }
        items.extend(feed.finish().unwrap());
        assert_eq!(feed.consumed(), data.len() as u64);
        items
            .into_iter()
            .map(|r| r.map_err(|b| (b.line, b.error.to_string())))
            .collect()
    }

    fn same_as_whole(data: &str, format: Format) {
        for from in [1, 2, 5] {
            let want = whole(data.as_bytes(), format, from);
            assert!(want.len() >= 2, "{want:?}");
            for size in [1, 2, 3, 7, 16, 50, 4096] {
                assert_eq!(
                    fed(data.as_bytes(), format, from, size),
                    want,
                    "slices of {size}, from line {from}"
                );
            }
        }
    }

    #[test]
    fn jsonl_in_slices_reads_as_the_whole_file() {
        let data = "{\"text\": \"one\", \"label\": \"pos\"}\n\n{\"text\": \"two ünïcödé\"}\r\n{oops\n{\"id\": \"x\", \"text\": \"three\"}\n{\"label\": 1}\n{\"text\": \"last, no break\"}";
        same_as_whole(data, Format::Jsonl);
    }

    #[test]
    fn lines_in_slices_read_as_the_whole_file() {
        same_as_whole("first\n\n  \nsecond 😀\r\nthird\nfourth", Format::Lines);
    }

    #[test]
    fn csv_in_slices_never_cuts_a_quoted_field() {
        let data = "\"i\nd\",text,label\r\na,\"one, with \"\"quotes\"\"\nand a line break\",pos\r\nb,two,neg\n\nc,\"three\n\n\",pos\nd,bad row\ne,five,pos\nf,\"unclosed at the end";
        same_as_whole(data, Format::Csv { delimiter: b',' });
        let tsv = "text\tlabel\nfine\t1\n\"tab\there\"\t0\nmore\t1\nstill more\t0\nend\t1\n";
        same_as_whole(tsv, Format::Csv { delimiter: b'\t' });
    }

    #[test]
    fn a_csv_header_without_a_text_column_is_the_error() {
        let mut feed = Feed::new(
            Format::Csv { delimiter: b',' },
            &Columns::default(),
            "r.csv",
            Labels::Optional,
        );
        assert!(feed.push(b"body,lab").unwrap().is_empty());
        let e = feed.push(b"el\nx,1\n").unwrap_err().to_string();
        assert!(e.contains("r.csv:1") && e.contains("no text column"), "{e}");
    }

    #[test]
    fn a_bad_row_skipped_before_the_start_line_is_no_error() {
        let data = "{oops\n{\"text\": \"a\"}\n{\"text\": \"b\"}\n";
        let rows = fed(data.as_bytes(), Format::Jsonl, 2, 5);
        assert_eq!(
            rows.iter()
                .map(|r| r.as_ref().unwrap().line)
                .collect::<Vec<_>>(),
            [2, 3]
        );
    }
}
