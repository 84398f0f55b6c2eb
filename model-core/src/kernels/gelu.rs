//! The exact (erf) GELU for inference on flex, in place on the tensor's own buffer.

use burn::prelude::*;
use burn_flex::Flex;

use super::math::gelu_slice;
use super::simd::flex_f32;

/// Exact GELU in place on a flex f32 tensor (copied first only when its buffer is
/// shared); `Err(x)`, untouched, on any other backend or dtype, or with autodiff.
#[allow(clippy::result_large_err)] // handing the tensor back is the point; no copy is made
pub fn gelu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let Some(mut p) = flex_f32(&x) else {
        return Err(x);
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
    Ok(Tensor::from_primitive::<Flex>(p))
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::gelu;
    use crate::kernels::simd::values;

    #[test]
    fn fused_gelu_matches_burns_gelu() {
        let device = Device::flex();
        let data: Vec<f32> = values(4 * 1000, 3).iter().map(|v| v * 3.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(data, [4, 1000]), &device);
        let reference = burn::tensor::activation::gelu(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ours = gelu(x)
            .expect("flex f32")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
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
        let _ = gelu(x).expect("flex f32");
        assert_eq!(
            kept.into_data().try_to_vec::<f32>().unwrap(),
            vec![1.0, -1.0, 2.0]
        );
    }
}
