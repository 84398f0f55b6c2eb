//! Each training op against burn's own ops, forward and backward.

use burn::prelude::*;

use super::attention::attention_block_keyed;
use super::attention_backward::Dims;
use super::*;
use crate::kernels::dropout_mask;
use burn::nn::DropoutConfig;
use burn::tensor::activation::softmax;

/// Reproducible values in [-3, 3).
fn values(n: usize, seed: u64) -> Vec<f32> {
    crate::kernels::simd::values(n, seed)
        .iter()
        .map(|v| v * 1.5)
        .collect()
}

/// Largest absolute difference between two equally long slices.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The attention block op against burn's ops (head split, `q·kᵀ`, masked softmax,
/// the dropout mask of the same key, `·v`, head merge): context values and the
/// gradient of the projections, for every query and for `[CLS]` only, dropout off
/// and on, with padding.
#[test]
fn attention_block_matches_burns_ops_forward_and_backward() {
    let device = Device::flex().autodiff();
    let (b, s, heads, hd) = (2, 19, 3, 4);
    let hidden = heads * hd;
    let scale = 1.0 / (hd as f64).sqrt();
    let pad: Vec<bool> = (0..b * s).map(|i| i / s == 1 && i % s >= 11).collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, s]), &device);
    let data = TensorData::new(values(b * s * 3 * hidden, 21), [b, s, 3 * hidden]);
    let key = 0x0A77_E417;
    for queries in [s, 1] {
        let weights = Tensor::<3>::from_data(
            TensorData::new(values(b * queries * hidden, 22), [b, queries, hidden]),
            &device,
        );
        for p in [0.0f32, 0.1] {
            let dims = Dims {
                batch: b,
                seq: s,
                queries,
                hidden,
                heads,
            };
            let qkv = Tensor::<3>::from_data(data.clone(), &device).require_grad();
            let y = attention_block_keyed(&qkv, &mask, dims, p, key).expect("flex autodiff");
            let gx = qkv
                .grad(&(y.clone() * weights.clone()).sum().backward())
                .unwrap();

            let qkv2 = Tensor::<3>::from_data(data.clone(), &device).require_grad();
            let x = qkv2.clone().reshape([b, s, 3 * heads, hd]).swap_dims(1, 2);
            let q = x.clone().narrow(1, 0, heads).narrow(2, 0, queries);
            let k = x.clone().narrow(1, heads, heads);
            let v = x.narrow(1, 2 * heads, heads);
            let m4 = mask
                .clone()
                .reshape([b, 1, 1, s])
                .expand([b, heads, queries, s]);
            let probs = softmax(
                (q.matmul(k.swap_dims(2, 3)) * scale).mask_fill(m4, -1.0e9),
                3,
            );
            let kept = dropout_mask(b * heads * queries * s, p, key);
            let kept =
                Tensor::<4>::from_data(TensorData::new(kept, [b, heads, queries, s]), &device);
            let y2 = (probs * kept)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, queries, hidden]);
            let gx2 = qkv2
                .grad(&(y2.clone() * weights.clone()).sum().backward())
                .unwrap();

            let (y, y2) = (floats(y.inner()), floats(y2.inner()));
            let (gx, gx2) = (floats(gx), floats(gx2));
            let d = max_diff;
            assert!(
                gx.iter().any(|&v| v != 0.0),
                "queries {queries}, p={p}: zero gradient"
            );
            assert!(
                d(&y, &y2) < 1e-5,
                "queries {queries}, p={p}: context differs by {}",
                d(&y, &y2)
            );
            assert!(
                d(&gx, &gx2) < 1e-5,
                "queries {queries}, p={p}: gradient differs by {}",
                d(&gx, &gx2)
            );
        }
    }
}

#[test]
fn fused_gelu_matches_burns_gelu_forward_and_backward() {
    let device = Device::flex().autodiff();
    let n = 40_000; // more than one parallel chunk
    let data = TensorData::new(values(n, 5).iter().map(|v| v * 2.0).collect(), [4, n / 4]);
    let weights = Tensor::<2>::from_data(TensorData::new(values(n, 8), [4, n / 4]), &device);
    let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
    let y = gelu(&x).expect("flex autodiff");
    let gx = x
        .grad(&(y.clone() * weights.clone()).sum().backward())
        .unwrap();
    let x2 = Tensor::<2>::from_data(data, &device).require_grad();
    let y2 = burn::tensor::activation::gelu(x2.clone());
    let gx2 = x2.grad(&(y2.clone() * weights).sum().backward()).unwrap();
    let dy = max_diff(&floats(y.inner()), &floats(y2.inner()));
    let dg = max_diff(&floats(gx), &floats(gx2));
    assert!(dy < 1e-5, "GELU values differ by {dy}");
    assert!(dg < 1e-5, "GELU gradients differ by {dg}");
}

/// The linear op against burn's `Linear`: outputs and the gradients of input,
/// weight and bias, for a 3-D input, with the weight stored as given and as a
/// transposed view (how a loaded PyTorch checkpoint lands), across parallel blocks.
#[test]
fn linear_op_matches_burns_linear_forward_and_backward() {
    use burn::module::Param;
    let device = Device::flex().autodiff();
    let (b, s, d_in, d_out) = (3, 70, 24, 40);
    for transposed in [false, true] {
        let w = if transposed {
            Tensor::<2>::from_data(
                TensorData::new(values(d_in * d_out, 1), [d_out, d_in]),
                &device,
            )
            .transpose()
        } else {
            Tensor::<2>::from_data(
                TensorData::new(values(d_in * d_out, 1), [d_in, d_out]),
                &device,
            )
        };
        let bias = Tensor::<1>::from_data(TensorData::new(values(d_out, 2), [d_out]), &device);
        let x_data = TensorData::new(values(b * s * d_in, 3), [b, s, d_in]);
        let g = Tensor::<3>::from_data(
            TensorData::new(values(b * s * d_out, 4), [b, s, d_out]),
            &device,
        );
        let run = |ours: bool| {
            let layer = burn::nn::Linear {
                weight: Param::from_tensor(w.clone().detach().require_grad()),
                bias: Some(Param::from_tensor(bias.clone().detach().require_grad())),
            };
            let x = Tensor::<3>::from_data(x_data.clone(), &device).require_grad();
            let y = if ours {
                linear(&layer, &x).expect("flex autodiff")
            } else {
                layer.forward(x.clone())
            };
            let grads = (y.clone() * g.clone()).sum().backward();
            (
                floats(y.inner()),
                floats(x.grad(&grads).unwrap()),
                floats(layer.weight.grad(&grads).unwrap()),
                floats(layer.bias.as_ref().unwrap().grad(&grads).unwrap()),
            )
        };
        let (ours, burns) = (run(true), run(false));
        for (what, a, b) in [
            ("output", &ours.0, &burns.0),
            ("input gradient", &ours.1, &burns.1),
            ("weight gradient", &ours.2, &burns.2),
            ("bias gradient", &ours.3, &burns.3),
        ] {
            let diff = max_diff(a, b);
            assert!(
                diff < 1e-4,
                "{what} (transposed {transposed}) differs by {diff}"
            );
        }
    }
}

#[test]
fn declines_anything_but_flex_autodiff() {
    let device = Device::flex();
    let x = Tensor::<3>::zeros([1, 2, 6], &device);
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false, false], [1, 2]), &device);
    let dropout = DropoutConfig::new(0.1).init();
    assert!(attention_block(&x, &mask, 1, 2, &dropout).is_none());
    assert!(gelu(&x).is_none());
    let layer = burn::nn::LinearConfig::new(6, 3).init(&device);
    assert!(linear(&layer, &x).is_none());
    // Tracked, but shapes that do not chain: declined too (burn's ops then panic
    // with their own message, as without the ops).
    let ad = Device::flex().autodiff();
    let x = Tensor::<3>::zeros([1, 2, 6], &ad);
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 3], [1, 3]), &ad);
    assert!(
        attention_block(&x, &mask, 1, 2, &dropout).is_none(),
        "mask of another length"
    );
    assert!(
        attention_block(&x, &mask.clone().narrow(1, 0, 2), 4, 2, &dropout).is_none(),
        "2 is not divisible by 4 heads"
    );
}
