//! Labels as files write them (`positive`, `neg`, `1`, `0`) turned into class indices:
//! for training, the classes come from the data; for evaluation and the page, each
//! label must be one of the model's.

use std::collections::BTreeSet;

use super::{Example, LabeledData, Row, at};
use crate::error::{Error, Result};

/// A label as it appears in the data: a name, or a 0/1-style index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RawLabel {
    /// A class index.
    Index(u64),
    /// A label name.
    Name(String),
}

/// The largest numeric label read as a class index: a classifier with thousands of
/// classes is not what a numeric column means (found by fuzzing the readers).
pub const MAX_CLASS_INDEX: u64 = 1000;

/// IMDb's label names: 0 = negative, 1 = positive.
pub fn sentiment_labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

/// A label cell: an integer is an index, anything else a name; empty is none.
pub fn parse_label(value: &str) -> Option<RawLabel> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    Some(match v.parse::<u64>() {
        Ok(i) => RawLabel::Index(i),
        Err(_) => RawLabel::Name(v.to_string()),
    })
}

/// Labelled rows into a dataset, for training: integer labels index
/// `negative`/`positive` (0/1) or `0..=max`; names are kept, ordered `negative`,
/// `positive` when those are the names, else sorted. Every row must have a label.
pub fn index_labels(rows: Vec<Row>, source: &str) -> Result<LabeledData> {
    let mut raw = Vec::with_capacity(rows.len());
    for r in rows {
        let label = r
            .label
            .ok_or_else(|| Error::input(at(source, r.line), "missing or invalid label"))?;
        raw.push((r.text, label, r.line));
    }
    let names: BTreeSet<&String> = raw
        .iter()
        .filter_map(|(_, l, _)| match l {
            RawLabel::Name(n) => Some(n),
            RawLabel::Index(_) => None,
        })
        .collect();
    let first_index = raw.iter().find_map(|(_, l, line)| match l {
        RawLabel::Index(i) => Some((*i, *line)),
        RawLabel::Name(_) => None,
    });
    let labels: Vec<String> = match (names.is_empty(), first_index) {
        (false, Some((_, line))) => {
            return Err(Error::input(
                at(source, line),
                "mixes numeric and named labels",
            ));
        }
        (false, None) => {
            let mut v: Vec<String> = names.into_iter().cloned().collect();
            if v.iter().any(|n| n == "negative") && v.iter().any(|n| n == "positive") {
                v.retain(|n| n != "negative" && n != "positive");
                v.splice(0..0, sentiment_labels());
            }
            v
        }
        (true, _) => {
            let index = |l: &RawLabel| match l {
                RawLabel::Index(i) => Some(*i),
                RawLabel::Name(_) => None,
            };
            let max = raw
                .iter()
                .filter_map(|(_, l, _)| index(l))
                .max()
                .unwrap_or(1);
            // The first row with the largest label, as a reader would look for it.
            let line = raw
                .iter()
                .find(|(_, l, _)| index(l) == Some(max))
                .map_or(0, |r| r.2);
            if max > MAX_CLASS_INDEX {
                return Err(Error::input(
                    at(source, line),
                    format!(
                        "label {max} is not a class index (at most {MAX_CLASS_INDEX}); \
                         use label names for more classes"
                    ),
                ));
            }
            if max <= 1 {
                sentiment_labels()
            } else {
                (0..=max).map(|i| i.to_string()).collect()
            }
        }
    };
    let examples = raw
        .into_iter()
        .map(|(text, l, _)| Example {
            text,
            label: match l {
                RawLabel::Index(i) => i as usize,
                RawLabel::Name(n) => labels.iter().position(|x| *x == n).expect("name collected"),
            },
        })
        .collect();
    Ok(LabeledData { examples, labels })
}

/// Map `data` onto a model's label names (for evaluation): every label in the data
/// must be one the model knows.
pub fn align_labels(
    data: LabeledData,
    model_labels: &[String],
    source: &str,
) -> Result<LabeledData> {
    if data.labels == model_labels {
        return Ok(data);
    }
    let map: Vec<usize> = data
        .labels
        .iter()
        .map(|l| {
            model_labels.iter().position(|m| m == l).ok_or_else(|| {
                Error::input(
                    source,
                    format!(
                        "label `{l}` is not one the model knows ({})",
                        model_labels.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    Ok(LabeledData {
        examples: data
            .examples
            .into_iter()
            .map(|e| Example {
                label: map[e.label],
                text: e.text,
            })
            .collect(),
        labels: model_labels.to_vec(),
    })
}

/// One label onto a model's labels (the page's batch files): a label name in any
/// case, or a class index.
pub fn map_label(raw: &RawLabel, labels: &[String], at: &str) -> Result<String> {
    let found = match raw {
        RawLabel::Name(n) => labels.iter().find(|l| l.eq_ignore_ascii_case(n)),
        RawLabel::Index(i) => usize::try_from(*i).ok().and_then(|i| labels.get(i)),
    };
    found.cloned().ok_or_else(|| {
        let shown = match raw {
            RawLabel::Name(n) => n.clone(),
            RawLabel::Index(i) => i.to_string(),
        };
        Error::input(
            at,
            format!(
                "label `{shown}` is not one of {} and not a class index (0 to {})",
                labels.join(", "),
                labels.len().saturating_sub(1)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str, label: &str, line: usize) -> Row {
        Row {
            text: text.into(),
            label: parse_label(label),
            line,
            id: None,
        }
    }

    #[test]
    fn names_put_negative_and_positive_first_and_indices_count_classes() {
        let d = index_labels(vec![row("a", "positive", 1), row("b", "negative", 2)], "f").unwrap();
        assert_eq!(d.labels, sentiment_labels());
        assert_eq!(d.examples[0].label, 1);
        let d = index_labels(vec![row("a", "2", 1), row("b", "0", 2)], "f").unwrap();
        assert_eq!(d.labels, vec!["0", "1", "2"]);
        let err = index_labels(vec![row("a", "1", 1), row("b", "good", 2)], "f.csv").unwrap_err();
        assert_eq!(err.to_string(), "f.csv:1: mixes numeric and named labels");
        let err = index_labels(vec![row("a", "5000", 7)], "f").unwrap_err();
        assert!(err.to_string().starts_with("f:7: label 5000"), "{err}");
        let err = index_labels(vec![row("a", " ", 3)], "f").unwrap_err();
        assert_eq!(err.to_string(), "f:3: missing or invalid label");
    }

    #[test]
    fn the_page_maps_names_in_any_case_and_indices() {
        let labels = sentiment_labels();
        let name = RawLabel::Name("POSITIVE".into());
        assert_eq!(map_label(&name, &labels, "x:1").unwrap(), "positive");
        assert_eq!(
            map_label(&RawLabel::Index(0), &labels, "x:1").unwrap(),
            "negative"
        );
        let err = map_label(&RawLabel::Index(7), &labels, "x:2").unwrap_err();
        assert!(err.to_string().starts_with("x:2: label `7`"), "{err}");
    }
}
