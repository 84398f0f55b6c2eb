//! The page's text handling that does not touch the DOM, so it is unit-tested
//! natively: words and phrases for occlusion, batch input files, results as CSV,
//! accuracy and the confusion matrix.

use std::ops::Range;

/// Byte ranges of the whitespace-separated words of `text`.
pub fn word_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(s..text.len());
    }
    spans
}

/// Group consecutive words into at most `max_groups` phrases of equal word count,
/// so that explaining a long review costs a bounded number of forward passes.
pub fn phrases(words: &[Range<usize>], max_groups: usize) -> Vec<Range<usize>> {
    if words.is_empty() || max_groups == 0 {
        return Vec::new();
    }
    let per = words.len().div_ceil(max_groups);
    words
        .chunks(per)
        .map(|c| c[0].start..c[c.len() - 1].end)
        .collect()
}

/// `text` with `span` removed (occlusion: what the model says without it).
pub fn without(text: &str, span: &Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..span.start]);
    out.push(' ');
    out.push_str(&text[span.end..]);
    out
}

/// Byte ranges of `text` of about `target` bytes each, cut just after whitespace,
/// that cover it in order. BERT's tokenizer splits words at whitespace and
/// normalises character by character, so tokenizing the pieces one by one gives
/// the same tokens as tokenizing the whole text (a single "word" longer than
/// `target` is the one exception, and WordPiece maps such a word to `[UNK]` anyway).
pub fn pieces(text: &str, target: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while text.len() - start > target {
        let mut cut = start + target;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        // Back up to just after the last whitespace of the piece, if there is one.
        if let Some(ws) = text[start..cut].rfind(char::is_whitespace) {
            let ws = start + ws;
            let after = ws + text[ws..].chars().next().map_or(1, char::len_utf8);
            if after > start {
                cut = after;
            }
        }
        out.push(start..cut);
        start = cut;
    }
    if start < text.len() || out.is_empty() {
        out.push(start..text.len());
    }
    out
}

/// The byte ranges of a text that the model reads once it is truncated: the text
/// up to the end of the last head token, and from the start of the first tail
/// token. `offsets` are the content tokens' byte ranges; `head` and `tail` how many
/// of them are kept ([`model_core::Truncation::split`]).
#[allow(clippy::single_range_in_vec_init)] // one range = the whole text, on purpose
pub fn kept_windows(
    offsets: &[(usize, usize)],
    text_len: usize,
    head: usize,
    tail: usize,
) -> Vec<Range<usize>> {
    let n = offsets.len();
    if head + tail >= n {
        return vec![0..text_len];
    }
    let mut windows = Vec::new();
    if head > 0 {
        windows.push(0..offsets[head - 1].1);
    }
    if tail > 0 {
        windows.push(offsets[n - tail].0..text_len);
    }
    windows
}

/// One review to classify in batch mode, with its label when the input has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// The review.
    pub text: String,
    /// The expected label, already mapped onto the model's label names.
    pub label: Option<String>,
}

/// Map a label from a file onto the model's labels: a label name (any case),
/// or a class index such as `1`/`0`.
fn map_label(raw: &str, labels: &[String], at: &str) -> Result<String, String> {
    let raw = raw.trim();
    if let Some(l) = labels.iter().find(|l| l.eq_ignore_ascii_case(raw)) {
        return Ok(l.clone());
    }
    if let Ok(i) = raw.parse::<usize>()
        && i < labels.len()
    {
        return Ok(labels[i].clone());
    }
    Err(format!(
        "{at}: label `{raw}` is not one of {} (or a class index)",
        labels.join(", ")
    ))
}

/// Parse batch input. `name` decides the format: `.jsonl` (objects with `text` or
/// `review`, optional `label` or `sentiment`), `.csv` (a header naming those
/// columns), anything else one review per non-empty line. Errors name the line.
pub fn parse_batch(name: &str, content: &str, labels: &[String]) -> Result<Vec<BatchItem>, String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        parse_jsonl(name, content, labels)
    } else if lower.ends_with(".csv") {
        parse_csv(name, content, labels)
    } else {
        Ok(content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| BatchItem {
                text: l.to_string(),
                label: None,
            })
            .collect())
    }
}

fn parse_jsonl(name: &str, content: &str, labels: &[String]) -> Result<Vec<BatchItem>, String> {
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let at = format!("{name} line {}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{at}: not JSON ({e})"))?;
        let text = ["text", "review"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|t| t.as_str()))
            .ok_or_else(|| format!("{at}: no \"text\" (or \"review\") string"))?;
        let label = match ["label", "sentiment"].iter().find_map(|k| v.get(*k)) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(map_label(s, labels, &at)?),
            Some(other) => Some(map_label(&other.to_string(), labels, &at)?),
        };
        out.push(BatchItem {
            text: text.to_string(),
            label,
        });
    }
    Ok(out)
}

fn parse_csv(name: &str, content: &str, labels: &[String]) -> Result<Vec<BatchItem>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(content.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| format!("{name} line 1: {e}"))?
        .clone();
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let text_col = find(&["text", "review"]).ok_or_else(|| {
        format!(
            "{name} line 1: no `text` or `review` column (found: {})",
            header.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let label_col = find(&["label", "sentiment"]);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            format!("{name} line {line}: {e}")
        })?;
        let at = format!(
            "{name} line {}",
            record.position().map(|p| p.line()).unwrap_or(0)
        );
        let text = record.get(text_col).unwrap_or_default().to_string();
        let label = match label_col.and_then(|c| record.get(c)) {
            Some(l) if !l.trim().is_empty() => Some(map_label(l, labels, &at)?),
            _ => None,
        };
        out.push(BatchItem { text, label });
    }
    Ok(out)
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
    let mut matrix = vec![vec![0usize; labels.len()]; labels.len()];
    let mut n = 0;
    let mut correct = 0;
    for r in rows {
        let Some(expected) = &r.expected else {
            continue;
        };
        let (Some(e), Some(p)) = (
            labels.iter().position(|l| l == expected),
            labels.iter().position(|l| *l == r.label),
        ) else {
            continue;
        };
        matrix[e][p] += 1;
        n += 1;
        correct += usize::from(e == p);
    }
    (n > 0).then(|| (correct as f64 / n as f64, matrix))
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

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into()]
    }

    #[test]
    fn words_and_phrases_cover_the_text() {
        let t = "  A truly  great\nfilm! ";
        let w = word_spans(t);
        let words: Vec<&str> = w.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(words, ["A", "truly", "great", "film!"]);
        let p = phrases(&w, 2);
        let ps: Vec<&str> = p.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(ps, ["A truly", "great\nfilm!"]);
        assert_eq!(phrases(&w, 10).len(), 4);
        assert_eq!(
            without(t, &w[2]).split_whitespace().collect::<Vec<_>>(),
            ["A", "truly", "film!"]
        );
        assert!(phrases(&[], 5).is_empty());
        let multi = "café über naïve";
        let w = word_spans(multi);
        assert_eq!(&multi[w[2].clone()], "naïve");
    }

    #[test]
    fn pieces_cover_the_text_and_end_after_whitespace() {
        let t = "héllo wörld, a fine film ".repeat(50) + &"x".repeat(300) + " end";
        let p = pieces(&t, 64);
        assert_eq!(p.first().unwrap().start, 0);
        assert_eq!(p.last().unwrap().end, t.len());
        for w in p.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        // Every piece but the unsplittable run of x's ends just after whitespace.
        for r in &p[..p.len() - 1] {
            let piece = &t[r.clone()];
            assert!(
                piece.ends_with(' ') || piece.chars().all(|c| c == 'x'),
                "{piece:?}"
            );
            assert!(piece.len() <= 64 + 3);
        }
        assert_eq!(pieces("", 8), vec![0..0]);
        assert_eq!(pieces("short", 8), vec![0..5]);
    }

    #[test]
    fn kept_windows_follow_the_token_offsets() {
        // "aa bb cc dd ee": five tokens.
        let offsets = [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)];
        assert_eq!(kept_windows(&offsets, 14, 2, 1), vec![0..5, 12..14]);
        assert_eq!(kept_windows(&offsets, 14, 3, 0), vec![0..8]);
        assert_eq!(kept_windows(&offsets, 14, 0, 2), vec![9..14]);
        assert_eq!(kept_windows(&offsets, 14, 4, 1), vec![0..14]);
    }

    #[test]
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

    #[test]
    fn batch_errors_name_the_line() {
        let l = labels();
        let e = parse_batch("r.jsonl", "{\"text\": \"a\"}\n{oops\n", &l).unwrap_err();
        assert!(e.starts_with("r.jsonl line 2: not JSON"), "{e}");
        let e = parse_batch("r.jsonl", "{\"text\": \"a\", \"label\": \"meh\"}\n", &l).unwrap_err();
        assert!(e.contains("line 1") && e.contains("`meh`"), "{e}");
        let e = parse_batch("r.csv", "body,label\nx,1\n", &l).unwrap_err();
        assert!(
            e.contains("no `text` or `review` column") && e.contains("body"),
            "{e}"
        );
        let e = parse_batch("r.csv", "text,label\nx,positive\ny,positive,extra\n", &l).unwrap_err();
        assert!(e.starts_with("r.csv line 3"), "{e}");
    }

    #[test]
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
