//! The whole encoder stack as one inference kernel on flex's buffers.
//!
//! After the fused attention and GELU, profiling `trainer bench --what infer` showed
//! the matrix products at about 40% of the time and most of the rest in what burn's
//! generic ops do around them: a separate bias pass after every projection (so a
//! 384-wide projection ran at half the GEMM's rate), residual adds and LayerNorms as
//! fresh tensors, and the page faults and `memset`s of about ten new buffers per
//! layer. Here the real tokens of the batch are packed into one `[tokens, hidden]`
//! matrix, so padding costs no arithmetic at all (a batch padded to its longest
//! review is often a quarter padding), and each layer is five passes over three
//! scratch buffers allocated once for the whole stack:
//!
//! 1. `qkv = bias; qkv += x·W_qkv` (the GEMM accumulates onto the broadcast bias),
//! 2. `ctx = attention(qkv)`, sequence by sequence ([`super::attention::attention_packed`]),
//! 3. `x += bias; x += ctx·W_o; x = LayerNorm(x)` (residual, bias and projection in
//!    one GEMM, then the norm in place),
//! 4. `ffn = bias; ffn += x·W_i; ffn = act(ffn)`,
//! 5. `x += bias; x += ffn·W_out; x = LayerNorm(x)`.
//!
//! The arithmetic is the same as the module path's (`BertLayer::forward`), which
//! training (autodiff) and the GPU keep using; the tests check both agree at every
//! real token. Padding positions come out as zeros: the module path computes values
//! there that nothing reads (the classifier reads `[CLS]`, pooling masks padding).

use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::{Flex, FlexTensor};

use super::attention::attention_packed;
use super::precision::MatmulPrecision;
use super::quantized::QuantizedWeight;
use super::simd::in_pool;
#[cfg(not(target_arch = "wasm32"))]
use super::{Mat, matmul};
use super::{f32s, flex_f32, for_chunks, multiversion};
use crate::config::Activation;

/// A projection's weights on flex: `weight` `[d_in, d_out]` (any strides), `bias`
/// `[d_out]` contiguous.
pub struct Dense {
    weight: FlexTensor,
    bias: FlexTensor,
    d_in: usize,
    d_out: usize,
    products: MatmulPrecision,
}

impl Dense {
    /// The flex f32 buffers behind a burn `Linear` with a bias, or `None`.
    pub fn new(linear: &Linear, products: MatmulPrecision) -> Option<Self> {
        let weight = flex_f32(&linear.weight.val())?;
        let bias = flex_f32(&linear.bias.as_ref()?.val())?.to_contiguous();
        let shape = weight.layout().shape();
        let (d_in, d_out) = (shape[0], shape[1]);
        (weight.layout().num_dims() == 2 && bias.layout().num_elements() == d_out).then_some(Self {
            weight,
            bias,
            d_in,
            d_out,
            products,
        })
    }

    fn bias(&self) -> &[f32] {
        f32s(&self.bias)
    }

    /// `dst[m, d_out] += lhs[m, d_in] · weight`, both row-major and contiguous.
    fn accumulate(&self, dst: &mut [f32], lhs: &[f32], m: usize) {
        if self.products == MatmulPrecision::Int8 {
            let q = super::cache::derived(&self.weight, QuantizedWeight::quantize);
            return q.accumulate(dst, lhs, m);
        }
        // In the browser: the weight packed once, and a kernel made for one wasm thread.
        #[cfg(target_arch = "wasm32")]
        super::packed::packed_weight(&self.weight).accumulate(dst, lhs, m);
        #[cfg(not(target_arch = "wasm32"))]
        self.accumulate_gemm(dst, lhs, m);
    }

    /// [`Self::accumulate`] through gemm: its AVX-512/AVX2 kernels, on rayon's threads.
    #[cfg(not(target_arch = "wasm32"))]
    fn accumulate_gemm(&self, dst: &mut [f32], lhs: &[f32], m: usize) {
        assert_eq!(dst.len(), m * self.d_out, "projection output shape");
        assert_eq!(lhs.len(), m * self.d_in, "projection input shape");
        let layout = self.weight.layout();
        let (rs, cs) = (layout.strides()[0], layout.strides()[1]);
        let data = self.weight.storage::<f32>();
        // Both extreme corners of the weight view lie inside its storage.
        let last = layout.start_offset() as isize
            + (self.d_in as isize - 1) * rs
            + (self.d_out as isize - 1) * cs;
        assert!(last >= 0 && (last as usize) < data.len(), "weight view");
        // SAFETY: the asserts above bound every index gemm touches in all three
        // matrices; `dst` and `lhs` are distinct slices.
        unsafe {
            matmul(
                m,
                self.d_out,
                self.d_in,
                dst.as_mut_ptr(),
                self.d_out as isize,
                true,
                Mat::new(lhs.as_ptr(), self.d_in as isize, 1),
                Mat::new(data.as_ptr().add(layout.start_offset()), rs, cs),
                1.0f32,
                PARALLELISM,
            );
        }
    }
}

/// A LayerNorm's scale and shift on flex.
pub struct Norm {
    gamma: FlexTensor,
    beta: FlexTensor,
    eps: f32,
}

impl Norm {
    /// The flex f32 buffers behind a burn `LayerNorm` with a bias, or `None`.
    /// `eps` is the config's (burn keeps its own private).
    pub fn new(norm: &LayerNorm, eps: f64) -> Option<Self> {
        Some(Self {
            gamma: flex_f32(&norm.gamma.val())?.to_contiguous(),
            beta: flex_f32(&norm.beta.as_ref()?.val())?.to_contiguous(),
            eps: eps as f32,
        })
    }

    fn gamma(&self) -> &[f32] {
        f32s(&self.gamma)
    }

    fn beta(&self) -> &[f32] {
        f32s(&self.beta)
    }
}

/// One encoder layer's parameters, as the kernel reads them.
pub struct LayerParams {
    /// Fused `[q | k | v]` projection.
    pub qkv: Dense,
    /// Attention output projection.
    pub attention_output: Dense,
    /// LayerNorm after attention.
    pub attention_norm: Norm,
    /// Feed-forward up-projection.
    pub intermediate: Dense,
    /// Feed-forward down-projection.
    pub output: Dense,
    /// LayerNorm after the feed-forward block.
    pub output_norm: Norm,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward activation.
    pub activation: Activation,
}

impl LayerParams {
    /// Whether the shapes chain: `hidden → 3·hidden`, `hidden → hidden`,
    /// `hidden → ffn → hidden`, LayerNorms of `hidden`.
    fn fits(&self, hidden: usize) -> bool {
        let dense = |d: &Dense, i, o| d.d_in == i && d.d_out == o;
        let ffn = self.intermediate.d_out;
        let norm = |n: &Norm| n.gamma().len() == hidden && n.beta().len() == hidden;
        self.heads > 0
            && hidden.is_multiple_of(self.heads)
            && dense(&self.qkv, hidden, 3 * hidden)
            && dense(&self.attention_output, hidden, hidden)
            && dense(&self.intermediate, hidden, ffn)
            && dense(&self.output, ffn, hidden)
            && norm(&self.attention_norm)
            && norm(&self.output_norm)
    }
}

/// Run `layers` over `x` (`[batch, seq, hidden]`; `padding_mask` `[batch, seq]`, true
/// at padding). `Err(x)` gives the input back untouched when it is not an f32 flex
/// tensor without autodiff or the shapes do not chain, for the caller's module path.
#[allow(clippy::result_large_err)] // handing the tensor back is the point; no copy is made
pub fn encoder(
    layers: &[LayerParams],
    x: Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
) -> Result<Tensor<3>, Tensor<3>> {
    let (mut p, mut tokens) = Tokens::gather(layers, x, padding_mask)?;
    let hidden = tokens.hidden;
    let x = in_pool(|| tokens.run(layers, false));
    // Back to `[batch, seq, hidden]`, in the input's buffer when it is ours alone.
    let (start, end) = p.layout().contiguous_offsets().expect("contiguous");
    let out = &mut p.storage_mut::<f32>()[start..end];
    out.fill(0.0);
    for (src, &r) in x.chunks_exact(hidden).zip(&tokens.real) {
        out[r * hidden..(r + 1) * hidden].copy_from_slice(src);
    }
    Ok(Tensor::from_primitive::<Flex>(p))
}

/// [`encoder`]'s final state at each sequence's first position (`[CLS]`) only:
/// `[batch, hidden]`, what the pooler reads.
///
/// The last layer then needs every token's keys and values but only the first
/// token's query, attention row, output projection and feed-forward block: for
/// MiniLM's six layers that skips 12% of the stack's matrix products and a sixth of
/// its attention, and the result is the same (the other positions' final states feed
/// nothing the classifier reads). A sequence with no real token gets zeros.
#[allow(clippy::result_large_err)] // as `encoder`
pub fn encoder_first_token(
    layers: &[LayerParams],
    x: Tensor<3>,
    padding_mask: &Tensor<2, Bool>,
) -> Result<Tensor<2>, Tensor<3>> {
    let (_, mut tokens) = Tokens::gather(layers, x, padding_mask)?;
    let (batch, hidden) = (tokens.lens.len(), tokens.hidden);
    let first = in_pool(|| tokens.run(layers, true));
    let mut out = vec![0.0f32; batch * hidden];
    let non_empty = tokens.lens.iter().enumerate().filter(|&(_, &n)| n > 0);
    for (src, (b, _)) in first.chunks_exact(hidden).zip(non_empty) {
        // As in `encoder`, a padding position gets zeros (here: a mask that hides
        // position 0, whose first real token is elsewhere).
        if tokens.real.binary_search(&(b * tokens.seq)).is_ok() {
            out[b * hidden..(b + 1) * hidden].copy_from_slice(src);
        }
    }
    let out = super::f32_tensor(out, burn::tensor::Shape::new([batch, hidden]));
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// The batch's real tokens, packed: `x` is `[real.len(), hidden]`.
struct Tokens {
    x: Vec<f32>,
    /// Each packed row's row in the `[batch·seq, hidden]` input.
    real: Vec<usize>,
    /// Real tokens per sequence.
    lens: Vec<usize>,
    seq: usize,
    hidden: usize,
}

impl Tokens {
    /// The real rows of `x` (and `x`'s contiguous f32 primitive, for reuse as the
    /// output), or `Err(x)` untouched when the kernel does not apply.
    #[allow(clippy::result_large_err)] // as `encoder`
    fn gather(
        layers: &[LayerParams],
        x: Tensor<3>,
        padding_mask: &Tensor<2, Bool>,
    ) -> Result<(FlexTensor, Self), Tensor<3>> {
        let [batch, seq, hidden] = x.dims();
        if layers.iter().any(|l| !l.fits(hidden)) || flex_f32(&x).is_none() {
            return Err(x);
        }
        let Ok(mask) = padding_mask.clone().try_into_primitive::<Flex>() else {
            return Err(x);
        };
        let mask = mask.to_contiguous();
        let Some((ms, me)) = mask.layout().contiguous_offsets() else {
            return Err(x);
        };
        // Real tokens, in order: their rows in `x`, and how many each sequence has.
        let padding = &mask.bytes()[ms..me];
        let real: Vec<usize> = (0..batch * seq).filter(|&i| padding[i] == 0).collect();
        let lens: Vec<usize> = padding
            .chunks(seq.max(1))
            .map(|s| s.iter().filter(|&&m| m == 0).count())
            .collect();
        let Ok(mut p) = x.try_into_primitive::<Flex>() else {
            unreachable!("checked by flex_f32 above");
        };
        debug_assert_eq!(p.dtype(), DType::F32);
        if !p.is_contiguous() {
            p = p.to_contiguous();
        }
        let (start, end) = p.layout().contiguous_offsets().expect("contiguous");
        let mut x = vec![0.0f32; real.len() * hidden];
        let input = &p.storage::<f32>()[start..end];
        for (dst, &r) in x.chunks_exact_mut(hidden).zip(&real) {
            dst.copy_from_slice(&input[r * hidden..(r + 1) * hidden]);
        }
        let tokens = Self {
            x,
            real,
            lens,
            seq,
            hidden,
        };
        Ok((p, tokens))
    }

    /// Every layer over the packed tokens: their final states, or with `first_only`
    /// the first token's of each non-empty sequence (see [`encoder_first_token`]).
    fn run(&mut self, layers: &[LayerParams], first_only: bool) -> Vec<f32> {
        let mut x = std::mem::take(&mut self.x);
        let (hidden, lens) = (self.hidden, &self.lens);
        let m = self.real.len();
        let ffn = layers
            .iter()
            .map(|l| l.intermediate.d_out)
            .max()
            .unwrap_or(0);
        let mut qkv = vec![0.0f32; m * 3 * hidden];
        let mut ctx = vec![0.0f32; m * hidden];
        let mut inter = vec![0.0f32; m * ffn];
        for (i, l) in layers.iter().enumerate() {
            fill_rows(&mut qkv, l.qkv.bias());
            l.qkv.accumulate(&mut qkv, &x, m);
            if first_only && i + 1 == layers.len() {
                attention_packed(&mut ctx, &qkv, lens, hidden, l.heads, true);
                // Only the first rows go on: gather them, and their contexts.
                let firsts: Vec<usize> = lens
                    .iter()
                    .scan(0, |row, &n| {
                        let r = *row;
                        *row += n;
                        Some((n > 0).then_some(r))
                    })
                    .flatten()
                    .collect();
                let rows = |buf: &[f32]| -> Vec<f32> {
                    firsts
                        .iter()
                        .flat_map(|&r| &buf[r * hidden..(r + 1) * hidden])
                        .copied()
                        .collect()
                };
                let (mut xs, cs) = (rows(&x), rows(&ctx));
                let n = firsts.len();
                l.finish(&mut xs, &cs, &mut inter[..n * l.intermediate.d_out], n);
                return xs;
            }
            attention_packed(&mut ctx, &qkv, lens, hidden, l.heads, false);
            l.finish(&mut x, &ctx, &mut inter[..m * l.intermediate.d_out], m);
        }
        x
    }
}

impl LayerParams {
    /// The layer after attention, over `m` rows: `x += bias + ctx·W_o`, LayerNorm,
    /// `inter = act(bias + x·W_i)`, `x += bias + inter·W_out`, LayerNorm.
    fn finish(&self, x: &mut [f32], ctx: &[f32], inter: &mut [f32], m: usize) {
        add_rows(x, self.attention_output.bias());
        self.attention_output.accumulate(x, ctx, m);
        layer_norm_rows(x, &self.attention_norm);
        fill_rows(inter, self.intermediate.bias());
        self.intermediate.accumulate(inter, x, m);
        activate(inter, self.intermediate.d_out, self.activation);
        add_rows(x, self.output.bias());
        self.output.accumulate(x, inter, m);
        layer_norm_rows(x, &self.output_norm);
    }
}

/// Threads for the projections: all of rayon's with the `native` feature.
#[cfg(feature = "native")]
const PARALLELISM: gemm::Parallelism = gemm::Parallelism::Rayon(0);
#[cfg(all(not(feature = "native"), not(target_arch = "wasm32")))]
const PARALLELISM: gemm::Parallelism = gemm::Parallelism::None;

/// Run `f` over blocks of whole rows of `buf` (row length `width`), in parallel
/// natively. Blocks are about 64 KiB: enough work per task, and cache-sized.
fn for_row_blocks(buf: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
    let rows = (16_384 / width.max(1)).max(1);
    for_chunks(buf, rows * width, |_, block| f(block));
}

/// Every row of `buf` set to `row`.
fn fill_rows(buf: &mut [f32], row: &[f32]) {
    for_row_blocks(buf, row.len(), |block| {
        for r in block.chunks_exact_mut(row.len()) {
            r.copy_from_slice(row);
        }
    });
}

/// `row` added to every row of `buf`.
fn add_rows(buf: &mut [f32], row: &[f32]) {
    for_row_blocks(buf, row.len(), |block| add_rows_block(block, row));
}

multiversion! {
    fn add_rows_block(block: &mut [f32], row: &[f32]) {
        for r in block.chunks_exact_mut(row.len()) {
            for (v, b) in r.iter_mut().zip(row) {
                *v += b;
            }
        }
    }
}

/// `norm` over the last dimension of `x` with this module's LayerNorm, whose sums
/// have one order on every target (burn's reduces in its own SIMD order, which
/// differs between the browser and native builds): the embeddings' LayerNorm, so the
/// stack's first int8 product quantizes the same bits everywhere. `Err(x)` untouched
/// when `x` is not an f32 flex tensor without autodiff or `norm` does not fit.
#[allow(clippy::result_large_err)] // as `encoder`
pub fn layer_norm<const D: usize>(
    norm: &LayerNorm,
    eps: f64,
    x: Tensor<D>,
) -> Result<Tensor<D>, Tensor<D>> {
    let width = x.dims()[D - 1];
    let Some(params) = Norm::new(norm, eps) else {
        return Err(x);
    };
    if params.gamma().len() != width || flex_f32(&x).is_none() {
        return Err(x);
    }
    let Ok(mut p) = x.try_into_primitive::<Flex>() else {
        unreachable!("checked by flex_f32 above");
    };
    if !p.is_contiguous() {
        p = p.to_contiguous();
    }
    // In the input's buffer when it is ours alone (flex copies a shared one first).
    let (start, end) = p.layout().contiguous_offsets().expect("contiguous");
    layer_norm_rows(&mut p.storage_mut::<f32>()[start..end], &params);
    Ok(Tensor::from_primitive::<Flex>(p))
}

/// LayerNorm of every row of `buf`, in place.
fn layer_norm_rows(buf: &mut [f32], norm: &Norm) {
    let (gamma, beta) = (norm.gamma(), norm.beta());
    for_row_blocks(buf, gamma.len(), |block| {
        layer_norm_block(block, gamma, beta, norm.eps)
    });
}

multiversion! {
    fn layer_norm_block(block: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        let n = width / 8 * 8;
        for row in block.chunks_exact_mut(width) {
            // Two passes (mean, then centred squares) as PyTorch does, in eight
            // partial sums so the reductions vectorise.
            let mut acc = [0.0f32; 8];
            for c in row[..n].chunks_exact(8) {
                for i in 0..8 {
                    acc[i] += c[i];
                }
            }
            let mean = (acc.iter().sum::<f32>() + row[n..].iter().sum::<f32>()) / width as f32;
            let mut acc = [0.0f32; 8];
            for c in row[..n].chunks_exact(8) {
                for i in 0..8 {
                    let d = c[i] - mean;
                    acc[i] += d * d;
                }
            }
            let tail: f32 = row[n..].iter().map(|v| (v - mean) * (v - mean)).sum();
            let var = (acc.iter().sum::<f32>() + tail) / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

/// The feed-forward activation over `buf` (rows of `width`), in place.
fn activate(buf: &mut [f32], width: usize, activation: Activation) {
    match activation {
        Activation::Gelu => for_row_blocks(buf, width, super::gelu_slice),
        Activation::GeluTanh => for_row_blocks(buf, width, gelu_tanh_block),
        Activation::Relu => for_row_blocks(buf, width, relu_block),
    }
}

multiversion! {
    /// `x·σ(2u)` with `u = √(2/π)(x + 0.044715x³)`: the same function as
    /// `0.5x(1 + tanh u)`, written with one `exp`.
    fn gelu_tanh_block(x: &mut [f32]) {
        const K: f32 = 0.797_884_6; // √(2/π)
        for v in x.iter_mut() {
            let t = *v;
            let u = K * (t + 0.044_715 * t * t * t);
            // exp(-2u) only for u ≥ 0 and exp(2u) otherwise: arguments stay ≤ 0.
            let e = super::exp(-2.0 * u.abs());
            let s = if u >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            *v = t * s;
        }
    }
}

multiversion! {
    fn relu_block(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = v.max(0.0);
        }
    }
}
