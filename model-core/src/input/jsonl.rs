//! JSONL: one `{"text": ..., "label": ..., "id": ...}` object per line (`review` and
//! `sentiment` are accepted too, or the fields [`Columns`] names); blank lines are
//! skipped. Labels are names or class indices (numbers, or `true`/`false` for 1/0);
//! the id, when there is one, is a string or a number.

use super::fields::{Columns, Labels};
use super::labels::{RawLabel, parse_label};
use super::{Row, at};
use crate::error::{Error, Result};

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
