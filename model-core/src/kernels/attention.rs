//! Multi-head self-attention for inference on flex: per (sequence, head),
//! `softmax(q·kᵀ/√d + mask)·v` with two products reading the heads straight out of
//! the fused QKV projection and writing the merged context, a vectorised `exp`, and no
//! work for padding keys. burn's generic attention materialises a
//! `[batch, heads, seq, seq]` mask and runs a branchy scalar softmax over it.

use burn::prelude::*;
use burn_flex::Flex;

use super::math::exp_row;
use super::packed::PackedWeight;
use super::simd::{LANES, SyncPtr, f32_tensor, flex_f32};

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
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        (0..spans.len() * heads)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, i| job(scratch, i));
    }
    #[cfg(not(feature = "threads"))]
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
    /// This head's keys, then values, packed for the product kernel.
    packed: PackedWeight,
    /// `[seq, d]`: this head's context before the division by the sums.
    context: Vec<f32>,
}

/// One (sequence, head) pair.
///
/// Both products run on [`PackedWeight::accumulate_exact`] on every target (keys
/// packed with the scale folded in, then values): its sums have one order and no
/// fused multiply-adds, so the context, and the int8 product that quantizes it next,
/// come out the same in the browser and natively.
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
        packed,
        context,
    } = scratch;
    scores.clear();
    scores.resize(seq * width, 0.0);
    kept.clear();
    kept.extend_from_slice(keep);
    kept.resize(width, 0.0);
    let scale = 1.0 / (d as f32).sqrt();
    // scores[seq, n_kv] = q[seq, d] · (scale · k[n_kv, d])ᵀ
    packed.pack_into(qkv, base + hidden, 1, row as isize, d, n_kv, scale);
    packed.accumulate_exact(scores, width, &qkv[base..], row, seq);
    // Unnormalised probabilities; each output row is divided by its sum after the
    // product instead (d values per row rather than n_kv).
    inv_sums.clear();
    for r in scores.chunks_exact_mut(width) {
        r[n_kv..].fill(0.0);
        inv_sums.push(exp_row(r, kept));
    }
    // context[seq, d] = probs[seq, n_kv] · v[n_kv, d]
    context.clear();
    context.resize(seq * d, 0.0);
    packed.pack_into(qkv, base + 2 * hidden, row as isize, 1, n_kv, d, 1.0);
    packed.accumulate_exact(context, d, scores, width, seq);
    for (t, (c, &inv)) in context.chunks_exact(d).zip(inv_sums.iter()).enumerate() {
        // SAFETY: row `t`, this head's `d` columns, inside `out`; no other job's.
        let out_row = unsafe { std::slice::from_raw_parts_mut(dst.add(t * hidden), d) };
        for (o, &v) in out_row.iter_mut().zip(c) {
            *o = v * inv;
        }
    }
}
#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::self_attention;
    use crate::kernels::simd::values;

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
}
