//! Fused CPU kernels for inference on burn's flex backend.
//!
//! Profiling `trainer bench --what infer` showed that, once the matrix products use
//! AVX-512, a third of the encoder's time went to three things burn's generic ops do
//! one scalar element at a time: the exact GELU (`libm::erff`, 12%), flex's attention
//! (a branchy per-element softmax over a `[batch, heads, seq, seq]` mask it
//! materialises, 13%, plus scalar `expf`, 9%) and the head split/merge copies around
//! it. These kernels do the same arithmetic on the flex tensors' own buffers:
//!
//! - [`gelu::gelu`]: `x·Φ(x)` with a rational `erf` (max error ~1e-7) that the compiler
//!   vectorises, in place.
//! - [`attention::self_attention`]: per (sequence, head), `softmax(q·kᵀ/√d + mask)·v` with two
//!   products on the packed kernel reading the heads straight out of the fused QKV
//!   projection and writing the merged context, a vectorised `exp`, and no work for
//!   padding keys.
//!
//! They apply only to f32 tensors on the flex backend without autodiff (inference,
//! evaluation); everything else (training, wgpu) keeps burn's ops, and the tests
//! check both paths agree.
//!
//! One file per op and per target, each with its reference test beside it:
//! - [`simd`]: `multiversion!`, flex buffers, gemm, chunked parallel loops;
//! - [`math`]: `exp`, `erf`, GELU and softmax numerators on slices;
//! - [`gelu`], [`attention`], [`dropout`]: the inference ops and the dropout masks;
//! - [`stack`]: the whole encoder stack as one inference kernel;
//! - [`packed`], [`quantized`]: the projections' f32 (browser) and int8 products, and
//!   [`precision`], which of the two a model computes with;
//! - [`cache`]: forms derived once from a weight;
//! - `train` (native): the training ops, each an autodiff node with its backward pass;
//! - `gpu` (the `gpu` feature): cubecl kernels for inference on burn's GPU runtimes.
//!
//! Nothing here imports the model: [`crate::ops`] decides which of these a forward
//! pass runs.

pub mod attention;
pub mod cache;
pub mod dropout;
pub mod gelu;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod math;
pub mod packed;
pub mod precision;
pub mod quantized;
pub mod simd;
pub mod stack;
#[cfg(feature = "train")]
pub mod train;

pub use attention::{attention_slices, self_attention};
pub use dropout::{dropout_key, dropout_mask};
pub use math::{erf, exp, gelu_slice};
pub use simd::threads;
#[cfg(any(not(target_arch = "wasm32"), feature = "train"))]
pub(crate) use simd::{Mat, matmul};
pub(crate) use simd::{f32_tensor, f32s, flex_f32, for_chunks, multiversion};
