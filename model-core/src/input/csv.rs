//! CSV (or TSV) with a header row: a text column (`text`, else `review`, or one named),
//! a label column (`label`, else `sentiment`, or one named) and an optional id column
//! (`id`, or one named). Quoted fields may span lines; errors give the line the record
//! starts on.

use super::fields::{Columns, Labels};
use super::labels::parse_label;
use super::{Row, at};
use crate::error::{Error, Result};

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
