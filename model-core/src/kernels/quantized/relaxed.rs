//! The vector ops of the tile with relaxed SIMD's dot product (the `relaxed-simd`
//! page build).

use core::arch::wasm32::*;

use super::{Dot, Q, wasm as simd128};

/// Where column `c`'s `l`-th value of a group goes: columns `0..4` then `4..8`,
/// each column's four values together (what one dot-product lane reads).
pub fn slot(c: usize, l: usize) -> usize {
    c * 4 + l
}

pub struct Build;

impl Dot for Build {
    type V = v128;

    #[inline(always)]
    fn zero() -> v128 {
        simd128::zero()
    }

    /// Lane `j` of `lo[r]` gains `Σ_t w[4j+t] · x[t]`, `w` signed, `x` in
    /// `0..=127` (the instruction's second operand).
    #[inline(always)]
    unsafe fn group<const R: usize>(
        w: *const i8,
        a: *const Q,
        stride: usize,
        lo: &mut [v128; R],
        hi: &mut [v128; R],
    ) {
        // SAFETY: the reads are the trait's contract.
        unsafe {
            let w0 = v128_load(w as *const v128);
            let w1 = v128_load(w.add(16) as *const v128);
            for r in 0..R {
                let x = v128_load32_splat(a.add(r * stride) as *const u32);
                lo[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w0, x, lo[r]);
                hi[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w1, x, hi[r]);
            }
        }
    }

    #[inline(always)]
    fn finish(acc: v128, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
        simd128::finish(acc, sums, t, s, z, out)
    }
}
