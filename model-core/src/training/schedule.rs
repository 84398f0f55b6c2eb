//! The learning-rate schedule: linear warmup, then linear decay to zero (the
//! `transformers` default for fine-tuning BERT).

/// Linear warmup to `lr` over `warmup` steps, then linear decay to zero at `total`.
pub fn learning_rate(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        lr * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// The learning-rate schedule of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Steps of linear warmup.
    pub warmup: usize,
    /// Steps of the whole run.
    pub total: usize,
}

impl Schedule {
    /// `peak` reached after `warmup_fraction` of `total` steps (rounded).
    pub fn new(peak: f64, warmup_fraction: f64, total: usize) -> Self {
        Self {
            peak,
            warmup: (warmup_fraction * total as f64).round() as usize,
            total,
        }
    }

    /// The learning rate of step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        learning_rate(self.peak, step, self.warmup, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let s = Schedule::new(1.0, 0.1, 100);
        assert_eq!(s.warmup, 10);
        assert!((s.at(0) - 0.1).abs() < 1e-12);
        assert!((s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(10) - 1.0).abs() < 1e-12);
        assert!(s.at(55) < s.at(10) && s.at(55) > 0.0);
        assert_eq!(s.at(100), 0.0);
        // No warmup: the first step runs at the peak.
        assert_eq!(Schedule::new(2.0, 0.0, 10).at(0), 2.0);
    }
}
