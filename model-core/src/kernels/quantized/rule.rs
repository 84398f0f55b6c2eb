//! The int8 rule, in one place: symmetric, one scale per output channel,
//! `w ≈ t · q` with `t = max|w| / 127` and `q = round(w / t)` in `-127..=127`.
//!
//! `trainer export --dtype int8` stores weights by this rule (one scale per row of a
//! Hugging Face `[out, in]` matrix) and the int8 products quantize by it (one scale per
//! output column of a `[in, out]` weight), so quantizing an int8 export again gives
//! back its stored integers and scales exactly.

/// The scale of a channel whose largest magnitude is `max_abs` (0 for an all-zero
/// channel, whose values all quantize to 0).
pub fn channel_scale(max_abs: f32) -> f32 {
    max_abs / 127.0
}

/// `x` quantized with `scale`.
pub fn quantize(x: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (x / scale).round().clamp(-127.0, 127.0) as i8
    } else {
        0
    }
}

/// One channel's values quantized: the integers and the scale.
pub fn quantize_channel(values: &[f32]) -> (Vec<i8>, f32) {
    let max = values.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = channel_scale(max);
    (values.iter().map(|&x| quantize(x, scale)).collect(), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_value_maps_to_127_and_back() {
        let (q, t) = quantize_channel(&[0.5, -1.27, 0.0, 0.01]);
        assert_eq!(q, vec![50, -127, 0, 1]);
        assert!((t - 0.01).abs() < 1e-9);
        // Quantizing the dequantized values again is exact.
        let back: Vec<f32> = q.iter().map(|&v| v as f32 * t).collect();
        assert_eq!(quantize_channel(&back).0, q);
        assert_eq!(quantize_channel(&[0.0, 0.0]), (vec![0, 0], 0.0));
    }
}
