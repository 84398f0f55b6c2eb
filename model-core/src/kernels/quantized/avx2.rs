//! Natively on x86 without AVX-512 VNNI (AMD Zen 2 and 3, older Intel): SSSE3's
//! `pmaddubsw` (u8 × i8 pairs summed into i16) then `pmaddwd` by ones (pairs of i16
//! into i32), VEX-encoded under AVX2. The same layout as the portable code and the
//! same integers: the inputs are 7-bit (`0..=127`) and the weights `-127..=127`, so a
//! pair's sum, at most `2·127·127 = 32258`, never saturates the i16. This is the
//! sequence a browser runs for relaxed SIMD's dot product on such CPUs. The portable
//! code, which the compiler does not turn into packed multiply-adds, stays for CPUs
//! without AVX2 (docs/PERFORMANCE.md has what this kernel changed).

use std::arch::x86_64::*;

use super::{Dot, Q, QuantizedWeight, Rows, x86};

struct Avx2;

impl Dot for Avx2 {
    type V = __m128i;

    #[inline(always)]
    fn zero() -> __m128i {
        x86::zero()
    }

    #[inline(always)]
    unsafe fn group<const R: usize>(
        w: *const i8,
        a: *const Q,
        stride: usize,
        lo: &mut [__m128i; R],
        hi: &mut [__m128i; R],
    ) {
        // SAFETY: the reads are the trait's contract; the intrinsics need SSSE3 and
        // SSE2, which `rows_block` (the only caller) is compiled with (AVX2 implies
        // both).
        unsafe {
            let w0 = _mm_loadu_si128(w as *const __m128i);
            let w1 = _mm_loadu_si128(w.add(16) as *const __m128i);
            let ones = _mm_set1_epi16(1);
            for r in 0..R {
                let x = _mm_set1_epi32((a.add(r * stride) as *const i32).read_unaligned());
                let p0 = _mm_madd_epi16(_mm_maddubs_epi16(x, w0), ones);
                let p1 = _mm_madd_epi16(_mm_maddubs_epi16(x, w1), ones);
                lo[r] = _mm_add_epi32(lo[r], p0);
                hi[r] = _mm_add_epi32(hi[r], p1);
            }
        }
    }

    #[inline(always)]
    fn finish(acc: __m128i, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
        x86::finish(acc, sums, t, s, z, out)
    }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn rows_block(w: &QuantizedWeight, dst: &mut [f32], rows: &Rows) {
    w.rows_block_body::<Avx2>(dst, rows)
}
