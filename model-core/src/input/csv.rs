//! CSV (or TSV) with a header row: a text column (`text`, else `review`, or one named)
//! and a label column (`label`, else `sentiment`, or one named). Quoted fields may span
//! lines; errors give the line the record starts on.

use std::io::Read;

use super::jsonl::Labels;
use super::labels::parse_label;
use super::{Row, at};
use crate::error::{Error, Result};

/// Which columns hold the text and the label; `None` takes the defaults.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The text column; default `text`, else `review`.
    pub text: Option<String>,
    /// The label column; default `label`, else `sentiment`.
    pub label: Option<String>,
}

/// The delimiter a file name implies: tab for `.tsv`, else comma.
pub fn delimiter_for(name: &str) -> u8 {
    if name.to_ascii_lowercase().ends_with(".tsv") {
        b'\t'
    } else {
        b','
    }
}

/// Every row of a CSV stream; errors name `source` and the line.
pub fn read(
    reader: impl Read,
    delimiter: u8,
    columns: &Columns,
    source: &str,
    labels: Labels,
) -> Result<Vec<Row>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| Error::input(at(source, 1), format!("cannot read the header ({e})")))?
        .clone();
    let find = |wanted: &Option<String>, defaults: &[&str]| -> (Vec<String>, Option<usize>) {
        let names: Vec<String> = match wanted {
            Some(w) => vec![w.clone()],
            None => defaults.iter().map(|d| d.to_string()).collect(),
        };
        let found = names.iter().find_map(|n| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(n))
        });
        (names, found)
    };
    let missing = |what: &str, names: &[String]| {
        Error::input(
            at(source, 1),
            format!(
                "no {what} column (looked for {}; the header has {})",
                names.join(", "),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        )
    };
    let (names, text_col) = find(&columns.text, &["text", "review"]);
    let text_col = text_col.ok_or_else(|| missing("text", &names))?;
    let (names, label_col) = find(&columns.label, &["label", "sentiment"]);
    if label_col.is_none() && (labels == Labels::Required || columns.label.is_some()) {
        return Err(missing("label", &names));
    }
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::input(at(source, line), format!("malformed CSV ({e})"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let text = std::str::from_utf8(record.get(text_col).unwrap_or_default())
            .map_err(|_| Error::input(at(source, line), "not UTF-8 text"))?;
        let cell = label_col.map(|c| record.get(c).unwrap_or_default());
        let label = cell
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(parse_label);
        let blank = cell.is_none_or(|c| c.iter().all(u8::is_ascii_whitespace));
        if label.is_none() && (labels == Labels::Required || !blank) {
            return Err(Error::input(at(source, line), "missing or invalid label"));
        }
        rows.push(Row {
            text: text.to_string(),
            label,
            line,
        });
    }
    Ok(rows)
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
