//! JSONL: one `{"text": ..., "label": ..., "id": ...}` object per line (`review` and
//! `sentiment` are accepted too, or the fields [`Columns`] names); blank lines are
//! skipped. Labels are names or class indices (numbers, or `true`/`false` for 1/0);
//! the id, when there is one, is a string or a number.

use std::io::BufRead;

use super::csv::Columns;
use super::labels::{RawLabel, parse_label};
use super::stream::{Format, RowStream};
use super::{Row, at};
use crate::error::{Error, Result};

/// Whether rows must carry a label (training, evaluation) or may go without
/// (classifying a file, where a label is only compared against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Every row has a label; a missing or invalid one is an error.
    Required,
    /// A row may have none (absent, `null` or empty); an invalid one is an error.
    Optional,
    /// Labels are not read (classifying a file: whatever is in a label field is no
    /// error).
    Ignored,
}

/// One line (1-based `line`); `Ok(None)` for a blank one.
pub fn parse_line(
    text: &str,
    line: usize,
    source: &str,
    columns: &Columns,
    labels: Labels,
) -> Result<Option<Row>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let here = || at(source, line);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::input(here(), format!("malformed JSON ({e})")))?;
    let text_names = columns.text_names();
    let body = text_names
        .iter()
        .find_map(|k| value.get(k).and_then(|t| t.as_str()))
        .ok_or_else(|| {
            Error::input(
                here(),
                format!("no string field \"{}\"", text_names.join("\" or \"")),
            )
        })?;
    let id = match value.get(columns.id_name()) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(x)) => Some(x.to_string()),
        _ => None,
    };
    let names = columns.label_names();
    let field = match labels {
        Labels::Ignored => None,
        _ => names.iter().find_map(|k| value.get(k)),
    };
    let label = match field {
        Some(serde_json::Value::String(s)) => parse_label(s),
        Some(serde_json::Value::Number(x)) => x.as_u64().map(RawLabel::Index),
        Some(serde_json::Value::Bool(b)) => Some(RawLabel::Index(*b as u64)),
        _ => None,
    };
    let absent = matches!(field, None | Some(serde_json::Value::Null))
        || matches!(field, Some(serde_json::Value::String(s)) if s.trim().is_empty());
    if label.is_none() && (labels == Labels::Required || (labels == Labels::Optional && !absent)) {
        return Err(Error::input(
            here(),
            "missing or invalid \"label\" (expected a name or 0/1)",
        ));
    }
    Ok(Some(Row {
        text: body.to_string(),
        label,
        line,
        id,
    }))
}

/// Every row of a JSONL stream; the first error, naming `source` and the line, ends it.
pub fn read(reader: impl BufRead, source: &str, labels: Labels) -> Result<Vec<Row>> {
    RowStream::new(reader, Format::Jsonl, &Columns::default(), source, labels)?
        .map(|r| r.map_err(|bad| bad.error))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let data =
            "{\"text\": \"a\", \"id\": \"r-1\"}\n{\"text\": \"b\", \"id\": 7}\n{\"text\": \"c\"}\n";
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
            err("{\"text\": \"a\"}", Labels::Required).starts_with("d.jsonl:1: missing or invalid")
        );
        assert!(
            err("{\"text\": \"a\", \"label\": 0.5}", Labels::Optional)
                .starts_with("d.jsonl:1: missing or invalid")
        );
        let bad_utf8 = read(&b"{\"text\": \"\xff\"}"[..], "d.jsonl", Labels::Optional).unwrap_err();
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
