//! The page's text handling that does not touch the DOM, so it is unit-tested
//! natively: batch input files, results as CSV, accuracy and the confusion matrix.
//! (Words and phrases for occlusion are in [`crate::occlusion`].) The file formats,
//! label rules and confusion counts are model-core's input pipeline, the trainer's.

use model_core::input::confusion::Confusion;
use model_core::input::labels::map_label;
use model_core::input::stream::{Format, read_all};
use model_core::input::{Columns, Labels, csv};

/// One review to classify in batch mode, with its label when the input has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// The review.
    pub text: String,
    /// The expected label, already mapped onto the model's label names.
    pub label: Option<String>,
}

/// Parse batch input with model-core's readers (the trainer's). `name` decides the
/// format: `.jsonl` (objects with `text` or `review`, optional `label` or `sentiment`),
/// `.csv`/`.tsv` (a header naming those columns), anything else one review per
/// non-empty line. Labels are mapped onto the model's; errors name the file and line.
pub fn parse_batch(name: &str, content: &str, labels: &[String]) -> Result<Vec<BatchItem>, String> {
    let lower = name.to_ascii_lowercase();
    let format = if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        Format::Jsonl
    } else if lower.ends_with(".csv") || lower.ends_with(".tsv") {
        Format::Csv {
            delimiter: csv::delimiter_for(name),
        }
    } else {
        return Ok(content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| BatchItem {
                text: l.to_string(),
                label: None,
            })
            .collect());
    };
    let rows = read_all(
        content.as_bytes(),
        format,
        &Columns::default(),
        name,
        Labels::Optional,
    )
    .map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|row| {
            let label = match &row.label {
                Some(raw) => {
                    let at = format!("{name}:{}", row.line);
                    Some(map_label(raw, labels, &at).map_err(|e| e.to_string())?)
                }
                None => None,
            };
            Ok(BatchItem {
                text: row.text,
                label,
            })
        })
        .collect()
}

/// One classified review of batch mode.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    /// The review.
    pub text: String,
    /// The expected label, if the input had one.
    pub expected: Option<String>,
    /// The predicted label.
    pub label: String,
    /// Its probability.
    pub confidence: f32,
}

/// Quote a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The results as CSV: `text,expected,label,confidence`.
pub fn results_csv(rows: &[BatchRow]) -> String {
    let mut out = String::from("text,expected,label,confidence\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{:.4}\n",
            csv_field(&r.text),
            csv_field(r.expected.as_deref().unwrap_or("")),
            csv_field(&r.label),
            r.confidence
        ));
    }
    out
}

/// Accuracy and confusion matrix (`matrix[expected][predicted]`) over the rows
/// that have an expected label; `None` when none has.
pub fn confusion(rows: &[BatchRow], labels: &[String]) -> Option<(f64, Vec<Vec<usize>>)> {
    let mut counts = Confusion::new(labels.len());
    for r in rows {
        let Some(expected) = &r.expected else {
            continue;
        };
        if let (Some(e), Some(p)) = (
            labels.iter().position(|l| l == expected),
            labels.iter().position(|l| *l == r.label),
        ) {
            counts.add(e, p);
        }
    }
    counts.accuracy().map(|a| (a, counts.matrix))
}

/// Index of the label that "positive" means: one named so, else the last.
pub fn positive_index(labels: &[String]) -> usize {
    labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case("positive") || l.eq_ignore_ascii_case("pos"))
        .unwrap_or(labels.len().saturating_sub(1))
}

/// "Positive" from "positive".
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A byte range of `text` as UTF-16 code units (what JS's `String.slice` takes).
pub fn utf16_range(text: &str, range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    let units = |s: &str| s.encode_utf16().count();
    let start = units(&text[..range.start]);
    start..start + units(&text[range.clone()])
}

/// The byte range of `text` that UTF-16 range `[start, end)` covers (clamped to the
/// text; an index inside a character moves to that character's end).
pub fn byte_range(text: &str, [start, end]: [usize; 2]) -> std::ops::Range<usize> {
    let mut units = 0;
    let (mut from, mut to) = (text.len(), text.len());
    for (i, ch) in text.char_indices() {
        if units >= start && from == text.len() {
            from = i;
        }
        if units >= end {
            to = i;
            break;
        }
        units += ch.len_utf16();
    }
    from.min(to)..to
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn ranges_convert_between_bytes_and_utf16_units() {
        let text = "Très 😀 bien";
        let bien = text.find("bien").unwrap();
        let r = utf16_range(text, &(bien..text.len()));
        // "Très " is 5 units, the emoji 2, the space 1.
        assert_eq!(r, 8..12);
        assert_eq!(byte_range(text, [r.start, r.end]), bien..text.len());
        assert_eq!(byte_range(text, [0, 5]), 0.."Très ".len());
        assert_eq!(byte_range(text, [0, 99]), 0..text.len());
    }

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into()]
    }

    #[wasm_bindgen_test]
    fn batch_formats_parse_with_labels_mapped() {
        let l = labels();
        let j = "{\"text\": \"good\", \"label\": \"positive\"}\n\n{\"review\": \"bad\", \"label\": 0}\n{\"text\": \"meh\"}\n";
        let items = parse_batch("x.jsonl", j, &l).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].label.as_deref(), Some("positive"));
        assert_eq!(items[1].label.as_deref(), Some("negative"));
        assert_eq!(items[2].label, None);

        let c = "review,sentiment\n\"good, really\",Positive\nbad,negative\n";
        let items = parse_batch("x.CSV", c, &l).unwrap();
        assert_eq!(items[0].text, "good, really");
        assert_eq!(items[0].label.as_deref(), Some("positive"));

        let t = "one\n\n  two  \n";
        let items = parse_batch("pasted", t, &l).unwrap();
        assert_eq!(
            items.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
    }

    #[wasm_bindgen_test]
    fn batch_errors_name_the_line() {
        let l = labels();
        let e = parse_batch("r.jsonl", "{\"text\": \"a\"}\n{oops\n", &l).unwrap_err();
        assert!(e.starts_with("r.jsonl:2: malformed JSON"), "{e}");
        let e = parse_batch("r.jsonl", "{\"text\": \"a\", \"label\": \"meh\"}\n", &l).unwrap_err();
        assert!(e.starts_with("r.jsonl:1: label `meh`"), "{e}");
        let e = parse_batch("r.csv", "body,label\nx,1\n", &l).unwrap_err();
        assert!(
            e.contains("r.csv:1: no text column") && e.contains("body"),
            "{e}"
        );
        let e = parse_batch("r.csv", "text,label\nx,positive\ny,positive,extra\n", &l).unwrap_err();
        assert!(e.starts_with("r.csv:3"), "{e}");
    }

    #[wasm_bindgen_test]
    fn csv_output_quotes_and_confusion_counts() {
        let rows = vec![
            BatchRow {
                text: "a \"quoted\", text".into(),
                expected: Some("positive".into()),
                label: "positive".into(),
                confidence: 0.9,
            },
            BatchRow {
                text: "b".into(),
                expected: Some("positive".into()),
                label: "negative".into(),
                confidence: 0.6,
            },
            BatchRow {
                text: "c".into(),
                expected: None,
                label: "negative".into(),
                confidence: 0.7,
            },
        ];
        let csv = results_csv(&rows);
        assert_eq!(
            csv.lines().nth(1),
            Some("\"a \"\"quoted\"\", text\",positive,positive,0.9000")
        );
        let (acc, m) = confusion(&rows, &labels()).unwrap();
        assert_eq!(acc, 0.5);
        assert_eq!(m, vec![vec![0, 0], vec![1, 1]]);
        assert!(confusion(&rows[2..], &labels()).is_none());
        assert_eq!(positive_index(&labels()), 1);
        assert_eq!(positive_index(&["pos".into(), "neg".into()]), 0);
        assert_eq!(capitalize("positive"), "Positive");
    }
}
