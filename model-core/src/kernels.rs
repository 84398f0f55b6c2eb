//! Fused CPU kernels for inference on burn's flex backend.
//!
//! Profiling `trainer bench --what infer` showed that, once the matrix products use
//! AVX-512, a third of the encoder's time went to three things burn's generic ops do
//! one scalar element at a time: the exact GELU (`libm::erff`, 12%), flex's attention
//! (a branchy per-element softmax over a `[batch, heads, seq, seq]` mask it
//! materialises, 13%, plus scalar `expf`, 9%) and the head split/merge copies around
//! it. These kernels do the same arithmetic on the flex tensors' own buffers:
//!
//! - [`gelu`]: `x·Φ(x)` with a rational `erf` (max error ~1e-7) that the compiler
//!   vectorises, in place.
//! - [`self_attention`]: per (sequence, head), `softmax(q·kᵀ/√d + mask)·v` with two
//!   `gemm` calls reading the heads straight out of the fused QKV projection and
//!   writing the merged context, a vectorised `exp`, and no work for padding keys.
//!
//! They apply only to f32 tensors on the flex backend without autodiff (inference,
//! evaluation); everything else (training, wgpu) keeps burn's ops, and the tests
//! check both paths agree.

use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::DType;
use burn_flex::{Flex, FlexTensor, Layout};

pub mod cache;
pub mod layer;
pub mod packed;
pub mod quantized;
#[cfg(feature = "native")]
pub mod train;

/// Defines `fn $name` whose body is compiled three times on x86_64 (AVX-512, AVX2+FMA,
/// baseline; chosen at run time) and with simd128 on wasm, so that the branch-free
/// loops inside vectorise to the widest registers the CPU has.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            // Safe on wasm (no CPU to mismatch): the module already needs simd128 for
            // flex's GEMM kernels, and wasm is validated whole, so an engine without
            // SIMD never gets here.
            #[cfg(target_family = "wasm")]
            {
                #[target_feature(enable = "simd128")]
                fn simd128($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                return simd128($($arg),*);
            }
            #[allow(unreachable_code)]
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// The flex f32 primitive behind `x`, or `None` on any other backend or dtype.
fn flex_f32<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if x.device().is_autodiff() || x.dtype() != DType::F32 {
        return None;
    }
    x.clone().try_into_primitive::<Flex>().ok()
}

/// The f32 elements of a contiguous flex tensor.
pub(crate) fn f32s(t: &FlexTensor) -> &[f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("contiguous");
    &t.storage::<f32>()[start..end]
}

/// A contiguous f32 flex tensor holding `data` in `shape`.
pub(crate) fn f32_tensor(data: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// A strided f32 matrix: element `(i, j)` at `ptr + i·rs + j·cs`. (Off wasm: the
/// browser's products run on [`packed`].)
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

#[cfg(not(target_arch = "wasm32"))]
impl Mat {
    pub(crate) fn new(ptr: *const f32, rs: isize, cs: isize) -> Self {
        Self { ptr, rs, cs }
    }
}

/// `dst[m, n] = scale · lhs[m, k] · rhs[k, n]`, added onto `dst`'s values with
/// `accumulate` (else `dst` is only written), `dst`'s rows `dst_rs` apart: gemm with
/// its arguments named, for the kernels' many products.
///
/// # Safety
/// Each view must be valid for its extent (`m×k`, `k×n`, and `m×n` for writes), and
/// `dst` must not overlap the inputs.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)] // a product's shape, three matrices, two factors
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    scale: f32,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's contract is gemm's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0f32,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Run `f(i, chunk)` over the `len`-element chunks of `buf`: in parallel with rayon
/// natively, in order on wasm.
pub(crate) fn for_chunks(buf: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let len = len.max(1);
    #[cfg(all(feature = "native", not(target_family = "wasm")))]
    {
        use rayon::prelude::*;
        buf.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(not(all(feature = "native", not(target_family = "wasm"))))]
    buf.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
}

/// Exact (erf) GELU, in place on flex; as a tracked op on flex autodiff
/// (`train::gelu`, native builds); burn's `gelu` elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "native")]
    if let Some(y) = train::gelu(&x) {
        return y; // training on flex: the op with its own backward pass
    }
    let Some(mut p) = flex_f32(&x) else {
        return burn::tensor::activation::gelu(x);
    };
    drop(x); // the primitive is now the buffer's only owner: no copy-on-write
    if !p.is_contiguous() {
        p = p.to_contiguous();
    }
    let (start, end) = p
        .layout()
        .contiguous_offsets()
        .expect("contiguous after to_contiguous");
    gelu_slice(&mut p.storage_mut::<f32>()[start..end]);
    Tensor::from_primitive::<Flex>(p)
}

/// Multi-head self-attention over a fused projection.
///
/// `qkv`: `[batch, seq, 3·hidden]` laid out `[q | k | v]`, heads contiguous inside each;
/// `padding_mask`: `[batch, seq]`, true at padding. Returns the merged context
/// `[batch, seq, hidden]`, or `None` when the tensors are not on flex (the caller then
/// runs burn's attention).
pub fn self_attention(
    qkv: &Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
    heads: usize,
) -> Option<Tensor<3>> {
    let qkv = flex_f32(qkv)?;
    let mask = padding_mask
        .clone()
        .try_into_primitive::<Flex>()
        .ok()?
        .to_contiguous();
    let qkv = qkv.to_contiguous();
    let shape = qkv.layout().shape();
    let (batch, seq, width) = (shape[0], shape[1], shape[2]);
    let (start, end) = qkv.layout().contiguous_offsets()?;
    let (mstart, mend) = mask.layout().contiguous_offsets()?;
    let context = attention_slices(
        &qkv.storage::<f32>()[start..end],
        &mask.bytes()[mstart..mend],
        batch,
        seq,
        width / 3,
        heads,
    );
    let out = f32_tensor(context, [batch, seq, width / 3].into());
    Some(Tensor::from_primitive::<Flex>(out))
}

/// The arithmetic of [`self_attention`] on plain slices (`mask`: one byte per token,
/// non-zero at padding). Returns `[batch, seq, hidden]`.
pub fn attention_slices(
    qkv: &[f32],
    mask: &[u8],
    batch: usize,
    seq: usize,
    hidden: usize,
    heads: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * seq * hidden];
    attention_into(&mut out, qkv, &keep_of(mask), batch, seq, hidden, heads);
    out
}

/// 1 for a real token, 0 for padding, from a mask that is non-zero at padding:
/// computed once per batch and shared by every head (and layer).
pub(crate) fn keep_of(mask: &[u8]) -> Vec<f32> {
    mask.iter()
        .map(|&m| if m == 0 { 1.0 } else { 0.0 })
        .collect()
}

/// [`attention_slices`] into a caller's buffer `out` (`[batch, seq, hidden]`, every
/// cell overwritten), with the mask as [`keep_of`] gives it.
fn attention_into(
    out: &mut [f32],
    qkv: &[f32],
    keep: &[f32],
    batch: usize,
    seq: usize,
    hidden: usize,
    heads: usize,
) {
    assert_eq!(keep.len(), batch * seq, "mask shape");
    let spans: Vec<Span> = (0..batch)
        .map(|b| {
            let keep = &keep[b * seq..(b + 1) * seq];
            // Keys after the last real token contribute exactly zero: leave them out.
            let n_kv = keep.iter().rposition(|&k| k != 0.0).map_or(0, |i| i + 1);
            Span {
                row: b * seq,
                n_q: seq,
                keep: &keep[..n_kv],
            }
        })
        .collect();
    attention_spans(out, qkv, &spans, hidden, heads);
}

/// Attention over packed sequences: `qkv` holds only real tokens, sequence after
/// sequence (`lens[i]` rows each), and so does `out`; no mask is needed. With
/// `first_only`, only each sequence's first query (`[CLS]`) is computed, over all its
/// keys; `out`'s other rows are left as they were.
pub(crate) fn attention_packed(
    out: &mut [f32],
    qkv: &[f32],
    lens: &[usize],
    hidden: usize,
    heads: usize,
    first_only: bool,
) {
    let ones = vec![1.0f32; lens.iter().copied().max().unwrap_or(0)];
    let mut row = 0;
    let spans: Vec<Span> = lens
        .iter()
        .map(|&len| {
            let span = Span {
                row,
                n_q: if first_only { len.min(1) } else { len },
                keep: &ones[..len],
            };
            row += len;
            span
        })
        .collect();
    attention_spans(out, qkv, &spans, hidden, heads);
}

/// One sequence's rows in the `qkv` and `out` buffers.
struct Span<'a> {
    /// Its first token's row.
    row: usize,
    /// Query rows (its tokens).
    n_q: usize,
    /// 1 for a real key, 0 for padding, up to its last real token (the keys).
    keep: &'a [f32],
}

/// Every (span, head) pair, in parallel natively. `qkv`: `[rows, 3·hidden]`; `out`:
/// `[rows, hidden]`; the spans' rows are disjoint.
fn attention_spans(out: &mut [f32], qkv: &[f32], spans: &[Span], hidden: usize, heads: usize) {
    let rows = out.len() / hidden.max(1);
    assert_eq!(out.len(), rows * hidden, "context shape");
    assert_eq!(qkv.len(), rows * 3 * hidden, "qkv shape");
    assert_eq!(hidden % heads, 0, "hidden not divisible by heads");
    for s in spans {
        assert!(
            s.row + s.n_q <= rows && s.row + s.keep.len() <= rows,
            "span"
        );
    }
    let out_ptr = SyncPtr(out.as_mut_ptr());
    let job = |scratch: &mut Scratch, i: usize| {
        // SAFETY: job `i` writes only the rows of span `i / heads` and the columns of
        // head `i % heads`: disjoint from every other job's; bounds asserted above.
        unsafe {
            attention_head(
                qkv,
                out_ptr,
                scratch,
                &spans[i / heads],
                i % heads,
                hidden,
                heads,
            )
        }
    };
    #[cfg(all(feature = "native", not(target_family = "wasm")))]
    {
        use rayon::prelude::*;
        (0..spans.len() * heads)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, i| job(scratch, i));
    }
    #[cfg(not(all(feature = "native", not(target_family = "wasm"))))]
    {
        let mut scratch = Scratch::default();
        for i in 0..spans.len() * heads {
            job(&mut scratch, i);
        }
    }
}

/// One attention job's working memory, reused from head to head.
#[derive(Default)]
struct Scratch {
    /// `[seq, width]` scores, then probabilities.
    scores: Vec<f32>,
    /// `[width]`: 1 for a real key, 0 for padding and for the columns past `n_kv`.
    keep: Vec<f32>,
    /// `[seq]`: 1 / each row's sum of exponentials.
    inv_sums: Vec<f32>,
    /// In the browser: this head's keys, then values, packed for the GEMM kernel.
    #[cfg(target_arch = "wasm32")]
    packed: packed::PackedWeight,
}

/// A raw output pointer shared by the attention jobs, each writing its own cells.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub(crate) *mut f32);
// SAFETY: see `attention_slices`: jobs write disjoint cells and the buffer outlives them.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

/// One (sequence, head) pair.
///
/// # Safety
/// `out` points at a `[rows, hidden]` buffer that holds the span's rows; no other job
/// writes this pair's cells.
unsafe fn attention_head(
    qkv: &[f32],
    out: SyncPtr,
    scratch: &mut Scratch,
    span: &Span,
    h: usize,
    hidden: usize,
    heads: usize,
) {
    let d = hidden / heads;
    let row = 3 * hidden; // stride between tokens in the fused projection
    let (seq, keep) = (span.n_q, span.keep);
    let n_kv = keep.len();
    let dst = unsafe { out.0.add(span.row * hidden + h * d) };
    if n_kv == 0 {
        // Nothing to attend to: zeros, as burn's attention gives.
        for t in 0..seq {
            // SAFETY: row `t`, this head's `d` columns, inside `out`.
            unsafe { std::ptr::write_bytes(dst.add(t * hidden), 0, d) };
        }
        return;
    }
    if seq == 0 {
        return;
    }
    let base = span.row * row + h * d;
    // Rows padded to a whole number of `LANES` so the softmax runs vectorised to the
    // end; the extra columns score 0 and are masked out like padding.
    let width = n_kv.div_ceil(LANES) * LANES;
    let Scratch {
        scores,
        keep: kept,
        inv_sums,
        #[cfg(target_arch = "wasm32")]
        packed,
    } = scratch;
    scores.resize(seq * width, 0.0);
    kept.clear();
    kept.extend_from_slice(keep);
    kept.resize(width, 0.0);
    let scale = 1.0 / (d as f32).sqrt();
    // In the browser, both products run on the packed kernel (see `packed`): keys and
    // values are packed per head, the scale folded into the keys.
    #[cfg(target_arch = "wasm32")]
    {
        scores.fill(0.0);
        packed.pack_into(qkv, base + hidden, 1, row as isize, d, n_kv, scale);
        packed.accumulate_strided(scores, width, &qkv[base..], row, seq);
    }
    // SAFETY (both calls): the strides keep every index inside `qkv`, `scores` and
    // this pair's cells of `out`.
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        // scores[seq, n_kv] = scale · q[seq, d] · k[n_kv, d]ᵀ
        matmul(
            seq,
            n_kv,
            d,
            scores.as_mut_ptr(),
            width as isize,
            false,
            Mat::new(qkv[base..].as_ptr(), row as isize, 1),
            Mat::new(qkv[base + hidden..].as_ptr(), 1, row as isize),
            scale,
            gemm::Parallelism::None,
        );
    }
    // Unnormalised probabilities; each output row is divided by its sum after the
    // product instead (d values per row rather than n_kv).
    inv_sums.clear();
    for r in scores.chunks_exact_mut(width) {
        r[n_kv..].fill(0.0);
        inv_sums.push(exp_row(r, kept));
    }
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: rows `0..seq` of `out` from this pair's first cell: inside `out`, and
        // nothing else touches `out` meanwhile (one thread on wasm).
        let out = unsafe { std::slice::from_raw_parts_mut(dst, (seq - 1) * hidden + d) };
        for r in out.chunks_mut(hidden) {
            r[..d].fill(0.0);
        }
        packed.pack_into(qkv, base + 2 * hidden, row as isize, 1, n_kv, d, 1.0);
        packed.accumulate_strided(out, hidden, scores, width, seq);
    }
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        // out[seq, d] (row stride `hidden`) = probs[seq, n_kv] · v[n_kv, d]
        matmul(
            seq,
            d,
            n_kv,
            dst,
            hidden as isize,
            false,
            Mat::new(scores.as_ptr(), width as isize, 1),
            Mat::new(qkv[base + 2 * hidden..].as_ptr(), row as isize, 1),
            1.0f32,
            gemm::Parallelism::None,
        );
    }
    for (t, &inv) in inv_sums.iter().enumerate() {
        // SAFETY: row `t`, this head's `d` columns, inside `out`; no other job's.
        let out_row = unsafe { std::slice::from_raw_parts_mut(dst.add(t * hidden), d) };
        for o in out_row {
            *o *= inv;
        }
    }
}

multiversion! {
    /// The numerators of a masked softmax, in place: `row[j] = exp(row[j] - max)` for
    /// a real key (`keep[j]` 1), exactly 0 for padding (`keep[j]` 0). Returns `1 / Σ`,
    /// by which the caller scales; 0 for a row with no real key (all zeros then).
    fn exp_row(row: &mut [f32], keep: &[f32]) -> f32 {
        exp_row_body(row, keep)
    }
}

/// A dropout mask of `n` elements: each `1 / (1 - prob)` with probability `1 - prob`,
/// else 0, from a counter-based hash of (`key`, index). Independent of thread count and
/// chunking, so the same key always gives the same mask.
pub fn dropout_mask(n: usize, prob: f32, key: u64) -> Vec<f32> {
    let mut mask = vec![0.0f32; n];
    const CHUNK: usize = 1 << 16;
    for_chunks(&mut mask, CHUNK, |c, out| {
        dropout_mask_at(out, (c * CHUNK) as u64, prob, key)
    });
    mask
}

/// Elements `first..first + out.len()` of the mask [`dropout_mask`] makes, on this
/// thread: for callers that work block by block.
pub(crate) fn dropout_mask_at(out: &mut [f32], first: u64, prob: f32, key: u64) {
    let keep = (1.0 - prob as f64).clamp(0.0, 1.0);
    // Keep when the 32-bit hash is below keep·2³²; u64 so that keep = 1 keeps all.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = if keep > 0.0 { (1.0 / keep) as f32 } else { 0.0 };
    mask_chunk(out, first, key, threshold, scale)
}

multiversion! {
    fn mask_chunk(out: &mut [f32], first: u64, key: u64, threshold: u64, scale: f32) {
        let (k0, k1) = (key as u32, (key >> 32) as u32);
        for (i, o) in out.iter_mut().enumerate() {
            let c = first + i as u64;
            // Two rounds of the murmur3 finaliser over the counter, keyed twice:
            // 32-bit multiplies only, so it vectorises on AVX2 and simd128 too.
            let mut h = (c as u32) ^ k0 ^ ((c >> 32) as u32).wrapping_mul(0x9E37_79B9);
            h = fmix32(h);
            h = fmix32(h ^ k1);
            *o = if (h as u64) < threshold { scale } else { 0.0 };
        }
    }
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

// ---- vectorisable elementwise math --------------------------------------------------
//
// Branch-free bodies the compiler turns into SIMD; on x86_64 they are compiled again
// with AVX2+FMA and AVX-512 and picked at run time, on wasm they use simd128 (built in).

/// Independent partial results per loop: one AVX-512 register of f32 (two AVX2 ones,
/// four simd128 ones), so reductions vectorise at the full width.
const LANES: usize = 16;

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
pub(crate) mod tests {
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

    /// Random values in [-2, 2) from a fixed LCG: reproducible without a rand dependency.
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn fused_attention_matches_burns_attention_with_padding() {
        use burn::tensor::module::attention;
        use burn::tensor::ops::AttentionModuleOptions;
        let device = Device::flex();
        let (batch, seq, hidden, heads) = (3, 9, 16, 4);
        let d = hidden / heads;
        let qkv_data = values(batch * seq * 3 * hidden, 7);
        // Row 0 unpadded, row 1 padded at the end, row 2 with a hole in the middle
        // (not what the tokenizer makes, but the mask allows it).
        let mut mask = vec![false; batch * seq];
        for t in 6..seq {
            mask[seq + t] = true;
        }
        mask[2 * seq + 3] = true;
        let qkv =
            Tensor::<3>::from_data(TensorData::new(qkv_data, [batch, seq, 3 * hidden]), &device);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(mask, [batch, seq]), &device);
        let fused = self_attention(&qkv, &padding, heads)
            .expect("flex f32 takes the fused path")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();

        let split = qkv.reshape([batch, seq, 3 * heads, d]).swap_dims(1, 2);
        let q = split.clone().narrow(1, 0, heads);
        let k = split.clone().narrow(1, heads, heads);
        let v = split.narrow(1, 2 * heads, heads);
        let m = padding
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]);
        let reference = attention(q, k, v, Some(m), None, AttentionModuleOptions::default())
            .swap_dims(1, 2)
            .reshape([batch, seq, hidden])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let worst = fused
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "fused vs burn attention: max abs diff {worst}"
        );
    }

    #[test]
    fn fused_gelu_matches_burns_gelu() {
        let device = Device::flex();
        let data: Vec<f32> = values(4 * 1000, 3).iter().map(|v| v * 3.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(data, [4, 1000]), &device);
        let reference = burn::tensor::activation::gelu(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ours = gelu(x).into_data().try_to_vec::<f32>().unwrap();
        // Relative to max(1, |x|): inputs reach ±6, where one f32 ulp is 4.8e-7, and for
        // x near -3 `1 + erf` cancels; both sides carry their own erf's rounding.
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0f32, f32::max);
        assert!(
            worst < 5e-6,
            "fused vs burn GELU: max relative diff {worst}"
        );
    }

    #[test]
    fn the_fused_paths_leave_shared_inputs_untouched() {
        // `gelu` works in place: a tensor still referenced elsewhere must be copied.
        let device = Device::flex();
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -1.0, 2.0], [3]), &device);
        let kept = x.clone();
        let _ = gelu(x);
        assert_eq!(
            kept.into_data().try_to_vec::<f32>().unwrap(),
            vec![1.0, -1.0, 2.0]
        );
    }

    #[test]
    fn dropout_masks_keep_the_right_share_and_depend_only_on_the_key() {
        let n = 1_000_003;
        let a = dropout_mask(n, 0.1, 42);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.9).abs() < 0.002, "kept share {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        // Mean 1: dropout keeps the expected activation.
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.003, "mean {mean}");
        assert_eq!(a, dropout_mask(n, 0.1, 42), "same key, same mask");
        let b = dropout_mask(n, 0.1, 43);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / n as f64;
        // Independent masks agree where both keep or both drop: 0.81 + 0.01.
        assert!(
            (same - 0.82).abs() < 0.005,
            "masks of different keys agree at {same}"
        );
        // Neighbouring elements are not correlated.
        let pairs = a
            .windows(2)
            .filter(|w| (w[0] == 0.0) == (w[1] == 0.0))
            .count() as f64;
        assert!((pairs / (n - 1) as f64 - 0.82).abs() < 0.005);
        assert!(dropout_mask(100, 0.0, 1).iter().all(|&v| v == 1.0));
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
