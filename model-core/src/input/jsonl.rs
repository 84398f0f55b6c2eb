//! JSONL: one `{"text": ..., "label": ...}` object per line (`review` and `sentiment`
//! are accepted too); blank lines are skipped. Labels are names or class indices
//! (numbers, or `true`/`false` for 1/0).

use std::io::BufRead;

use super::labels::{RawLabel, parse_label};
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
}

/// One line (1-based `line`); `Ok(None)` for a blank one.
pub fn parse_line(text: &str, line: usize, source: &str, labels: Labels) -> Result<Option<Row>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let here = || at(source, line);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::input(here(), format!("malformed JSON ({e})")))?;
    let body = ["text", "review"]
        .iter()
        .find_map(|k| value.get(*k).and_then(|t| t.as_str()))
        .ok_or_else(|| Error::input(here(), "no string field \"text\""))?;
    let field = ["label", "sentiment"].iter().find_map(|k| value.get(*k));
    let label = match field {
        Some(serde_json::Value::String(s)) => parse_label(s),
        Some(serde_json::Value::Number(x)) => x.as_u64().map(RawLabel::Index),
        Some(serde_json::Value::Bool(b)) => Some(RawLabel::Index(*b as u64)),
        _ => None,
    };
    let absent = matches!(field, None | Some(serde_json::Value::Null))
        || matches!(field, Some(serde_json::Value::String(s)) if s.trim().is_empty());
    if label.is_none() && (labels == Labels::Required || !absent) {
        return Err(Error::input(
            here(),
            "missing or invalid \"label\" (expected a name or 0/1)",
        ));
    }
    Ok(Some(Row {
        text: body.to_string(),
        label,
        line,
    }))
}

/// Every row of a JSONL stream; errors name `source` and the line.
pub fn read(reader: impl BufRead, source: &str, labels: Labels) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, bytes) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let bytes = bytes.map_err(|e| Error::input(at(source, n), format!("cannot read ({e})")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::input(at(source, n), "not UTF-8 text"))?;
        rows.extend(parse_line(text, n, source, labels)?);
    }
    Ok(rows)
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
            "d.jsonl:1: no string field \"text\""
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
