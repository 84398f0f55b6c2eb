//! Calibrated confidence: how a model's logits become the probabilities it shows, how
//! that mapping is fitted, and how calibration is measured (expected calibration error
//! over confidence bins, and the bins behind a reliability diagram).
//!
//! The mapping is temperature scaling with one more, optional, degree of freedom.
//! Each logit is taken relative to the row's mean, raised to a power `b` keeping its
//! sign, and divided by a temperature `T` before the softmax:
//! `p = softmax(sign(z − z̄)·|z − z̄|^b / T)`. With `b = 1` that is plain temperature
//! scaling (the shift by the mean does not change a softmax). Both steps are
//! increasing functions of each logit, so the largest logit stays the largest and the
//! predicted label and the accuracy never change; only how sure the model says it is.
//!
//! Why the exponent: a BERT classifier's logits come from a tanh pooler and saturate,
//! so most reviews sit at nearly the same large margin whether the model is right 99%
//! or 90% of the time there. Dividing by one number cannot pull those apart from the
//! few borderline ones; a power above 1 can, and is fitted only when the validation
//! data is large enough to pin down two numbers ([`MIN_FOR_EXPONENT`]).
//!
//! The rule lives here only, so that `trainer predict`, `trainer evaluate`, the page
//! and the JS library, which all go through [`Calibration::probabilities`], show the
//! same numbers for the same model.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The temperatures [`Calibration::fit`] searches. Outside them a model is either
/// broken or its validation data is too small to say anything. Wide, because with an
/// exponent above 1 the transformed logits, and so the temperature, grow with it.
pub const FIT_RANGE: (f32, f32) = (0.01, 1000.0);

/// The exponents [`Calibration::fit`] tries, in steps of 0.1.
pub const EXPONENT_RANGE: (f32, f32) = (0.5, 6.0);

/// Fewer validation examples than this fit a temperature only: a second number
/// fitted on a handful of examples describes the handful, not the model.
pub const MIN_FOR_EXPONENT: usize = 500;

/// Equal-width confidence bins for [`Reliability`].
pub const BINS: usize = 15;

fn one() -> f32 {
    1.0
}

/// How a model's logits become probabilities. Stored flattened (`"temperature"`,
/// `"exponent"`) in `inference.json` and the web manifest; files written before
/// calibration existed, or before the exponent did, read as 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What the (transformed) logits are divided by before the softmax.
    #[serde(default = "one")]
    pub temperature: f32,
    /// The power each centred logit is raised to (keeping its sign); 1 for plain
    /// temperature scaling.
    #[serde(default = "one")]
    pub exponent: f32,
}

impl Default for Calibration {
    fn default() -> Self {
        Self::NONE
    }
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.exponent == 1.0 {
            write!(f, "temperature {:.3}", self.temperature)
        } else {
            write!(
                f,
                "temperature {:.3}, exponent {:.2}",
                self.temperature, self.exponent
            )
        }
    }
}

impl Calibration {
    /// A model never calibrated: its logits used as they are.
    pub const NONE: Self = Self {
        temperature: 1.0,
        exponent: 1.0,
    };

    /// Plain temperature scaling by `temperature`.
    pub fn temperature(temperature: f32) -> Self {
        Self {
            temperature,
            exponent: 1.0,
        }
    }

    /// Whether this leaves the logits as they are.
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// `self` when both numbers are finite and above zero; else an error naming
    /// `source`, the file or flag it came from.
    pub fn check(self, source: &str) -> Result<Self> {
        for (name, v) in [
            ("temperature", self.temperature),
            ("exponent", self.exponent),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(
                    source,
                    format!("{name} {v} is not a positive number"),
                ));
            }
        }
        Ok(self)
    }

    /// The logits the softmax sees, in f64.
    fn scaled(&self, logits: &[f32]) -> Vec<f64> {
        let beta = 1.0 / f64::from(self.temperature);
        transformed(logits, self.exponent)
            .into_iter()
            .map(|w| beta * w)
            .collect()
    }

    /// The calibrated probabilities of one row of logits, computed in f64 so that a
    /// confident model's small probabilities keep their digits.
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f32> {
        let z = self.scaled(logits);
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.iter().map(|e| (e / sum) as f32).collect()
    }

    /// Mean negative log-likelihood of the true labels of `examples` (logits, true
    /// class).
    pub fn nll(&self, examples: &[(Vec<f32>, usize)]) -> f64 {
        let total: f64 = examples
            .iter()
            .map(|(z, truth)| {
                let w = self.scaled(z);
                log_sum_exp(&w, 1.0) - w[*truth]
            })
            .sum();
        total / examples.len().max(1) as f64
    }

    /// The calibration that minimises the mean negative log-likelihood of `examples`
    /// (logits, true class): the best temperature for each exponent in
    /// [`EXPONENT_RANGE`] (the exponent 1 alone below [`MIN_FOR_EXPONENT`] examples),
    /// and of those the best.
    ///
    /// Data on which the model is always right has no optimum (the loss keeps falling
    /// as `T` shrinks) and says nothing about how sure it should be: it stays
    /// [`Calibration::NONE`] then, as it does with no data.
    pub fn fit(examples: &[(Vec<f32>, usize)]) -> Self {
        let always_right = examples.iter().all(|(z, truth)| {
            z.iter()
                .enumerate()
                .all(|(i, &v)| i == *truth || v < z[*truth])
        });
        if always_right {
            return Self::NONE;
        }
        let mut best = Self::fit_temperature(examples, 1.0);
        if examples.len() < MIN_FOR_EXPONENT {
            return best;
        }
        let mut best_nll = best.nll(examples);
        let (low, high) = EXPONENT_RANGE;
        let steps = ((high - low) * 10.0).round() as usize;
        for k in 0..=steps {
            let exponent = low + k as f32 * 0.1;
            let c = Self::fit_temperature(examples, exponent);
            let nll = c.nll(examples);
            if nll < best_nll {
                (best, best_nll) = (c, nll);
            }
        }
        best
    }

    /// The temperature, within [`FIT_RANGE`], that minimises the loss at `exponent`.
    ///
    /// With `β = 1/T` the loss is convex in `β` (a log-sum-exp minus a linear term),
    /// so its derivative, the mean over examples of `E_softmax(βw)[w] − w_truth`,
    /// rises with `β` and has one zero: bisection on it (in `ln β`) finds the optimum
    /// without a step size to tune.
    pub fn fit_temperature(examples: &[(Vec<f32>, usize)], exponent: f32) -> Self {
        let rows: Vec<(Vec<f64>, usize)> = examples
            .iter()
            .map(|(z, truth)| (transformed(z, exponent), *truth))
            .collect();
        let slope = |beta: f64| -> f64 {
            let total: f64 = rows
                .iter()
                .map(|(w, truth)| {
                    let lse = log_sum_exp(w, beta);
                    let expected: f64 = w.iter().map(|&v| v * (beta * v - lse).exp()).sum();
                    expected - w[*truth]
                })
                .sum();
            total / rows.len().max(1) as f64
        };
        let at = |temperature: f32| Self {
            temperature,
            exponent,
        };
        let (t_low, t_high) = FIT_RANGE;
        // ln β from ln(1/T_high) to ln(1/T_low).
        let (mut lo, mut hi) = (
            (1.0 / f64::from(t_high)).ln(),
            (1.0 / f64::from(t_low)).ln(),
        );
        if slope(lo.exp()) >= 0.0 {
            return at(t_high);
        }
        if slope(hi.exp()) <= 0.0 {
            return at(t_low);
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if slope(mid.exp()) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        at((1.0 / (0.5 * (lo + hi)).exp()) as f32)
    }
}

/// `sign(z − z̄)·|z − z̄|^exponent` for each logit of a row.
fn transformed(logits: &[f32], exponent: f32) -> Vec<f64> {
    let mean = logits.iter().map(|&z| f64::from(z)).sum::<f64>() / logits.len().max(1) as f64;
    let b = f64::from(exponent);
    logits
        .iter()
        .map(|&z| {
            let c = f64::from(z) - mean;
            if b == 1.0 {
                c
            } else {
                c.signum() * c.abs().powf(b)
            }
        })
        .collect()
}

fn log_sum_exp(w: &[f64], beta: f64) -> f64 {
    let max = w
        .iter()
        .map(|&v| beta * v)
        .fold(f64::NEG_INFINITY, f64::max);
    max + w.iter().map(|&v| (beta * v - max).exp()).sum::<f64>().ln()
}

/// One confidence bin of a reliability diagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Predictions whose confidence fell in this bin.
    pub count: usize,
    /// Their mean confidence (0 for an empty bin).
    pub confidence: f64,
    /// The fraction of them that were right (0 for an empty bin).
    pub accuracy: f64,
}

/// Confidence against accuracy over [`BINS`] equal-width bins, accumulated one
/// prediction at a time (so any amount of data is measured in bounded memory).
#[derive(Debug, Clone)]
pub struct Reliability {
    /// Per bin: (count, sum of confidences, correct).
    sums: Vec<(usize, f64, usize)>,
}

impl Default for Reliability {
    fn default() -> Self {
        Self {
            sums: vec![(0, 0.0, 0); BINS],
        }
    }
}

impl Reliability {
    /// Add a prediction: its confidence (the top probability) and whether it was right.
    pub fn add(&mut self, confidence: f32, correct: bool) {
        let c = f64::from(confidence);
        let bin = ((c * BINS as f64) as usize).min(BINS - 1);
        let s = &mut self.sums[bin];
        s.0 += 1;
        s.1 += c;
        s.2 += usize::from(correct);
    }

    /// Predictions added.
    pub fn count(&self) -> usize {
        self.sums.iter().map(|s| s.0).sum()
    }

    /// The bins, lowest confidence first.
    pub fn bins(&self) -> Vec<Bin> {
        self.sums
            .iter()
            .map(|&(count, conf, right)| {
                let n = count.max(1) as f64;
                Bin {
                    count,
                    confidence: conf / n,
                    accuracy: right as f64 / n,
                }
            })
            .collect()
    }

    /// Expected calibration error: the gap between confidence and accuracy in each
    /// bin, weighted by the bin's share of the predictions.
    pub fn ece(&self) -> f64 {
        let n = self.count().max(1) as f64;
        self.bins()
            .iter()
            .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_a_softmax_of_the_scaled_logits() {
        let p = Calibration::NONE.probabilities(&[2.0, 0.0]);
        let expected = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((f64::from(p[0]) - expected).abs() < 1e-7);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6);
        // T = 2 halves the gap between the logits; the order stays.
        let q = Calibration::temperature(2.0).probabilities(&[2.0, 0.0]);
        let expected = 1.0 / (1.0 + (-1.0f64).exp());
        assert!((f64::from(q[0]) - expected).abs() < 1e-7);
        // Exponent 2: the centred logits ±1 stay ±1, ±2 become ±4.
        let c = Calibration {
            temperature: 1.0,
            exponent: 2.0,
        };
        let r = c.probabilities(&[2.0, 0.0]);
        let expected = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((f64::from(r[0]) - expected).abs() < 1e-7, "{r:?}");
        let r = c.probabilities(&[4.0, 0.0]);
        let expected = 1.0 / (1.0 + (-8.0f64).exp());
        assert!((f64::from(r[0]) - expected).abs() < 1e-7, "{r:?}");
        // Large logits do not overflow and keep the small probability's digits.
        let r = Calibration::NONE.probabilities(&[100.0, 80.0]);
        assert!((f64::from(r[1]) - (-20.0f64).exp()).abs() < 1e-15, "{r:?}");
    }

    /// Binary examples whose margins are drawn evenly and whose labels are right
    /// exactly as often as `true_p(margin)` says.
    fn drawn(n: usize, true_p: impl Fn(f64) -> f64) -> Vec<(Vec<f32>, usize)> {
        let levels = 20;
        (0..n)
            .map(|i| {
                let margin = 0.25 + (i % levels) as f32 * 0.2;
                let rank = (i / levels) as f64 / (n / levels) as f64 + 0.5 / (n / levels) as f64;
                let truth = usize::from(rank < true_p(f64::from(margin)));
                (vec![0.0, margin], truth)
            })
            .collect()
    }

    #[test]
    fn the_fitted_temperature_undoes_a_known_overconfidence() {
        // Calibrated margins m scaled by 3 make the model three times over-confident;
        // the fit must find T close to 3 (400 examples: a temperature only).
        let examples = drawn(400, |m| 1.0 / (1.0 + (-m / 3.0).exp()));
        let c = Calibration::fit(&examples);
        assert_eq!(c.exponent, 1.0);
        assert!((c.temperature - 3.0).abs() < 0.3, "fitted {c}");
        let t = c.temperature;
        let nll = |t| Calibration::temperature(t).nll(&examples);
        assert!(nll(t) < nll(1.0));
        assert!(nll(t) <= nll(t * 1.05));
        assert!(nll(t) <= nll(t / 1.05));
    }

    #[test]
    fn saturated_margins_get_an_exponent() {
        // The truth is sigmoid(0.05·m³): nearly a coin toss at small margins, sure at
        // large ones. No temperature fits both ends; an exponent near 3 does.
        let truth = |m: f64| 1.0 / (1.0 + (-0.05 * m.powi(3)).exp());
        let examples = drawn(4000, truth);
        let c = Calibration::fit(&examples);
        assert!((c.exponent - 3.0).abs() < 0.35, "fitted {c}");
        let by_temperature = Calibration::fit_temperature(&examples, 1.0);
        assert!(
            c.nll(&examples) < by_temperature.nll(&examples) - 0.005,
            "{c}"
        );
        let ece = |c: Calibration| {
            let mut r = Reliability::default();
            for (z, t) in &examples {
                let p = c.probabilities(z);
                r.add(p[0].max(p[1]), usize::from(p[1] > p[0]) == *t);
            }
            r.ece()
        };
        assert!(
            ece(c) < 0.5 * ece(by_temperature),
            "{} {}",
            ece(c),
            ece(by_temperature)
        );
        // The predicted class never changes.
        for (z, _) in &examples {
            let p = c.probabilities(z);
            assert!(p[1] > p[0], "{z:?} {p:?}");
        }
    }

    #[test]
    fn separable_data_and_no_data_leave_the_model_uncalibrated() {
        let all_right = vec![(vec![0.0, 5.0], 1usize); 10];
        assert_eq!(Calibration::fit(&all_right), Calibration::NONE);
        assert_eq!(Calibration::fit(&[]), Calibration::NONE);
        let all_wrong = vec![(vec![0.0, 5.0], 0usize); 10];
        assert_eq!(Calibration::fit(&all_wrong).temperature, FIT_RANGE.1);
    }

    #[test]
    fn ece_is_the_weighted_gap_between_confidence_and_accuracy() {
        let mut r = Reliability::default();
        // Four predictions at 0.95, three right: a gap of 0.2 on all of them.
        for right in [true, true, true, false] {
            r.add(0.95, right);
        }
        assert!((r.ece() - 0.2).abs() < 1e-6, "{}", r.ece());
        let bins = r.bins();
        assert_eq!(bins[BINS - 1].count, 4);
        assert!((bins[BINS - 1].accuracy - 0.75).abs() < 1e-12);
        assert!((bins[BINS - 1].confidence - 0.95).abs() < 1e-6);
        // A confidence of exactly 1 lands in the last bin, not past it.
        r.add(1.0, true);
        assert_eq!(r.bins()[BINS - 1].count, 5);
        let mut perfect = Reliability::default();
        for _ in 0..4 {
            perfect.add(1.0, true);
        }
        assert!(perfect.ece().abs() < 1e-12);
    }

    #[test]
    fn bad_calibrations_are_refused_naming_the_source() {
        for v in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            for c in [
                Calibration::temperature(v),
                Calibration {
                    temperature: 1.0,
                    exponent: v,
                },
            ] {
                let e = c.check("model/inference.json").unwrap_err().to_string();
                assert!(e.contains("model/inference.json"), "{e}");
            }
        }
        assert_eq!(
            Calibration::temperature(1.5)
                .check("x")
                .unwrap()
                .temperature,
            1.5
        );
    }
}
