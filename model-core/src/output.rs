//! The results format: one row per classified text, as `trainer predict` writes it
//! and the page's "Download results (CSV)" saves it, so a file from either reads the
//! same (and the two can be compared line by line).
//!
//! JSONL: `{"line":3,"id":"r-7","label":"positive","confidence":0.97,"probabilities":{"negative":0.03,"positive":0.97},"tokens":12,"truncated":false}`
//!
//! CSV: `line,id,label,confidence,p_negative,p_positive,tokens,truncated`, then any
//! extra columns a writer adds (the page: `expected,text`). Every row starts with its
//! input line, and every row is one line of the file (line breaks in a field become
//! spaces), which `trainer predict --resume` relies on. Numbers are written in the
//! shortest form that reads back to the same `f32`.

use crate::inference::Prediction;

/// Where a text came from, for its row.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The 1-based input line it starts on.
    pub line: usize,
    /// Its id, when the input has one.
    pub id: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct JsonRow<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(flatten)]
    prediction: &'a Prediction,
    tokens: usize,
    truncated: bool,
}

/// One JSONL row, without its line break.
pub fn jsonl_row(origin: Origin, p: &Prediction) -> String {
    serde_json::to_string(&JsonRow {
        line: origin.line,
        id: origin.id,
        prediction: p,
        tokens: p.tokens,
        truncated: p.truncated,
    })
    .expect("a row serializes")
}

/// The CSV header for a model's labels, then `extra` columns; with its line break.
pub fn csv_header(labels: &[String], extra: &[&str]) -> String {
    let mut fields: Vec<String> = ["line", "id", "label", "confidence"]
        .map(String::from)
        .into();
    fields.extend(labels.iter().map(|l| csv_field(&format!("p_{l}"))));
    fields.extend(["tokens", "truncated"].map(String::from));
    fields.extend(extra.iter().map(|e| csv_field(e)));
    fields.join(",") + "\n"
}

/// One CSV row, then `extra` fields (as many as the header's extra columns); with its
/// line break.
pub fn csv_row(origin: Origin, p: &Prediction, extra: &[&str]) -> String {
    let mut fields = vec![
        origin.line.to_string(),
        csv_field(origin.id.unwrap_or("")),
        csv_field(&p.label),
        p.confidence.to_string(),
    ];
    fields.extend(p.probabilities.iter().map(|(_, x)| x.to_string()));
    fields.extend([p.tokens.to_string(), p.truncated.to_string()]);
    fields.extend(extra.iter().map(|e| csv_field(e)));
    fields.join(",") + "\n"
}

/// A CSV field, quoted when it needs it, on one line.
pub fn csv_field(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction() -> Prediction {
        Prediction {
            label: "positive".into(),
            confidence: 0.75,
            probabilities: vec![("negative".into(), 0.25), ("positive".into(), 0.75)],
            tokens: 12,
            truncated: false,
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_kept_on_one_line() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_field("two\nlines"), "two lines");
        let labels = ["negative".into(), "positive".into()];
        assert_eq!(
            csv_header(&labels, &[]),
            "line,id,label,confidence,p_negative,p_positive,tokens,truncated\n"
        );
        assert_eq!(
            csv_header(&labels, &["expected", "text"]),
            "line,id,label,confidence,p_negative,p_positive,tokens,truncated,expected,text\n"
        );
    }

    #[test]
    fn rows_carry_line_id_and_every_probability() {
        let p = prediction();
        let at = Origin {
            line: 3,
            id: Some("r,7"),
        };
        assert_eq!(
            csv_row(at, &p, &["negative", "so \"good\",\nreally"]),
            "3,\"r,7\",positive,0.75,0.25,0.75,12,false,negative,\"so \"\"good\"\", really\"\n"
        );
        assert_eq!(
            jsonl_row(at, &p),
            r#"{"line":3,"id":"r,7","label":"positive","confidence":0.75,"probabilities":{"negative":0.25,"positive":0.75},"tokens":12,"truncated":false}"#
        );
        let no_id = Origin { line: 4, id: None };
        assert!(jsonl_row(no_id, &p).starts_with(r#"{"line":4,"label""#));
        assert!(csv_row(no_id, &p, &[]).starts_with("4,,positive,"));
    }
}
