//! What the page keeps of a many-reviews run in its storage ([`super::store`]), and
//! what it computes from that (DOM-free, so unit-tested natively): one
//! [`RunRecord`] saying where the run stands, and a [`StoredRow`] per classified
//! review, written together a chunk at a time so that a reload finds them agreeing.

use model_core::Prediction;
use model_core::input::confusion::Confusion;
use model_core::output::{self, Origin};
use serde::{Deserialize, Serialize};

/// Reviews the model classifies per request to the worker; a chunk's rows and the
/// run's state are saved in one transaction.
pub const CHUNK: usize = 16;

/// Bad rows kept with their messages (the rest are only counted).
const SKIPPED_KEPT: usize = 20;

/// Where a run stands: what it reads, with which model, and how far it has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The file's name, or `pasted`.
    pub source: String,
    /// The file's size and last-modified time (ms), to know it when it is opened again.
    pub size: f64,
    pub modified: f64,
    /// The pasted reviews, so that a run of them can go on after a reload.
    pub pasted: Option<String>,
    /// The model the results came from (its description): results of two models are
    /// never mixed.
    pub model: String,
    /// Its labels, in class order.
    pub labels: Vec<String>,
    /// Reviews classified and saved.
    pub done: usize,
    /// The input line to go on from.
    pub next_line: usize,
    /// Whether the whole input has been classified.
    pub finished: bool,
    /// Seconds spent classifying, over every session of the run.
    pub seconds: f64,
    /// `confusion[expected][predicted]` over the rows that had a label.
    pub confusion: Vec<Vec<usize>>,
    /// Rows that could not be read, skipped: how many, and the first messages.
    pub skipped: usize,
    pub skipped_messages: Vec<String>,
}

impl RunRecord {
    /// A run of `source` not yet started.
    pub fn new(source: &str, size: f64, modified: f64, model: &str, labels: &[String]) -> Self {
        Self {
            source: source.to_string(),
            size,
            modified,
            pasted: None,
            model: model.to_string(),
            labels: labels.to_vec(),
            done: 0,
            next_line: 1,
            finished: false,
            seconds: 0.0,
            confusion: vec![vec![0; labels.len()]; labels.len()],
            skipped: 0,
            skipped_messages: Vec::new(),
        }
    }

    /// Whether `fresh`, a run not yet started, is this run going on: the same input
    /// (a file's name, size and date; pasted reviews' text) and the same model, and
    /// this run not finished.
    pub fn continues(&self, fresh: &RunRecord) -> bool {
        !self.finished
            && self.source == fresh.source
            && self.size == fresh.size
            && self.modified == fresh.modified
            && self.pasted == fresh.pasted
            && self.model == fresh.model
    }

    /// Count a row of the input that could not be read.
    pub fn skip(&mut self, message: String) {
        self.skipped += 1;
        if self.skipped_messages.len() < SKIPPED_KEPT {
            self.skipped_messages.push(message);
        }
    }

    /// Count classified rows into the totals (and the confusion matrix, for those
    /// with a label); `next_line` moves past the last.
    pub fn add(&mut self, rows: &[StoredRow]) {
        for r in rows {
            let labels = &self.labels;
            let find = |name: &str| labels.iter().position(|l| l == name);
            if let Some(e) = r.expected.as_deref().and_then(find)
                && let Some(p) = find(&r.label)
            {
                self.confusion[e][p] += 1;
            }
            self.next_line = self.next_line.max(r.line + 1);
        }
        self.done += rows.len();
    }

    /// Accuracy on the labelled rows, when some had a label.
    pub fn accuracy(&self) -> Option<f64> {
        Confusion {
            matrix: self.confusion.clone(),
        }
        .accuracy()
    }
}

/// One classified review as saved: its input line and id, its label if the input had
/// one, the answer, and the text (for the results file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRow {
    pub line: usize,
    pub id: Option<String>,
    pub expected: Option<String>,
    pub label: String,
    pub confidence: f32,
    /// In the model's label order.
    pub probabilities: Vec<f32>,
    pub tokens: usize,
    pub truncated: bool,
    pub text: String,
}

impl StoredRow {
    /// A review and its answer.
    pub fn new(row: &super::Review, p: Prediction) -> Self {
        Self {
            line: row.line,
            id: row.id.clone(),
            expected: row.expected.clone(),
            label: p.label,
            confidence: p.confidence,
            probabilities: p.probabilities.into_iter().map(|(_, x)| x).collect(),
            tokens: p.tokens,
            truncated: p.truncated,
            text: row.text.clone(),
        }
    }

    /// Its row of the results CSV ([`csv_header`]).
    pub fn csv(&self, labels: &[String]) -> String {
        let prediction = Prediction {
            label: self.label.clone(),
            confidence: self.confidence,
            probabilities: labels
                .iter()
                .cloned()
                .zip(self.probabilities.iter().copied())
                .collect(),
            tokens: self.tokens,
            truncated: self.truncated,
        };
        let origin = Origin {
            line: self.line,
            id: self.id.as_deref(),
        };
        let expected = self.expected.as_deref().unwrap_or("");
        output::csv_row(origin, &prediction, &[expected, &self.text])
    }
}

/// The results CSV's header: `trainer predict --format csv`'s columns, then the
/// expected label and the review.
pub fn csv_header(labels: &[String]) -> String {
    output::csv_header(labels, &["expected", "text"])
}

/// How far a run has got and how long the rest should take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Reviews classified.
    pub done: usize,
    /// Reviews in the input: known once it has all been read, else estimated from
    /// the bytes read so far per review.
    pub total: usize,
    /// Whether `total` is exact.
    pub exact: bool,
    /// Reviews per second in this session.
    pub rate: f64,
    /// Seconds left at that rate.
    pub left: Option<f64>,
}

/// From what has been read (`seen` rows in `read` of `size` bytes, the input read to
/// its end or not) and what this session has classified (`classified` in `seconds`).
pub fn estimate(
    done: usize,
    seen: usize,
    read: f64,
    size: f64,
    all_read: bool,
    classified: usize,
    seconds: f64,
) -> Estimate {
    let total = if all_read || read <= 0.0 || seen == 0 {
        seen
    } else {
        (seen as f64 * size / read).round() as usize
    }
    .max(done);
    let rate = if seconds > 0.0 {
        classified as f64 / seconds
    } else {
        0.0
    };
    let left = (rate > 0.0).then(|| (total - done) as f64 / rate);
    Estimate {
        done,
        total,
        exact: all_read,
        rate,
        left,
    }
}

/// "12 s", "4 min", "1 h 05 min".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into()]
    }

    fn row(line: usize, expected: Option<&str>, label: &str) -> StoredRow {
        StoredRow {
            line,
            id: None,
            expected: expected.map(String::from),
            label: label.into(),
            confidence: 0.75,
            probabilities: if label == "positive" {
                vec![0.25, 0.75]
            } else {
                vec![0.75, 0.25]
            },
            tokens: 3,
            truncated: false,
            text: format!("review {line}"),
        }
    }

    #[wasm_bindgen_test]
    fn a_run_counts_rows_and_goes_on_after_the_last() {
        let mut run = RunRecord::new("r.jsonl", 10.0, 5.0, "m", &labels());
        run.add(&[
            row(2, Some("positive"), "positive"),
            row(4, Some("positive"), "negative"),
            row(7, None, "negative"),
        ]);
        assert_eq!((run.done, run.next_line), (3, 8));
        assert_eq!(run.confusion, vec![vec![0, 0], vec![1, 1]]);
        assert_eq!(run.accuracy(), Some(0.5));
        let fresh = |size, model| RunRecord::new("r.jsonl", size, 5.0, model, &labels());
        assert!(run.continues(&fresh(10.0, "m")));
        assert!(!run.continues(&fresh(11.0, "m")), "another file");
        assert!(!run.continues(&fresh(10.0, "other model")));
        run.finished = true;
        assert!(!run.continues(&fresh(10.0, "m")), "nothing left to do");
        for i in 0..30 {
            run.skip(format!("r.jsonl:{i}: bad"));
        }
        assert_eq!((run.skipped, run.skipped_messages.len()), (30, 20));
        assert_eq!(
            RunRecord::new("p", 0.0, 0.0, "m", &labels()).accuracy(),
            None
        );
    }

    #[wasm_bindgen_test]
    fn results_csv_has_the_trainers_columns_then_expected_and_text() {
        assert_eq!(
            csv_header(&labels()),
            "line,id,label,confidence,p_negative,p_positive,tokens,truncated,expected,text\n"
        );
        let mut r = row(3, Some("positive"), "positive");
        r.text = "so \"good\", really".into();
        assert_eq!(
            r.csv(&labels()),
            "3,,positive,0.75,0.25,0.75,3,false,positive,\"so \"\"good\"\", really\"\n"
        );
    }

    #[wasm_bindgen_test]
    fn estimates_scale_the_rows_read_to_the_file() {
        // 100 rows in the first quarter of the file, 40 classified in 10 s.
        let e = estimate(40, 100, 250.0, 1000.0, false, 40, 10.0);
        assert_eq!((e.total, e.exact, e.rate), (400, false, 4.0));
        assert_eq!(e.left, Some(90.0));
        let e = estimate(40, 100, 1000.0, 1000.0, true, 20, 10.0);
        assert_eq!((e.total, e.exact, e.left), (100, true, Some(30.0)));
        assert_eq!(estimate(0, 0, 0.0, 0.0, false, 0, 0.0).left, None);
        assert_eq!(duration(12.4), "12 s");
        assert_eq!(duration(250.0), "4 min");
        assert_eq!(duration(3900.0), "1 h 05 min");
    }
}
