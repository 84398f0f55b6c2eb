//! The scaling, shared by both wasm builds.

use core::arch::wasm32::*;

#[inline(always)]
pub fn zero() -> v128 {
    i32x4_splat(0)
}

/// `out[j] = s · t[j] · (acc[j] − z · sums[j])`.
#[inline(always)]
pub fn finish(acc: v128, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]) {
    assert!(sums.len() == 4 && t.len() == 4 && out.len() == 4);
    // SAFETY: each slice is 4 long (asserted).
    unsafe {
        let sums = v128_load(sums.as_ptr() as *const v128);
        let t = v128_load(t.as_ptr() as *const v128);
        let int = i32x4_sub(acc, i32x4_mul(i32x4_splat(z), sums));
        let y = f32x4_mul(f32x4_convert_i32x4(int), f32x4_mul(f32x4_splat(s), t));
        v128_store(out.as_mut_ptr() as *mut v128, y);
    }
}
