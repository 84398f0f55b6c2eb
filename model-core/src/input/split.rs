//! The seeded randomness of the data: a PRNG whose stream is fixed for a seed on every
//! machine and every version of every crate, and the stratified held-out split made
//! with it. The trainer and the page split and shuffle with these, so the same seed
//! holds out the same examples in both.

use super::{Example, LabeledData};

/// A small deterministic PRNG (SplitMix64): the data order must be the same for a
/// seed on every machine and every version of every crate, or resume breaks.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Split off a seeded, stratified validation set of `fraction` of `data`.
pub fn split_validation(data: LabeledData, fraction: f64, seed: u64) -> (LabeledData, LabeledData) {
    let mut rng = SplitMix64(seed ^ 0x005E_ED0F_5A11);
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for class in 0..data.labels.len() {
        let mut idx: Vec<&Example> = data.examples.iter().filter(|e| e.label == class).collect();
        rng.shuffle(&mut idx);
        let n_valid = ((idx.len() as f64) * fraction).round() as usize;
        valid.extend(idx[..n_valid].iter().map(|e| (*e).clone()));
        train.extend(idx[n_valid..].iter().map(|e| (*e).clone()));
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut valid);
    (
        LabeledData {
            examples: train,
            labels: data.labels.clone(),
        },
        LabeledData {
            examples: valid,
            labels: data.labels,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_reproducible() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64(7).shuffle(&mut a);
        SplitMix64(7).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn the_split_is_stratified_and_seeded() {
        let examples = (0..100)
            .map(|i| Example {
                text: format!("text {i}"),
                label: usize::from(i % 4 == 0),
            })
            .collect();
        let data = LabeledData {
            examples,
            labels: vec!["negative".into(), "positive".into()],
        };
        let (train, valid) = split_validation(data.clone(), 0.2, 3);
        assert_eq!((train.examples.len(), valid.examples.len()), (80, 20));
        assert_eq!(valid.examples.iter().filter(|e| e.label == 1).count(), 5);
        assert_eq!(split_validation(data.clone(), 0.2, 3).1, valid);
        assert_ne!(split_validation(data, 0.2, 4).1, valid);
    }
}
