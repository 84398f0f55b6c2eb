//! What the x86 kernels (`vnni`, `avx2`) share: four i32 accumulators in an
//! `__m128i`, and the scaling of their sums, which is the portable code's.

use std::arch::x86_64::*;

use super::Dot;

#[inline(always)]
pub fn zero() -> __m128i {
    // SAFETY: SSE2 is part of x86_64.
    unsafe { _mm_setzero_si128() }
}

#[inline(always)]
pub fn finish(acc: __m128i, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
    let mut lanes = [0i32; 4];
    // SAFETY: `lanes` holds 16 bytes.
    unsafe { _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, acc) };
    super::v::Build::finish(lanes, sums, t, s, z, out)
}
