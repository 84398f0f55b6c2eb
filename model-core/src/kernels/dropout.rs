//! Dropout masks from a counter-based hash, in parallel.
//!
//! Why not burn's `Dropout` on flex: it draws every mask element from ChaCha20 on one
//! thread, a sixth of a training step's time on two cores (profiled). Here each element
//! is a hash of (key, index): independent of thread count and chunking, regenerated
//! from the key in the backward pass instead of stored, and the key comes from burn's
//! seeded stream, so a run stays a function of its seed and resumes exactly.

use burn::prelude::*;

use super::simd::{for_chunks, multiversion};

/// A dropout-mask key: two numbers from burn's seeded stream on `device`'s inner
/// backend, so masks follow the run's seed (and its per-batch reseeding on resume).
pub fn dropout_key(device: &Device) -> u64 {
    Tensor::<1>::random(
        [2],
        burn::tensor::Distribution::Default,
        &device.clone().inner(),
    )
    .into_data()
    .iter::<f32>()
    .fold(0u64, |k, v| (k << 32) | v.to_bits() as u64)
}

/// A dropout mask of `n` elements: each `1 / (1 - prob)` with probability `1 - prob`,
/// else 0, from a counter-based hash of (`key`, index). Independent of thread count and
/// chunking, so the same key always gives the same mask.
pub fn dropout_mask(n: usize, prob: f32, key: u64) -> Vec<f32> {
    let mut mask = vec![0.0f32; n];
    const CHUNK: usize = 1 << 16;
    for_chunks(&mut mask, CHUNK, |c, out| {
        dropout_mask_at(out, (c * CHUNK) as u64, prob, key)
    });
    mask
}

/// Elements `first..first + out.len()` of the mask [`dropout_mask`] makes, on this
/// thread: for callers that work block by block.
pub(crate) fn dropout_mask_at(out: &mut [f32], first: u64, prob: f32, key: u64) {
    let keep = (1.0 - prob as f64).clamp(0.0, 1.0);
    // Keep when the 32-bit hash is below keep·2³²; u64 so that keep = 1 keeps all.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = if keep > 0.0 { (1.0 / keep) as f32 } else { 0.0 };
    mask_chunk(out, first, key, threshold, scale)
}

multiversion! {
    fn mask_chunk(out: &mut [f32], first: u64, key: u64, threshold: u64, scale: f32) {
        let (k0, k1) = (key as u32, (key >> 32) as u32);
        for (i, o) in out.iter_mut().enumerate() {
            let c = first + i as u64;
            // Two rounds of the murmur3 finaliser over the counter, keyed twice:
            // 32-bit multiplies only, so it vectorises on AVX2 and simd128 too.
            let mut h = (c as u32) ^ k0 ^ ((c >> 32) as u32).wrapping_mul(0x9E37_79B9);
            h = fmix32(h);
            h = fmix32(h ^ k1);
            *o = if (h as u64) < threshold { scale } else { 0.0 };
        }
    }
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_masks_keep_the_right_share_and_depend_only_on_the_key() {
        let n = 1_000_003;
        let a = dropout_mask(n, 0.1, 42);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.9).abs() < 0.002, "kept share {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        // Mean 1: dropout keeps the expected activation.
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.003, "mean {mean}");
        assert_eq!(a, dropout_mask(n, 0.1, 42), "same key, same mask");
        let b = dropout_mask(n, 0.1, 43);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / n as f64;
        // Independent masks agree where both keep or both drop: 0.81 + 0.01.
        assert!(
            (same - 0.82).abs() < 0.005,
            "masks of different keys agree at {same}"
        );
        // Neighbouring elements are not correlated.
        let pairs = a
            .windows(2)
            .filter(|w| (w[0] == 0.0) == (w[1] == 0.0))
            .count() as f64;
        assert!((pairs / (n - 1) as f64 - 0.82).abs() < 0.005);
        assert!(dropout_mask(100, 0.0, 1).iter().all(|&v| v == 1.0));
    }
}
