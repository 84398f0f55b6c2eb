//! Vectorisable elementwise math: `exp`, `erf`, the exact GELU and the masked
//! softmax's numerators.
//!
//! Branch-free bodies the compiler turns into SIMD; on x86_64 they are compiled again
//! with AVX2+FMA and AVX-512 and picked at run time (`multiversion!`), on wasm they use
//! simd128. Why not `libm`: its `erff`/`expf` are scalar calls, which profiling found
//! at a fifth of the encoder's time.

use super::simd::{LANES, multiversion};

multiversion! {
    /// The numerators of a masked softmax, in place: `row[j] = exp(row[j] - max)` for
    /// a real key (`keep[j]` 1), exactly 0 for padding (`keep[j]` 0). Returns `1 / Σ`,
    /// by which the caller scales; 0 for a row with no real key (all zeros then).
    pub(crate) fn exp_row(row: &mut [f32], keep: &[f32]) -> f32 {
        exp_row_body(row, keep)
    }
}

#[inline(always)]
fn exp_row_body(row: &mut [f32], keep: &[f32]) -> f32 {
    // Max over real keys, as a select the compiler vectorises (`LANES` partials).
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let n = row.len() / LANES * LANES;
    for (r, k) in row[..n]
        .chunks_exact(LANES)
        .zip(keep[..n].chunks_exact(LANES))
    {
        for i in 0..LANES {
            // A compare and select, which is one `max` instruction; `f32::max` has
            // NaN rules that keep the compiler from vectorising it.
            let v = if k[i] != 0.0 { r[i] } else { f32::NEG_INFINITY };
            lanes[i] = if v > lanes[i] { v } else { lanes[i] };
        }
    }
    for (&r, &k) in row[n..].iter().zip(&keep[n..]) {
        if k != 0.0 {
            lanes[0] = lanes[0].max(r);
        }
    }
    let max = lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return 0.0;
    }
    let sum = exp_masked_body(row, keep, max);
    if sum > 0.0 { 1.0 / sum } else { 0.0 }
}

/// `row[j] = exp(row[j] - max) · keep[j]`, returning the sum.
#[inline(always)]
fn exp_masked_body(row: &mut [f32], keep: &[f32], max: f32) -> f32 {
    // `LANES` partial sums so the reduction vectorises without reassociating floats
    // behind the compiler's back.
    let mut acc = [0.0f32; LANES];
    let n = row.len() / LANES * LANES;
    for (r, k) in row[..n]
        .chunks_exact_mut(LANES)
        .zip(keep[..n].chunks_exact(LANES))
    {
        for i in 0..LANES {
            let e = exp(r[i] - max) * k[i];
            r[i] = e;
            acc[i] += e;
        }
    }
    for (r, &k) in row[n..].iter_mut().zip(&keep[n..]) {
        let e = exp(*r - max) * k;
        *r = e;
        acc[0] += e;
    }
    acc.iter().sum()
}

multiversion! {
    /// In-place exact GELU over a slice.
    pub fn gelu_slice(x: &mut [f32]) {
        gelu_body(x)
    }
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        let t = *v;
        *v = 0.5 * t * (1.0 + erf(t * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `erf` as the odd rational approximation `x·P(x²)/Q(x²)` on `[-4, 4]` (clamped
/// outside, where `erf` is ±1 to f32 precision); max absolute error about 1e-7.
/// Coefficients: the minimax fit Eigen uses for `erf` in single precision.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

/// `exp` for `x ≤ 0` (softmax arguments): Cody–Waite range reduction to
/// `r ∈ [-ln2/2, ln2/2]`, a degree-6 polynomial (Cephes `expf`), and `2ⁿ` built
/// from the exponent bits. Relative error about 2e-7; underflows to 0 below -87.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round x·log2(e) to the nearest integer n by adding 1.5·2²³: the sum's low
    // mantissa bits then hold n itself, so 2ⁿ comes from integer ops alone (a float to
    // int cast is saturating in Rust and would not vectorise).
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = (p * r * r + r) + 1.0;
    // n ∈ [-126, 127] after the clamp, so the biased exponent n + 127 is in range.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    e * scale
}
#[cfg(test)]
mod tests {
    use super::*;

    /// erf to double precision by its Maclaurin series (|x| ≤ 3) or the asymptotic
    /// continued fraction beyond: an independent reference.
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) = exp(-x²)/(x√π) · 1/(1 + 1/(2x²)/(1 + 2/(2x²)/(1 + …))) — Lentz-free form
            let z = x.abs();
            let mut f = 0.0;
            for n in (1..60).rev() {
                f = (n as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            return x.signum() * (1.0 - erfc);
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_matches_the_series_to_f32_precision() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((erf(x) as f64 - erf_ref(x as f64)).abs());
        }
        assert!(worst < 5e-7, "max |erf error| {worst}");
    }

    #[test]
    fn exp_matches_std_in_relative_error() {
        let mut worst = 0.0f32;
        for i in 0..=87_000 {
            let x = -(i as f32) / 1000.0;
            let (ours, std) = (exp(x), x.exp());
            worst = worst.max(((ours - std) / std).abs());
        }
        assert!(worst < 1e-6, "max relative exp error {worst}");
        assert!(exp(-200.0) < 1e-37);
    }

    #[test]
    fn masked_softmax_gives_zero_to_padding_and_sums_to_one() {
        let mut row = vec![1.0, 2.0, 3.0, 50.0, 0.5, -1.0, 2.5, 0.0, 1.0];
        let keep = vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let inv = exp_row(&mut row, &keep);
        row.iter_mut().for_each(|p| *p *= inv);
        assert_eq!(row[3], 0.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let z: f64 = [1.0f64, 2.0, 3.0, 0.5, -1.0, 2.5, 0.0, 1.0]
            .iter()
            .map(|v| v.exp())
            .sum();
        assert!((row[2] as f64 - 3f64.exp() / z).abs() < 1e-6);
        let mut none = vec![1.0, 2.0];
        assert_eq!(exp_row(&mut none, &[0.0, 0.0]), 0.0);
        assert_eq!(none, vec![0.0, 0.0]);
    }
}
