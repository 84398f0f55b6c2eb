//! CSV (or TSV) with a header row: a text column (`text`, else `review`, or one named),
//! a label column (`label`, else `sentiment`, or one named) and an optional id column
//! (`id`, or one named). Quoted fields may span lines; errors give the line the record
//! starts on.

use std::io::Read;

use super::jsonl::Labels;
use super::labels::parse_label;
use super::stream::{Format, RowStream};
use super::{Row, at};
use crate::error::{Error, Result};

/// Which fields (JSONL) or columns (CSV) hold the text, the label and the id; `None`
/// takes the defaults.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The text; default `text`, else `review`.
    pub text: Option<String>,
    /// The label; default `label`, else `sentiment`.
    pub label: Option<String>,
    /// The row's id, copied to its prediction; default `id`.
    pub id: Option<String>,
}

impl Columns {
    /// The names looked for, in order, for the text.
    pub fn text_names(&self) -> Vec<String> {
        Self::names(&self.text, &["text", "review"])
    }

    /// The names looked for, in order, for the label.
    pub fn label_names(&self) -> Vec<String> {
        Self::names(&self.label, &["label", "sentiment"])
    }

    /// The name of the id.
    pub fn id_name(&self) -> &str {
        self.id.as_deref().unwrap_or("id")
    }

    fn names(wanted: &Option<String>, defaults: &[&str]) -> Vec<String> {
        match wanted {
            Some(w) => vec![w.clone()],
            None => defaults.iter().map(|d| d.to_string()).collect(),
        }
    }
}

/// The delimiter a file name implies: tab for `.tsv`, else comma.
pub fn delimiter_for(name: &str) -> u8 {
    if name.to_ascii_lowercase().ends_with(".tsv") {
        b'\t'
    } else {
        b','
    }
}

/// Where, in a file's header, the text, label and id columns are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Positions {
    text: usize,
    label: Option<usize>,
    id: Option<usize>,
}

impl Positions {
    /// Find the columns in `headers`: the text column must be there, the label column
    /// too when labels are required or a label column was named.
    pub(crate) fn find(
        headers: &::csv::ByteRecord,
        columns: &Columns,
        source: &str,
        labels: Labels,
    ) -> Result<Self> {
        let headers: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let find = |names: &[String]| {
            names
                .iter()
                .find_map(|n| headers.iter().position(|h| h.eq_ignore_ascii_case(n)))
        };
        let missing = |what: &str, names: &[String]| {
            Error::input(
                at(source, 1),
                format!(
                    "no {what} column (looked for {}; the header has {})",
                    names.join(", "),
                    headers.join(", ")
                ),
            )
        };
        let names = columns.text_names();
        let text = find(&names).ok_or_else(|| missing("text", &names))?;
        let names = columns.label_names();
        let label = find(&names).filter(|_| labels != Labels::Ignored);
        if label.is_none()
            && labels != Labels::Ignored
            && (labels == Labels::Required || columns.label.is_some())
        {
            return Err(missing("label", &names));
        }
        let id = find(&[columns.id_name().to_string()]);
        if id.is_none() && columns.id.is_some() {
            return Err(missing("id", &[columns.id_name().to_string()]));
        }
        Ok(Self { text, label, id })
    }

    /// One record (starting on `line`) as a row.
    pub(crate) fn row(
        &self,
        record: &::csv::ByteRecord,
        line: usize,
        source: &str,
        labels: Labels,
    ) -> Result<Row> {
        fn utf8<'a>(cell: &'a [u8], source: &str, line: usize) -> Result<&'a str> {
            std::str::from_utf8(cell).map_err(|_| Error::input(at(source, line), "not UTF-8 text"))
        }
        let text = utf8(record.get(self.text).unwrap_or_default(), source, line)?;
        let cell = self.label.map(|c| record.get(c).unwrap_or_default());
        let label = cell
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(parse_label);
        let blank = cell.is_none_or(|c| c.iter().all(u8::is_ascii_whitespace));
        if label.is_none() && (labels == Labels::Required || !blank) {
            return Err(Error::input(at(source, line), "missing or invalid label"));
        }
        let id = match self.id.map(|c| record.get(c).unwrap_or_default()) {
            Some(cell) => Some(utf8(cell, source, line)?.to_string()),
            None => None,
        };
        Ok(Row {
            text: text.to_string(),
            label,
            line,
            id,
        })
    }
}

/// Every row of a CSV stream; the first error, naming `source` and the line, ends it.
pub fn read(
    reader: impl Read,
    delimiter: u8,
    columns: &Columns,
    source: &str,
    labels: Labels,
) -> Result<Vec<Row>> {
    let reader = std::io::BufReader::new(reader);
    RowStream::new(reader, Format::Csv { delimiter }, columns, source, labels)?
        .map(|r| r.map_err(|bad| bad.error))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::RawLabel;

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
