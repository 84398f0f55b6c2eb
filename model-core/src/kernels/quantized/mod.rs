//! `dst += lhs · W` in 8-bit integers: the projections of a model exported with
//! `--dtype int8`, the precision class of Transformers.js's `q8` models.
//!
//! Why: in the browser the f32 packed kernel ([`crate::kernels::packed`]) does four
//! multiply-adds per instruction, and the projections are about three quarters of one
//! review's time. Relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s` does sixteen
//! (x86 engines lower it to a few byte multiply-add instructions), and int8 weights
//! are a quarter of the bytes to stream: in the page one review takes well under the
//! f32 products' time (`cargo xtask bench-web`; figures in `docs/PERFORMANCE.md`).
//!
//! The arithmetic, the same on every target (so the page, the tests and
//! `trainer evaluate --products int8` agree to the last integer):
//! - the weight, per output column `c`: `W[k, c] ≈ t_c · w[k, c]`, `w` in `-127..=127`
//!   and `t_c = max|W[·, c]| / 127`. For an int8 export, whose rows were quantized
//!   the same way, this gives back the stored integers and scales exactly;
//! - each input row `r`, quantized on the fly to 7 bits (the instruction's second
//!   operand must not have its top bit set): `x[r, k] ≈ s_r · (a[r, k] - z_r)`, `a`
//!   in `0..=127`, with the row's range widened to include 0 so that `z_r` is an
//!   exact integer zero point;
//! - `dst[r, c] += s_r · t_c · (Σ_k a[r, k]·w[k, c] − z_r · Σ_k w[k, c])`, the sum in
//!   i32 (exact: `|a·w| ≤ 127²`, and a row of 1536 such products stays far inside
//!   i32).
//!
//! The plain simd128 page build (browsers without relaxed SIMD) computes the same
//! integers with `i32x4.dot_i16x8_s`; natively (`--products int8`, and the tests)
//! they run on AVX-512 VNNI's `vpdpbusd` where the CPU has it, else on portable
//! code. The `Dot` trait is what differs between them.

use std::cell::RefCell;
// One implementation of the tile's vector operations per instruction set, named `v`
// for the build at hand; `vnni` is picked at run time beside it natively.
#[cfg(not(target_arch = "wasm32"))]
mod portable;
#[cfg(not(target_arch = "wasm32"))]
use portable as v;
#[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
mod relaxed;
#[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
use relaxed as v;
#[cfg(all(target_arch = "wasm32", not(feature = "relaxed-simd")))]
mod simd128;
#[cfg(all(target_arch = "wasm32", not(feature = "relaxed-simd")))]
use simd128 as v;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod vnni;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

pub mod int4;
pub mod rule;

/// Columns per panel: two vectors of four i32 accumulators.
const NR: usize = 8;
/// Rows per tile.
const MR: usize = 4;
/// Reduction values per dot-product lane.
const KG: usize = 4;

/// A `[k, n]` weight quantized per column and packed in panels of `NR` (8) columns:
/// panel `p`, reduction group `g` is 32 bytes at `(p·groups + g)·32`, in the order
/// the build's dot product reads them (`v::slot`). Zero past column `n` and past
/// row `k`.
pub struct QuantizedWeight {
    data: Vec<i8>,
    /// `t_c`, zero past `n`.
    scales: Vec<f32>,
    /// `Σ_k w[k, c]`, zero past `n`.
    sums: Vec<i32>,
    k: usize,
    n: usize,
}

impl QuantizedWeight {
    /// Quantize and pack `weight[i, j] = src[offset + i·rs + j·cs]` for `i < k`,
    /// `j < n`.
    ///
    /// # Panics
    /// If a stride is negative or the view reaches past `src`.
    pub fn quantize(src: &[f32], offset: usize, rs: isize, cs: isize, k: usize, n: usize) -> Self {
        let (rs, cs) = crate::kernels::cache::checked_view(src, offset, rs, cs, k, n);
        let at = |i: usize, j: usize| src[offset + i * rs + j * cs];
        let panels = n.div_ceil(NR);
        let groups = k.div_ceil(KG);
        let mut scales = vec![0.0f32; panels * NR];
        let mut sums = vec![0i32; panels * NR];
        let mut data = vec![0i8; panels * groups * NR * KG];
        for j in 0..n {
            let max = (0..k).map(|i| at(i, j).abs()).fold(0.0f32, f32::max);
            let scale = rule::channel_scale(max);
            scales[j] = scale;
            let (p, c) = (j / NR, j % NR);
            for i in 0..k {
                let q = rule::quantize(at(i, j), scale);
                sums[j] += q as i32;
                let (g, l) = (i / KG, i % KG);
                data[(p * groups + g) * NR * KG + v::slot(c, l)] = q;
            }
        }
        Self {
            data,
            scales,
            sums,
            k,
            n,
        }
    }

    /// `dst[m, n] += lhs[m, k] · W`, both row-major and contiguous, `lhs` quantized
    /// row by row as the module docs say.
    ///
    /// Blocks of at most [`BLOCK`] rows (on rayon's threads with the `threads`
    /// feature), each quantizing its own rows, then through every panel: the
    /// quantization is a per-row pass, so doing it inside the block keeps it off the
    /// one thread (where it was a serial share of every product on several threads),
    /// and the block's quantized rows stay in cache for the panels.
    ///
    /// # Panics
    /// If the slices do not hold `m` rows of the right widths.
    pub fn accumulate(&self, dst: &mut [f32], lhs: &[f32], m: usize) {
        assert_eq!(dst.len(), m * self.n, "product output shape");
        assert_eq!(lhs.len(), m * self.k, "product input shape");
        thread_local! {
            static SCRATCH: RefCell<Rows> = RefCell::new(Rows::default());
        }
        let block = crate::kernels::simd::block_rows(m, BLOCK, MR);
        crate::kernels::for_chunks(dst, block * self.n, |b, d| {
            let rows_here = d.len() / self.n.max(1);
            let lhs = &lhs[b * block * self.k..][..rows_here * self.k];
            SCRATCH.with(|s| {
                let rows = &mut s.borrow_mut();
                rows.quantize(lhs, rows_here, self.k);
                rows_block(self, d, rows)
            });
        });
    }

    /// `dst` `+=` the products of `rows`, row for row.
    #[inline(always)]
    fn rows_block_body<D: Dot>(&self, dst: &mut [f32], rows: &Rows) {
        let m = dst.len() / self.n.max(1);
        let groups = self.k.div_ceil(KG);
        for p in 0..self.n.div_ceil(NR) {
            let panel = &self.data[p * groups * NR * KG..(p + 1) * groups * NR * KG];
            let col = p * NR;
            let mut i = 0;
            while i + MR <= m {
                self.tile::<D, MR>(dst, rows, i, col, panel);
                i += MR;
            }
            while i < m {
                self.tile::<D, 1>(dst, rows, i, col, panel);
                i += 1;
            }
        }
    }

    /// Rows `i..i+R` of `dst` and of `rows`, columns `col..col+NR`
    /// (clipped to `n`): the integer sums over the whole reduction, then the scaling
    /// into `dst`.
    #[inline(always)]
    fn tile<D: Dot, const R: usize>(
        &self,
        dst: &mut [f32],
        rows: &Rows,
        i: usize,
        col: usize,
        panel: &[i8],
    ) {
        let stride = rows.stride;
        let groups = stride / KG;
        // Bounds for every unchecked access below.
        assert!(panel.len() == groups * NR * KG, "panel");
        assert!(R >= 1 && (i + R) * stride <= rows.q.len(), "tile rows");
        let mut lo = [D::zero(); R];
        let mut hi = [D::zero(); R];
        let a = rows.q.as_ptr();
        let b = panel.as_ptr();
        for g in 0..groups {
            // SAFETY: `g < groups`, so the panel reads (32 bytes at `g·32`) stay in
            // `panel`, and the row reads (4 bytes at `(i+r)·stride + g·4`, r < R) in
            // `rows.q`.
            unsafe {
                D::group(
                    b.add(g * NR * KG),
                    a.add(i * stride + g * KG),
                    stride,
                    &mut lo,
                    &mut hi,
                );
            }
        }
        let cols = NR.min(self.n - col);
        for r in 0..R {
            let (s, z) = (rows.scales[i + r], rows.zeros[i + r]);
            let mut out = [0.0f32; NR];
            D::finish(
                lo[r],
                &self.sums[col..col + 4],
                &self.scales[col..col + 4],
                s,
                z,
                &mut out[..4],
            );
            D::finish(
                hi[r],
                &self.sums[col + 4..col + 8],
                &self.scales[col + 4..col + 8],
                s,
                z,
                &mut out[4..],
            );
            let row = &mut dst[(i + r) * self.n + col..][..cols];
            for (d, o) in row.iter_mut().zip(out) {
                *d += o;
            }
        }
    }
}

/// Output rows per task: a multiple of [`MR`].
const BLOCK: usize = 64;

/// The tile's vector operations, one implementation per instruction set.
trait Dot {
    /// Four i32 accumulators.
    type V: Copy;
    fn zero() -> Self::V;
    /// One group (four reduction steps) of rows `a + r·stride`, `r < R`, against
    /// 32 bytes of panel at `w` laid out by `v::slot`: lane `j` of `lo[r]` (columns
    /// 0..4) and of `hi[r]` (4..8) gains that column's four products.
    ///
    /// # Safety
    /// `w` must be valid for 32 reads, and each `a + r·stride` for 4 values.
    unsafe fn group<const R: usize>(
        w: *const i8,
        a: *const Q,
        stride: usize,
        lo: &mut [Self::V; R],
        hi: &mut [Self::V; R],
    );
    /// `out[j] = s · t[j] · (acc[j] − z · sums[j])`.
    fn finish(acc: Self::V, sums: &[i32], t: &[f32], s: f32, z: i32, out: &mut [f32]);
}

/// [`QuantizedWeight::rows_block_body`], compiled for the target's best integer
/// instructions: relaxed SIMD's dot product in the `relaxed-simd` page build,
/// AVX-512 VNNI natively where the CPU has it, else AVX2's `pmaddubsw`, else
/// portable code.
fn rows_block(w: &QuantizedWeight, dst: &mut [f32], rows: &Rows) {
    #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
    {
        #[target_feature(enable = "relaxed-simd")]
        fn relaxed(w: &QuantizedWeight, d: &mut [f32], rows: &Rows) {
            w.rows_block_body::<v::Build>(d, rows)
        }
        relaxed(w, dst, rows)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: the CPU has the features the function was compiled for.
        return unsafe { vnni::rows_block(w, dst, rows) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature the function was compiled for.
        return unsafe { avx2::rows_block(w, dst, rows) };
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "relaxed-simd")))]
    portable(w, dst, rows);
}

#[cfg(not(all(target_arch = "wasm32", feature = "relaxed-simd")))]
crate::kernels::multiversion! {
    fn portable(w: &QuantizedWeight, dst: &mut [f32], rows: &Rows) {
        w.rows_block_body::<v::Build>(dst, rows)
    }
}

/// One quantized input value (`0..=127`): a byte, except in the plain simd128
/// build, whose `dot_i16x8` reads i16 lanes (stored so, a row's pair of values is
/// one 4-byte splat).
#[cfg(not(all(target_arch = "wasm32", not(feature = "relaxed-simd"))))]
type Q = u8;
#[cfg(all(target_arch = "wasm32", not(feature = "relaxed-simd")))]
type Q = i16;

/// The input rows, quantized: `m` rows of `stride` values (`k` rounded up to
/// [`KG`]; the extra values meet zero weights).
#[derive(Default)]
struct Rows {
    q: Vec<Q>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
    m: usize,
    stride: usize,
}

impl Rows {
    fn quantize(&mut self, lhs: &[f32], m: usize, k: usize) {
        let stride = k.div_ceil(KG) * KG;
        self.q.clear();
        self.q.resize(m * stride, 0);
        self.scales.clear();
        self.zeros.clear();
        (self.m, self.stride) = (m, stride);
        for (x, q) in lhs
            .chunks_exact(k.max(1))
            .zip(self.q.chunks_exact_mut(stride.max(1)))
            .take(m)
        {
            let (lo, hi) = min_max(x);
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let scale = (hi - lo) / 127.0;
            let scale = if scale > 0.0 && scale.is_finite() {
                scale
            } else {
                1.0
            };
            let zero = (-lo / scale).round().clamp(0.0, 127.0);
            let inv = 1.0 / scale;
            for (q, &v) in q.iter_mut().zip(x) {
                // Round half up by truncation, which equals `round()` on these
                // non-negative values and, unlike it, is no libm call (on wasm as on
                // x86_64's baseline) and vectorises.
                *q = ((v * inv + zero).clamp(0.0, 127.0) + 0.5) as u8 as Q;
            }
            self.scales.push(scale);
            self.zeros.push(zero as i32);
        }
    }
}

/// Smallest and largest value, in eight partial results so the loop vectorises.
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; 8];
    let mut hi = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            lo[l] = lo[l].min(c[l]);
            hi[l] = hi[l].max(c[l]);
        }
    }
    let fold = |a: [f32; 8], t: &[f32], f: fn(f32, f32) -> f32| {
        t.iter().chain(&a).copied().reduce(f).unwrap_or(0.0)
    };
    (fold(lo, tail, f32::min), fold(hi, tail, f32::max))
}

#[cfg(test)]
mod tests;
