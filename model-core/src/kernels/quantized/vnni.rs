//! Natively on x86 with AVX-512 VNNI: `vpdpbusd`, sixteen u8 × i8 products summed
//! into four i32 lanes per instruction, on the same layout as the portable code
//! (each column's four values together).

use std::arch::x86_64::*;

use super::{Dot, Q, QuantizedWeight, Rows, x86};

struct Vnni;

impl Dot for Vnni {
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
        // SAFETY: the reads are the trait's contract; `vpdpbusd` needs AVX-512
        // VNNI and VL, which `rows_block` (the only caller) is compiled with.
        unsafe {
            let w0 = _mm_loadu_si128(w as *const __m128i);
            let w1 = _mm_loadu_si128(w.add(16) as *const __m128i);
            for r in 0..R {
                let x = _mm_set1_epi32((a.add(r * stride) as *const i32).read_unaligned());
                lo[r] = _mm_dpbusd_epi32(lo[r], x, w0);
                hi[r] = _mm_dpbusd_epi32(hi[r], x, w1);
            }
        }
    }

    #[inline(always)]
    fn finish(acc: __m128i, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
        x86::finish(acc, sums, t, s, z, out)
    }
}

/// # Safety
/// The CPU must have AVX-512 F, VL and VNNI.
#[target_feature(enable = "avx512f,avx512vl,avx512vnni")]
pub unsafe fn rows_block(w: &QuantizedWeight, dst: &mut [f32], rows: &Rows) {
    w.rows_block_body::<Vnni>(dst, rows)
}
