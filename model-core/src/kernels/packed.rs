//! `dst += lhs · W` for a fixed weight `W`, packed once into column panels: the
//! projections' GEMM in the browser.
//!
//! Why not gemm's simd128 kernels, which native builds keep using: profiling one
//! review in headless Chromium put 72% of the time in them (3×4-vector tiles, the left
//! operand repacked on every call), at about 30 GFLOP/s. The weights never change
//! between reviews, so here they are laid out once, 8 columns at a time, in the order
//! the inner loop reads them, and a 4-row × 8-column tile (eight accumulators: V8 keeps
//! them in registers) walks the reduction reading each `lhs` element once per tile, as
//! a broadcast load. That measured 40–44 GFLOP/s in the same Chromium, and 50–54 with
//! relaxed SIMD, where the multiply-add is one fused instruction (`f32x4.relaxed_madd`,
//! with the `relaxed-simd` feature: a second page build, see [`PackedWeight::accumulate`]).
//!
//! Off wasm the same code runs on 4-element arrays, for the unit tests.

use std::sync::Arc;

use burn_flex::FlexTensor;

/// Lanes per vector: simd128's 4 in the browser; 8 natively, which AVX2 and AVX-512
/// compile to one 256-bit operation. Each lane is its own output column, so the width
/// changes nothing in any output's order of sums: only how many run side by side.
const VW: usize = v::WIDTH;
/// Columns per panel: two vectors.
const NR: usize = 2 * VW;
/// Rows per tile.
const MR: usize = 4;
/// Reduction block: a 4×256 block of `lhs` (4 KiB) and a 256×NR panel block (8 KiB
/// in the browser, 16 natively) stay in L1 while a panel is swept down the rows.
const KC: usize = 256;

/// Weights of at least this many values are packed on every thread.
const PARALLEL_PACK: usize = 1 << 16;

/// A `[k, n]` weight in panels of `NR` columns: panel `p` holds rows `0..k` of
/// columns `p·NR..p·NR+NR`, row after row, zero past column `n`.
#[derive(Default)]
pub struct PackedWeight {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedWeight {
    /// Pack `weight[i, j] = src[offset + i·rs + j·cs]` for `i < k`, `j < n`.
    ///
    /// # Panics
    /// If a row or column stride is negative or the view reaches past `src`.
    pub fn pack(src: &[f32], offset: usize, rs: isize, cs: isize, k: usize, n: usize) -> Self {
        let mut w = Self::default();
        w.pack_into(src, offset, rs, cs, k, n, 1.0);
        w
    }

    /// Repack `self` (reusing its buffer) with `scale · weight`, the weight as in
    /// [`Self::pack`]. Attention packs each head's keys and values this way.
    #[allow(clippy::too_many_arguments)] // a strided view and a factor
    pub fn pack_into(
        &mut self,
        src: &[f32],
        offset: usize,
        rs: isize,
        cs: isize,
        k: usize,
        n: usize,
        scale: f32,
    ) {
        let (rs, cs) = super::cache::checked_view(src, offset, rs, cs, k, n);
        let panels = n.div_ceil(NR);
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        let panel_len = (k * NR).max(1);
        let fill = |p: usize, panel: &mut [f32]| {
            let cols = NR.min(n - p * NR);
            for (i, row) in panel.chunks_exact_mut(NR).enumerate() {
                let base = offset + i * rs + p * NR * cs;
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = scale * src[base + j * cs];
                }
            }
        };
        // A weight packed for one training product (megabytes, every step) is split
        // over the threads; attention's per-head packs (a few KiB, already one job per
        // head) stay on the thread that asked.
        if k * n >= PARALLEL_PACK {
            super::for_chunks(&mut self.data, panel_len, fill);
        } else {
            for (p, panel) in self.data.chunks_exact_mut(panel_len).enumerate() {
                fill(p, panel);
            }
        }
        (self.k, self.n) = (k, n);
    }

    /// Rows of the weight (the reduction length).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the weight.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `dst[m, n] += lhs[m, k] · W`, both row-major and contiguous.
    ///
    /// # Panics
    /// If the slices do not hold `m` rows of the right widths.
    pub fn accumulate(&self, dst: &mut [f32], lhs: &[f32], m: usize) {
        assert_eq!(dst.len(), m * self.n, "product output shape");
        assert_eq!(lhs.len(), m * self.k, "product input shape");
        let (n, k) = (self.n, self.k);
        // Blocks of rows on rayon's threads (the threaded module): each row's sums run
        // in the same order whichever block it falls in, so the result does not
        // depend on the number of threads.
        let block = crate::kernels::simd::block_rows(m, m.max(1), MR);
        crate::kernels::for_chunks(dst, block * n, |b, d| {
            let rows = d.len() / n.max(1);
            let a = &lhs[b * block * k..(b * block + rows) * k];
            self.accumulate_strided(d, n, a, k, rows)
        })
    }

    /// `dst[m, n] += lhs[m, k] · W` with rows `ldd` and `lda` apart.
    ///
    /// # Panics
    /// If the slices do not hold `m` such rows, or a row overlaps the next.
    pub fn accumulate_strided(
        &self,
        dst: &mut [f32],
        ldd: usize,
        lhs: &[f32],
        lda: usize,
        m: usize,
    ) {
        if !self.fits(dst, ldd, lhs, lda, m) {
            return;
        }
        // The relaxed-SIMD build: the same loops with `madd` fused. A module with these
        // instructions fails validation where relaxed SIMD is missing, so it is a
        // separate build (`--features relaxed-simd`) that the page loads only where the
        // browser validates it (static/boot.js).
        #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
        {
            #[target_feature(enable = "relaxed-simd")]
            fn relaxed(
                w: &PackedWeight,
                d: &mut [f32],
                ldd: usize,
                a: &[f32],
                lda: usize,
                m: usize,
            ) {
                w.accumulate_body::<false>(d, ldd, a, lda, m)
            }
            relaxed(self, dst, ldd, lhs, lda, m)
        }
        #[cfg(not(all(target_arch = "wasm32", feature = "relaxed-simd")))]
        exact(self, dst, ldd, lhs, lda, m)
    }

    /// [`Self::accumulate_strided`] with every multiply and add rounded on its own,
    /// never fused, on every target: each output is `dst + Σ a·w` summed in `k`
    /// order in blocks of [`KC`], whatever the vector width, so the browser's modules
    /// and native builds give the same bits. Attention's products run on this: the
    /// int8 products after them quantize their input on the fly, where one last-bit
    /// difference can move a value a whole step (see [`super::quantized`]).
    ///
    /// # Panics
    /// As [`Self::accumulate_strided`].
    pub fn accumulate_exact(&self, dst: &mut [f32], ldd: usize, lhs: &[f32], lda: usize, m: usize) {
        if self.fits(dst, ldd, lhs, lda, m) {
            exact(self, dst, ldd, lhs, lda, m)
        }
    }

    /// Whether there is any row to compute, after checking once per call that `m`
    /// rows with these strides fit the slices.
    ///
    /// # Panics
    /// If they do not.
    fn fits(&self, dst: &[f32], ldd: usize, lhs: &[f32], lda: usize, m: usize) -> bool {
        assert!(ldd >= self.n && lda >= self.k, "row strides");
        if m == 0 {
            return false;
        }
        assert!(dst.len() >= (m - 1) * ldd + self.n, "product output shape");
        assert!(lhs.len() >= (m - 1) * lda + self.k, "product input shape");
        true
    }

    /// The loops, `madd` fused (relaxed SIMD's, where built with it) unless `EXACT`.
    #[inline(always)]
    fn accumulate_body<const EXACT: bool>(
        &self,
        dst: &mut [f32],
        ldd: usize,
        lhs: &[f32],
        lda: usize,
        m: usize,
    ) {
        let (k, n) = (self.k, self.n);
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            for p in 0..n.div_ceil(NR) {
                let panel = &self.data[(p * k + k0) * NR..(p * k + k0 + kc) * NR];
                let (col, cols) = (p * NR, NR.min(n - p * NR));
                let mut i = 0;
                while i + MR <= m {
                    tile::<MR, EXACT>(dst, ldd, lhs, lda, i, col, cols, k0, panel);
                    i += MR;
                }
                while i < m {
                    tile::<1, EXACT>(dst, ldd, lhs, lda, i, col, cols, k0, panel);
                    i += 1;
                }
            }
            k0 += kc;
        }
    }
}

super::multiversion! {
    /// [`PackedWeight::accumulate_body`], never fused, at the widest vectors the CPU has.
    fn exact(w: &PackedWeight, dst: &mut [f32], ldd: usize, lhs: &[f32], lda: usize, m: usize) {
        w.accumulate_body::<true>(dst, ldd, lhs, lda, m)
    }
}

/// The packed form of a 2-D f32 flex weight `[k, n]`, packed on first use and kept
/// for as long as the weight's buffer lives (see [`super::cache`]).
pub fn packed_weight(weight: &FlexTensor) -> Arc<PackedWeight> {
    super::cache::derived(weight, PackedWeight::pack)
}

/// `dst[i..i+R, col..col+cols] += lhs[i..i+R, k0..k0+kc] · panel`, with `panel` the
/// `kc × NR` block of one panel.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one tile's coordinates; a struct would only rename them
fn tile<const R: usize, const EXACT: bool>(
    dst: &mut [f32],
    ldd: usize,
    lhs: &[f32],
    lda: usize,
    i: usize,
    col: usize,
    cols: usize,
    k0: usize,
    panel: &[f32],
) {
    let kc = panel.len() / NR;
    // Bounds for every unchecked access below.
    assert!(
        R >= 1 && (i + R - 1) * lda + k0 + kc <= lhs.len(),
        "tile rows"
    );
    assert!(
        (i + R - 1) * ldd + col + cols <= dst.len() && cols <= NR,
        "tile columns"
    );
    let mut lo = [v::zero(); R];
    let mut hi = [v::zero(); R];
    let a = lhs.as_ptr();
    let b = panel.as_ptr();
    for kk in 0..kc {
        // SAFETY: `kk < kc`, so the panel reads stay in `panel` (kc·NR long), and the
        // `lhs` reads are at most `(i+R-1)·lda + k0 + kc - 1`, asserted above.
        unsafe {
            let b0 = v::load(b.add(kk * NR));
            let b1 = v::load(b.add(kk * NR + VW));
            for r in 0..R {
                let x = v::splat(a.add((i + r) * lda + k0 + kk));
                lo[r] = v::madd::<EXACT>(x, b0, lo[r]);
                hi[r] = v::madd::<EXACT>(x, b1, hi[r]);
            }
        }
    }
    for r in 0..R {
        let row = &mut dst[(i + r) * ldd + col..][..cols];
        if cols == NR {
            // SAFETY: `row` is NR long.
            unsafe {
                v::add_store(row.as_mut_ptr(), lo[r]);
                v::add_store(row.as_mut_ptr().add(VW), hi[r]);
            }
        } else {
            let mut t = [0.0f32; NR];
            t[..VW].copy_from_slice(&v::to_array(lo[r]));
            t[VW..].copy_from_slice(&v::to_array(hi[r]));
            for (d, s) in row.iter_mut().zip(t) {
                *d += s;
            }
        }
    }
}

/// The 4-lane vector ops the tile needs: simd128 on wasm.
#[cfg(target_arch = "wasm32")]
mod v {
    use core::arch::wasm32::*;

    pub type V = v128;
    pub const WIDTH: usize = 4;

    #[inline(always)]
    pub fn zero() -> V {
        f32x4_splat(0.0)
    }

    /// # Safety
    /// `p` must be valid for 4 reads.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        unsafe { v128_load(p as *const v128) }
    }

    /// # Safety
    /// `p` must be valid for a read.
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        unsafe { v128_load32_splat(p as *const u32) }
    }

    /// `a·b + c`: one fused instruction with relaxed SIMD unless `EXACT` (rounding
    /// then depends on the engine and CPU, as with any FMA: fine for a product whose
    /// output is f32, not before an on-the-fly quantization).
    #[inline(always)]
    pub fn madd<const EXACT: bool>(a: V, b: V, c: V) -> V {
        #[cfg(feature = "relaxed-simd")]
        if !EXACT {
            return f32x4_relaxed_madd(a, b, c);
        }
        f32x4_add(c, f32x4_mul(a, b))
    }

    /// # Safety
    /// `p` must be valid for 4 reads and writes.
    #[inline(always)]
    pub unsafe fn add_store(p: *mut f32, x: V) {
        unsafe { v128_store(p as *mut v128, f32x4_add(v128_load(p as *const v128), x)) }
    }

    #[inline(always)]
    pub fn to_array(x: V) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(x),
            f32x4_extract_lane::<1>(x),
            f32x4_extract_lane::<2>(x),
            f32x4_extract_lane::<3>(x),
        ]
    }
}

/// The same ops on arrays, off wasm (the compiler turns them into vector instructions,
/// never fusing a multiply and an add).
#[cfg(not(target_arch = "wasm32"))]
mod v {
    pub const WIDTH: usize = 8;
    pub type V = [f32; WIDTH];

    #[inline(always)]
    pub fn zero() -> V {
        [0.0; WIDTH]
    }

    /// # Safety
    /// `p` must be valid for `WIDTH` reads.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> V {
        unsafe { std::ptr::read_unaligned(p as *const V) }
    }

    /// # Safety
    /// `p` must be valid for a read.
    #[inline(always)]
    pub unsafe fn splat(p: *const f32) -> V {
        unsafe { [*p; WIDTH] }
    }

    /// `a·b + c`, rounded twice (Rust never fuses them).
    #[inline(always)]
    pub fn madd<const EXACT: bool>(a: V, b: V, c: V) -> V {
        std::array::from_fn(|l| a[l] * b[l] + c[l])
    }

    /// # Safety
    /// `p` must be valid for `WIDTH` reads and writes.
    #[inline(always)]
    pub unsafe fn add_store(p: *mut f32, x: V) {
        for (l, x) in x.into_iter().enumerate() {
            unsafe { *p.add(l) += x };
        }
    }

    #[inline(always)]
    pub fn to_array(x: V) -> V {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                    / 16_777_216.0
                    - 0.5
            })
            .collect()
    }

    /// Every shape class: whole and partial tiles and panels, reductions shorter and
    /// longer than a block, and transposed weight views (how burn stores a loaded
    /// PyTorch `Linear`).
    #[test]
    fn packed_products_match_the_naive_sum() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (4, 8, 8),
            (9, 300, 13),
            (17, 513, 24),
            (6, 40, 384),
        ] {
            for transposed in [false, true] {
                let w = values(k * n + 3, 7);
                let (rs, cs) = if transposed {
                    (1, k as isize)
                } else {
                    (n as isize, 1)
                };
                let at = |i: usize, j: usize| w[3 + i * rs as usize + j * cs as usize];
                let lhs = values(m * k, 11);
                let init = values(m * n, 13);
                let packed = PackedWeight::pack(&w, 3, rs, cs, k, n);
                let mut dst = init.clone();
                packed.accumulate(&mut dst, &lhs, m);
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = init[i * n + j] as f64
                            + (0..k)
                                .map(|t| lhs[i * k + t] as f64 * at(t, j) as f64)
                                .sum::<f64>();
                        let got = dst[i * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "m{m} k{k} n{n} transposed {transposed} at ({i}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// The exact product is this scalar loop, bit for bit: per output, the products
    /// summed in `k` order from zero, each multiply and add rounded on its own, added
    /// onto `dst` once per [`KC`] block. Any target that keeps to it (the browser's
    /// modules, relaxed SIMD or not, and every native instruction set) gives the same
    /// bits, which is what lets the page equal `trainer predict --products int8`.
    #[test]
    fn exact_products_follow_one_order_of_operations() {
        let (m, k, n, lda, ldd) = (7, 600, 19, 610, 23);
        let w = values(k * n, 21);
        let lhs = values(m * lda, 22);
        let init = values(m * ldd, 23);
        let packed = PackedWeight::pack(&w, 0, n as isize, 1, k, n);
        let mut got = init.clone();
        packed.accumulate_exact(&mut got, ldd, &lhs, lda, m);
        let mut want = init;
        for i in 0..m {
            for j in 0..n {
                for k0 in (0..k).step_by(KC) {
                    let mut acc = 0.0f32;
                    for t in k0..(k0 + KC).min(k) {
                        let p = lhs[i * lda + t] * w[t * n + j];
                        acc += p;
                    }
                    want[i * ldd + j] += acc;
                }
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    /// Each row's sums run in the same order in a block of rows (rayon's threads
    /// take blocks, tiles take four rows) as alone: bit-identical results on any
    /// number of threads.
    #[test]
    fn each_row_independent_of_its_block() {
        let (m, k, n) = (150, 300, 24);
        let w = values(k * n, 3);
        let lhs = values(m * k, 4);
        let packed = PackedWeight::pack(&w, 0, n as isize, 1, k, n);
        let mut all = vec![0.25f32; m * n];
        packed.accumulate(&mut all, &lhs, m);
        for i in 0..m {
            let mut one = vec![0.25f32; n];
            packed.accumulate(&mut one, &lhs[i * k..(i + 1) * k], 1);
            assert_eq!(one, all[i * n..(i + 1) * n], "row {i}");
        }
    }

    /// The cache hands back the same packing for the same buffer and view, and packs
    /// again for another view of it or after the buffer changed in place.
    #[test]
    fn the_cache_follows_the_weights_buffer() {
        use burn::tensor::Shape;
        let (k, n) = (6, 10);
        let w = crate::kernels::f32_tensor(values(k * n, 3), Shape::new([k, n]));
        let first = packed_weight(&w);
        assert!(
            Arc::ptr_eq(&first, &packed_weight(&w)),
            "same buffer, same view: cached"
        );
        assert!(
            Arc::ptr_eq(&first, &packed_weight(&w.clone())),
            "a clone shares the buffer"
        );
        let t = w.transpose(0, 1);
        let other = packed_weight(&t);
        assert!(!Arc::ptr_eq(&first, &other) && (other.k(), other.n()) == (n, k));
        // An in-place update (what burn does to a uniquely owned tensor).
        drop((t, other));
        let mut w = w;
        assert!(w.is_unique());
        w.storage_mut::<f32>().iter_mut().for_each(|v| *v += 1.0);
        let updated = packed_weight(&w);
        assert!(
            !Arc::ptr_eq(&first, &updated),
            "a changed buffer is packed again"
        );
        let mut dst = vec![0.0f32; n];
        let lhs: Vec<f32> = (0..k).map(|i| (i == 0) as u8 as f32).collect();
        updated.accumulate(&mut dst, &lhs, 1);
        assert_eq!(
            dst,
            w.storage::<f32>()[..n],
            "the new packing holds the new values"
        );
    }

    #[test]
    fn an_empty_batch_is_a_no_op() {
        let packed = PackedWeight::pack(&values(12, 1), 0, 4, 1, 3, 4);
        let mut dst: Vec<f32> = vec![];
        packed.accumulate(&mut dst, &[], 0);
        assert_eq!((packed.k(), packed.n()), (3, 4));
    }
}
