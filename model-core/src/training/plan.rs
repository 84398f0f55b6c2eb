//! Length-bucketed batches with a seeded, reproducible order.
//!
//! Each epoch shuffles the examples with `(seed, epoch)`, cuts the shuffled list into
//! pools of 50 batches, sorts each pool by length and cuts it into batches, then
//! shuffles the batches. Batches hold reviews of similar length, so dynamic padding
//! wastes little compute, while the order stays random. The plan depends only on the
//! lengths, the seed and the epoch, which is what lets `--resume` pick up at batch N.

use crate::input::split::SplitMix64;

/// Batches per sorting pool.
const POOL: usize = 50;

/// The batches (lists of example indices) of one epoch.
pub fn plan_epoch(
    lengths: &[usize],
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = SplitMix64(
        seed.wrapping_mul(0x9E37_79B9)
            .wrapping_add(epoch as u64 + 1),
    );
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * POOL) {
        pool.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(pool.chunks(batch_size).map(|c| c.to_vec()));
    }
    rng.shuffle(&mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_example_once_and_is_reproducible() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 500 + 3).collect();
        let a = plan_epoch(&lengths, 16, 42, 0);
        assert_eq!(a, plan_epoch(&lengths, 16, 42, 0));
        assert_ne!(a, plan_epoch(&lengths, 16, 42, 1));
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn batches_group_similar_lengths() {
        let lengths: Vec<usize> = (0..1600).map(|i| (i * 7919) % 512 + 2).collect();
        let plan = plan_epoch(&lengths, 16, 1, 0);
        let padded: usize = plan
            .iter()
            .map(|b| b.iter().map(|&i| lengths[i]).max().unwrap() * b.len())
            .sum();
        let real: usize = lengths.iter().sum();
        assert!(
            (padded as f64) < real as f64 * 1.1,
            "padding overhead {padded} vs {real}"
        );
    }
}
