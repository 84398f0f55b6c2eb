//! The tile's vector operations on plain arrays, off wasm: the portable build
//! (multiversioned by the caller) and the reference the VNNI kernel is tested
//! against. Same layout as the relaxed-SIMD build.

use super::{Dot, Q};

pub fn slot(c: usize, l: usize) -> usize {
    c * 4 + l
}

pub struct Build;

impl Dot for Build {
    type V = [i32; 4];

    #[inline(always)]
    fn zero() -> [i32; 4] {
        [0; 4]
    }

    #[inline(always)]
    unsafe fn group<const R: usize>(
        w: *const i8,
        a: *const Q,
        stride: usize,
        lo: &mut [[i32; 4]; R],
        hi: &mut [[i32; 4]; R],
    ) {
        // SAFETY (both reads): the trait's contract.
        let w = unsafe { *(w as *const [i8; 32]) };
        for r in 0..R {
            let x = unsafe { *(a.add(r * stride) as *const [u8; 4]) };
            for c in 0..8 {
                let sum: i32 = (0..4).map(|l| w[slot(c, l)] as i32 * x[l] as i32).sum();
                if c < 4 {
                    lo[r][c] += sum;
                } else {
                    hi[r][c - 4] += sum;
                }
            }
        }
    }

    #[inline(always)]
    fn finish(acc: [i32; 4], sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
        for j in 0..4 {
            out[j] = (acc[j] - z * sums[j]) as f32 * (s * t[j]);
        }
    }
}
