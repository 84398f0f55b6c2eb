//! The same with plain simd128 (browsers without relaxed SIMD): `i32x4.dot_i16x8_s`
//! over pairs of reduction steps, the weights sign-extended as they load. Eight
//! products per instruction rather than sixteen, still twice the f32 kernel's four
//! per two instructions; the same integers.

use core::arch::wasm32::*;

use super::{Dot, Q, wasm as simd128};

/// Pairs of reduction steps: steps `0, 1` of all eight columns, then steps
/// `2, 3`; each column's two values together (what one `dot_i16x8` lane reads).
pub fn slot(c: usize, l: usize) -> usize {
    (l / 2) * 16 + c * 2 + l % 2
}

pub struct Build;

impl Dot for Build {
    type V = v128;

    #[inline(always)]
    fn zero() -> v128 {
        simd128::zero()
    }

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
            for pair in 0..2 {
                let w0 = i16x8_load_extend_i8x8(w.add(pair * 16));
                let w1 = i16x8_load_extend_i8x8(w.add(pair * 16 + 8));
                for r in 0..R {
                    // The row's two values in every pair of i16 lanes.
                    let x = v128_load32_splat(a.add(r * stride + pair * 2) as *const u32);
                    lo[r] = i32x4_add(lo[r], i32x4_dot_i16x8(w0, x));
                    hi[r] = i32x4_add(hi[r], i32x4_dot_i16x8(w1, x));
                }
            }
        }
    }

    #[inline(always)]
    fn finish(acc: v128, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
        simd128::finish(acc, sums, t, s, z, out)
    }
}
