//! Where Hugging Face's tensor layout and this crate's differ, in both directions:
//! loading fuses a layer's query, key and value projections into one `[h, 3h]` weight
//! (one GEMM instead of three), and export splits it again, so `transformers` loads
//! what we trained unchanged. PyTorch's `nn.Linear` stores `[out, in]`; burn's `Linear`
//! stores `[in, out]`.

/// The three projections of `{prefix}.attention.self.*`, in the fused weight's order.
pub const QKV_PARTS: [&str; 3] = ["query", "key", "value"];

/// The checkpoint name of one of a layer's attention projections.
pub fn qkv_name(layer_prefix: &str, part: &str) -> String {
    format!("{layer_prefix}.attention.self.{part}")
}

/// The three `[h, h]` PyTorch weights of burn's fused `[h, 3h]` one (`[in, out]`,
/// `[q | k | v]`), which loading makes by stacking them as rows and viewing the
/// result transposed ([`crate::weights::linear_weight`]).
pub fn split_qkv(fused: &[f32], h: usize) -> [Vec<f32>; 3] {
    assert_eq!(fused.len(), h * 3 * h, "a {h}×{} fused weight", 3 * h);
    std::array::from_fn(|k| {
        let mut w = vec![0.0f32; h * h];
        for i in 0..h {
            for o in 0..h {
                w[o * h + i] = fused[i * 3 * h + k * h + o];
            }
        }
        w
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_undoes_the_loaders_fusion_of_q_k_v_side_by_side() {
        let h = 3;
        let parts: Vec<Vec<f32>> = (0..3)
            .map(|k| (0..h * h).map(|i| (k * 100 + i) as f32).collect())
            .collect();
        // As the loader fuses them: stacked `[out, in]` rows, seen as `[in, 3·out]`.
        let fused = crate::weights::transpose(&parts.concat(), 3 * h, h);
        // Row `i` (input feature), column `k·h + o` (output `o` of part `k`) is
        // PyTorch's `[o, i]` of part `k`.
        assert_eq!(fused[3 * h + h + 2], parts[1][2 * h + 1]);
        assert_eq!(split_qkv(&fused, h).to_vec(), parts);
    }
}
