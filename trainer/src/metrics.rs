//! Classification metrics from predicted probabilities and true labels: accuracy,
//! precision/recall/F1 (of `positive` for two classes, macro-averaged otherwise),
//! the confusion matrix, and calibration (expected calibration error and the
//! reliability bins, [`model_core::calibration`]).

use model_core::calibration::{Bin, Calibration, Reliability};
use serde::{Deserialize, Serialize};

/// An evaluation summary, as `trainer evaluate` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// F1 score.
    pub f1: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Expected calibration error over [`model_core::calibration::BINS`] confidence bins.
    pub ece: f64,
    /// Mean cross-entropy of the true labels.
    pub loss: f64,
    /// Number of examples.
    pub n: usize,
    /// Label names, in confusion-matrix order.
    pub labels: Vec<String>,
    /// The calibration the probabilities were computed with (`temperature` and
    /// `exponent` in the JSON).
    #[serde(flatten)]
    pub calibration: Calibration,
    /// Confidence against accuracy bin by bin: a reliability diagram's data.
    #[serde(default)]
    pub reliability: Vec<Bin>,
}

/// Accumulates (probabilities, true label) pairs.
#[derive(Debug, Clone)]
pub struct Accumulator {
    labels: Vec<String>,
    calibration: Calibration,
    confusion: Vec<Vec<usize>>,
    reliability: Reliability,
    loss_sum: f64,
    n: usize,
}

/// Summaries of the same predictions (`examples`: logits and true class) under each
/// of `calibrations`: one forward pass measures a model before and after calibration.
pub fn summaries(
    labels: &[String],
    examples: &[(Vec<f32>, usize)],
    calibrations: &[Calibration],
) -> Vec<Summary> {
    calibrations
        .iter()
        .map(|&c| {
            let mut acc = Accumulator::new(labels, c);
            for (logits, truth) in examples {
                acc.add(&c.probabilities(logits), *truth);
            }
            acc.summary()
        })
        .collect()
}

impl Accumulator {
    /// An empty accumulator for these labels, for probabilities computed under
    /// `calibration` (recorded in the summary).
    pub fn new(labels: &[String], calibration: Calibration) -> Self {
        let k = labels.len();
        Self {
            labels: labels.to_vec(),
            calibration,
            confusion: vec![vec![0; k]; k],
            reliability: Reliability::default(),
            loss_sum: 0.0,
            n: 0,
        }
    }

    /// Add one example.
    pub fn add(&mut self, probabilities: &[f32], truth: usize) {
        let (pred, &conf) = probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("non-empty probabilities");
        self.confusion[truth][pred] += 1;
        self.reliability.add(conf, pred == truth);
        self.loss_sum -= (probabilities[truth].max(1e-12) as f64).ln();
        self.n += 1;
    }

    /// Whether no example was added.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The summary so far.
    pub fn summary(&self) -> Summary {
        let k = self.labels.len();
        let n = self.n.max(1) as f64;
        let correct: usize = (0..k).map(|i| self.confusion[i][i]).sum();
        let prf = |c: usize| {
            let tp = self.confusion[c][c] as f64;
            let predicted: usize = (0..k).map(|t| self.confusion[t][c]).sum();
            let actual: usize = self.confusion[c].iter().sum();
            let p = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let r = if actual > 0 { tp / actual as f64 } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f)
        };
        let (precision, recall, f1) = if k == 2 {
            prf(1)
        } else {
            let all: Vec<_> = (0..k).map(prf).collect();
            let avg = |f: fn(&(f64, f64, f64)) -> f64| all.iter().map(f).sum::<f64>() / k as f64;
            (avg(|x| x.0), avg(|x| x.1), avg(|x| x.2))
        };
        Summary {
            accuracy: correct as f64 / n,
            f1,
            precision,
            recall,
            confusion: self.confusion.clone(),
            ece: self.reliability.ece(),
            loss: self.loss_sum / n,
            n: self.n,
            labels: self.labels.clone(),
            calibration: self.calibration,
            reliability: self.reliability.bins(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_metrics_by_hand() {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        let mut acc = Accumulator::new(&labels, Calibration::NONE);
        // truth, p(positive)
        for (truth, p) in [(1, 0.9), (1, 0.8), (1, 0.3), (0, 0.2), (0, 0.6), (0, 0.1)] {
            acc.add(&[1.0 - p, p], truth);
        }
        let s = acc.summary();
        assert_eq!(s.confusion, vec![vec![2, 1], vec![1, 2]]);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.n, 6);
        assert!(s.ece > 0.0 && s.ece < 1.0);
    }

    #[test]
    fn perfectly_calibrated_bins_have_zero_ece() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let mut acc = Accumulator::new(&labels, Calibration::NONE);
        // confidence 1.0 and always right
        for _ in 0..4 {
            acc.add(&[1.0, 0.0], 0);
        }
        assert!(acc.summary().ece.abs() < 1e-6);
    }

    #[test]
    fn a_temperature_changes_the_calibration_not_the_predictions() {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        let examples = vec![
            (vec![0.0, 4.0], 1),
            (vec![0.0, 3.0], 0),
            (vec![2.5, 0.0], 0),
            (vec![0.0, 1.0], 1),
        ];
        let calibrations = [Calibration::NONE, Calibration::temperature(2.0)];
        let [raw, scaled] = &summaries(&labels, &examples, &calibrations)[..] else {
            panic!("two summaries")
        };
        assert_eq!(raw.confusion, scaled.confusion);
        assert_eq!(raw.accuracy, 0.75);
        assert_eq!([raw.calibration, scaled.calibration], calibrations);
        assert_ne!(raw.ece, scaled.ece);
        assert_eq!(raw.reliability.iter().map(|b| b.count).sum::<usize>(), 4);
    }
}
