//! 4-bit storage of an embedding table, in one place: the rule, the packing and the
//! decoding that the export (`--dtype int8-emb4`) and the loader share.
//!
//! Why only the word embeddings: they are half of MiniLM's parameters but only ever
//! *looked up*, one row per token, and the looked-up row is summed with the position
//! and type embeddings and normalised by LayerNorm, so a coarser grid costs little
//! (the accuracy on the full test set is in `docs/PERFORMANCE.md`). The projections
//! stay int8, where the products need the finer grid.
//!
//! The rule: symmetric, one f32 scale per group of [`GROUP`] consecutive values of a
//! row, `w ≈ t · q` with `t = max|w| / 7` and `q = round(w / t)` in `-7..=7`. Two
//! values per byte, the first of each pair in the low nibble, as 4-bit two's
//! complement. Quantizing decoded values again gives back the same bytes and scales.

/// Values per scale. 32 keeps one outlier from coarsening a whole 384-wide row.
pub const GROUP: usize = 32;

const LEVELS: f32 = 7.0;

/// `[rows, cols]` values (row-major) as packed nibbles (`rows · cols / 2` bytes) and
/// `rows · cols / GROUP` scales. `cols` must be a multiple of [`GROUP`].
pub fn quantize(data: &[f32], cols: usize) -> (Vec<u8>, Vec<f32>) {
    debug_assert!(cols.is_multiple_of(GROUP) && data.len().is_multiple_of(cols.max(1)));
    let mut packed = Vec::with_capacity(data.len() / 2);
    let mut scales = Vec::with_capacity(data.len() / GROUP);
    for group in data.chunks_exact(GROUP) {
        let max = group.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = max / LEVELS;
        scales.push(scale);
        let q = |x: f32| -> u8 {
            let v = if scale > 0.0 {
                (x / scale).round().clamp(-LEVELS, LEVELS) as i8
            } else {
                0
            };
            (v as u8) & 0x0f
        };
        packed.extend(group.chunks_exact(2).map(|p| q(p[0]) | (q(p[1]) << 4)));
    }
    (packed, scales)
}

/// The `[rows, cols]` f32 values of packed nibbles and their scales, or why they do not
/// fit together (a message for the caller to wrap with the file and tensor name).
pub fn dequantize(packed: &[u8], scales: &[f32], cols: usize) -> Result<Vec<f32>, String> {
    if cols == 0 || !cols.is_multiple_of(GROUP) {
        return Err(format!(
            "a 4-bit row of {cols} values is not a whole number of groups of {GROUP}"
        ));
    }
    let values = packed.len() * 2;
    if values / GROUP != scales.len() || !values.is_multiple_of(cols) {
        return Err(format!(
            "{} packed bytes ({values} values) need {} scales (one per {GROUP}), found {}",
            packed.len(),
            values / GROUP,
            scales.len()
        ));
    }
    let nibble = |b: u8| (((b << 4) as i8) >> 4) as f32;
    // Written in place, group by group (pushing value by value did not vectorise).
    let mut out = vec![0.0f32; values];
    for ((dst, bytes), &scale) in out
        .chunks_exact_mut(GROUP)
        .zip(packed.chunks_exact(GROUP / 2))
        .zip(scales)
    {
        for (pair, &b) in dst.chunks_exact_mut(2).zip(bytes) {
            pair[0] = nibble(b) * scale;
            pair[1] = nibble(b >> 4) * scale;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_grid_and_requantizes_exactly() {
        let cols = 2 * GROUP;
        let data: Vec<f32> = (0..3 * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let (packed, scales) = quantize(&data, cols);
        assert_eq!(packed.len(), data.len() / 2);
        assert_eq!(scales.len(), data.len() / GROUP);
        let back = dequantize(&packed, &scales, cols).unwrap();
        for (g, (orig, dec)) in data.chunks(GROUP).zip(back.chunks(GROUP)).enumerate() {
            let t = scales[g];
            for (a, b) in orig.iter().zip(dec) {
                assert!((a - b).abs() <= t / 2.0 + 1e-6, "{a} vs {b} (scale {t})");
            }
            // The group's largest magnitude is on the grid's end.
            let max = orig.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!((dec.iter().fold(0.0f32, |m, x| m.max(x.abs())) - max).abs() < 1e-5);
        }
        assert_eq!(quantize(&back, cols), (packed, scales));
    }

    #[test]
    fn negative_nibbles_and_zero_groups_decode() {
        let mut data = vec![0.0f32; GROUP];
        data.extend((0..GROUP).map(|i| if i % 2 == 0 { -0.7 } else { 0.1 }));
        let (packed, scales) = quantize(&data, GROUP);
        assert_eq!(scales[0], 0.0);
        let back = dequantize(&packed, &scales, GROUP).unwrap();
        assert!(back[..GROUP].iter().all(|&x| x == 0.0));
        assert!((back[GROUP] + 0.7).abs() < 1e-6 && (back[GROUP + 1] - 0.1).abs() < 1e-6);
    }

    #[test]
    fn mismatched_scales_are_an_error() {
        let (packed, scales) = quantize(&vec![1.0; 2 * GROUP], 2 * GROUP);
        let err = dequantize(&packed, &scales[..1], 2 * GROUP).unwrap_err();
        assert!(err.contains("need 2 scales"), "{err}");
        assert!(dequantize(&packed, &scales, 20).is_err());
    }
}
