//! Accuracy and the confusion matrix over (expected, predicted) class pairs: what
//! `trainer evaluate` reports and the page's batch mode shows.

/// Counts of `(expected, predicted)` class pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    /// `matrix[expected][predicted]`.
    pub matrix: Vec<Vec<usize>>,
}

impl Confusion {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            matrix: vec![vec![0; classes]; classes],
        }
    }

    /// Count one prediction.
    pub fn add(&mut self, expected: usize, predicted: usize) {
        self.matrix[expected][predicted] += 1;
    }

    /// How many predictions were counted.
    pub fn total(&self) -> usize {
        self.matrix.iter().flatten().sum()
    }

    /// The share on the diagonal; `None` before any prediction.
    pub fn accuracy(&self) -> Option<f64> {
        let total = self.total();
        let correct: usize = (0..self.matrix.len()).map(|i| self.matrix[i][i]).sum();
        (total > 0).then(|| correct as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs_and_the_diagonal() {
        let mut c = Confusion::new(2);
        assert_eq!(c.accuracy(), None);
        for (e, p) in [(0, 0), (1, 1), (1, 0), (1, 1)] {
            c.add(e, p);
        }
        assert_eq!(c.matrix, vec![vec![1, 0], vec![1, 2]]);
        assert_eq!(c.accuracy(), Some(0.75));
    }
}
