//! Classification metrics from predicted probabilities and true labels: accuracy,
//! precision/recall/F1 (of `positive` for two classes, macro-averaged otherwise),
//! the confusion matrix and the expected calibration error.

use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins for the expected calibration error.
pub const ECE_BINS: usize = 15;

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
    /// Expected calibration error over 15 confidence bins.
    pub ece: f64,
    /// Mean cross-entropy of the true labels.
    pub loss: f64,
    /// Number of examples.
    pub n: usize,
    /// Label names, in confusion-matrix order.
    pub labels: Vec<String>,
}

/// Accumulates (probabilities, true label) pairs.
#[derive(Debug, Clone)]
pub struct Accumulator {
    labels: Vec<String>,
    confusion: Vec<Vec<usize>>,
    /// Per bin: (count, sum of confidences, correct).
    bins: Vec<(usize, f64, usize)>,
    loss_sum: f64,
    n: usize,
}

impl Accumulator {
    /// An empty accumulator for these labels.
    pub fn new(labels: &[String]) -> Self {
        let k = labels.len();
        Self {
            labels: labels.to_vec(),
            confusion: vec![vec![0; k]; k],
            bins: vec![(0, 0.0, 0); ECE_BINS],
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
        let bin = ((conf as f64 * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        let b = &mut self.bins[bin];
        b.0 += 1;
        b.1 += conf as f64;
        b.2 += (pred == truth) as usize;
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
        let ece = self
            .bins
            .iter()
            .filter(|b| b.0 > 0)
            .map(|&(count, conf_sum, right)| {
                let c = count as f64;
                (c / n) * (right as f64 / c - conf_sum / c).abs()
            })
            .sum();
        Summary {
            accuracy: correct as f64 / n,
            f1,
            precision,
            recall,
            confusion: self.confusion.clone(),
            ece,
            loss: self.loss_sum / n,
            n: self.n,
            labels: self.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_metrics_by_hand() {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        let mut acc = Accumulator::new(&labels);
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
        let mut acc = Accumulator::new(&labels);
        // confidence 1.0 and always right
        for _ in 0..4 {
            acc.add(&[1.0, 0.0], 0);
        }
        assert!(acc.summary().ece.abs() < 1e-6);
    }
}
