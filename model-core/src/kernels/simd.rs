//! The plumbing every CPU kernel shares: compiling a loop once per instruction set
//! (`multiversion!`), the f32 buffers behind flex tensors, gemm with named arguments,
//! and chunked parallel loops (on rayon's threads with the `threads` feature, in
//! order otherwise).

use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::DType;
use burn_flex::{Flex, FlexTensor, Layout};

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

/// Independent partial results per loop: one AVX-512 register of f32 (two AVX2 ones,
/// four simd128 ones), so reductions vectorise at the full width.
pub(crate) const LANES: usize = 16;

/// The flex f32 primitive behind `x`, or `None` on any other backend or dtype.
pub(crate) fn flex_f32<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
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

/// A strided f32 matrix: element `(i, j)` at `ptr + i·rs + j·cs`. (In the browser
/// only the training ops use it: inference's products run on [`super::packed`].)
#[cfg(any(not(target_arch = "wasm32"), feature = "train"))]
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

#[cfg(any(not(target_arch = "wasm32"), feature = "train"))]
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
#[cfg(any(not(target_arch = "wasm32"), feature = "train"))]
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

/// Run `f(i, chunk)` over the `len`-element chunks of `buf`: in parallel on rayon's
/// threads with the `threads` feature (natively, and the browser's threaded module),
/// in order otherwise. Each chunk's result is the same either way.
pub(crate) fn for_chunks(buf: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let len = len.max(1);
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        buf.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(not(feature = "threads"))]
    buf.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
}

/// [`for_chunks`] with a scratch value per worker (`init` makes one; each worker
/// reuses its own across chunks), for jobs that need a buffer of their own.
#[cfg(feature = "train")]
pub(crate) fn for_chunks_with<S>(
    buf: &mut [f32],
    len: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) {
    let len = len.max(1);
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        buf.par_chunks_mut(len)
            .enumerate()
            .for_each_init(init, |s, (i, c)| f(s, i, c));
    }
    #[cfg(not(feature = "threads"))]
    {
        let mut s = init();
        buf.chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(&mut s, i, c));
    }
}

/// `f(scratch, i)` for every `i` in `0..n`, in parallel with the `threads` feature,
/// with a scratch value per worker as in [`for_chunks_with`].
#[cfg(feature = "train")]
pub(crate) fn for_each_with<S>(
    n: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize) + Sync + Send,
) {
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each_init(init, f);
    }
    #[cfg(not(feature = "threads"))]
    {
        let mut s = init();
        (0..n).for_each(|i| f(&mut s, i));
    }
}

/// `fold` over the `len`-element chunks of `buf` into per-worker accumulators made by
/// `init`, combined with `merge`: in parallel with the `threads` feature, one
/// accumulator in order otherwise.
#[cfg(feature = "train")]
pub(crate) fn fold_chunks<A: Send>(
    buf: &[f32],
    len: usize,
    init: impl Fn() -> A + Sync + Send,
    fold: impl Fn(&mut A, &[f32]) + Sync + Send,
    merge: impl Fn(&mut A, A) + Sync + Send,
) -> A {
    let len = len.max(1);
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        buf.par_chunks(len)
            .fold(&init, |mut a, c| {
                fold(&mut a, c);
                a
            })
            .reduce(&init, |mut a, b| {
                merge(&mut a, b);
                a
            })
    }
    #[cfg(not(feature = "threads"))]
    {
        let _ = &merge;
        let mut a = init();
        buf.chunks(len).for_each(|c| fold(&mut a, c));
        a
    }
}

/// `f()`, run on one of rayon's threads with the `threads` feature (inline when
/// already on one, or without the feature). A pass such as the encoder stack makes
/// dozens of [`for_chunks`] calls; from a thread outside the pool (the page's Web
/// Worker, a native main thread) each one is handed to the pool and waited for, two
/// cross-thread wake-ups per call, which in the browser (`Atomics.wait`) cost a
/// measurable share of a review. Inside the pool the calls split work by stealing.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "threads")]
    return rayon::scope(|_| f());
    #[cfg(not(feature = "threads"))]
    f()
}

/// How many threads [`for_chunks`] spreads work over: rayon's pool with the `threads`
/// feature, else one. Kernels size their row blocks by it, so that one review's
/// few hundred rows still make enough blocks to keep every thread busy.
#[cfg(feature = "threads")]
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// One: without the `threads` feature [`for_chunks`] runs in order.
#[cfg(not(feature = "threads"))]
pub fn threads() -> usize {
    1
}

/// Rows per parallel block for `m` rows: at most `most`, a multiple of `multiple`,
/// and small enough for about four blocks per thread.
pub(crate) fn block_rows(m: usize, most: usize, multiple: usize) -> usize {
    let threads = threads();
    if threads <= 1 {
        return most;
    }
    most.min(m.div_ceil(4 * threads).next_multiple_of(multiple))
        .max(multiple)
}

/// A raw output pointer shared by parallel jobs, each writing its own cells.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub(crate) *mut f32);
// SAFETY: every user has its jobs write disjoint cells of a buffer that outlives them.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

/// Random values in [-2, 2) from a fixed LCG: reproducible test inputs without a rand
/// dependency, shared by the kernels' tests.
#[cfg(test)]
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
