//! The encoder's hot kernels on the flex CPU backend, at MiniLM's shapes (hidden 384,
//! 12 heads, feed-forward 1536) for 8 reviews of 256 tokens:
//!
//! - the GEMM-heavy projections (`linear/*`),
//! - attention: the fused kernel against burn's `attention` op plus the head
//!   split/merge it needs,
//! - GELU: the fused in-place kernel against burn's `gelu`; LayerNorm and softmax,
//! - one whole encoder layer: the fused stack kernel (f32 and int8 products) against
//!   the module path,
//! - training (forward + backward): the attention op against burn's ops, and one
//!   encoder layer.
//!
//! `cargo bench -p model-core --bench kernels` (add `-- --quick` for a fast pass).
//! Random weights: these measure time, not accuracy (the tests cover that).

use burn::nn::LinearConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use model_core::model::BertEncoder;
use model_core::{BertConfig, MatmulPrecision};
use std::hint::black_box;

const BATCH: usize = 8;
const SEQ: usize = 256;
const HIDDEN: usize = 384;
const HEADS: usize = 12;
const FFN: usize = 1536;

fn minilm_config() -> BertConfig {
    let json = serde_json::json!({
        "hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "intermediate_size": FFN, "vocab_size": 30522, "hidden_act": "gelu",
        "model_type": "bert",
    });
    BertConfig::from_json_str(&json.to_string(), "bench config").unwrap()
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// A padding mask with the last 10% of every other row padded, as a batch of
/// real reviews of different lengths would have.
fn padding_mask(device: &Device) -> Tensor<2, Bool> {
    let mask: Vec<bool> = (0..BATCH * SEQ)
        .map(|i| (i / SEQ) % 2 == 1 && i % SEQ >= SEQ * 9 / 10)
        .collect();
    Tensor::from_data(TensorData::new(mask, [BATCH, SEQ]), device)
}

fn linear(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("linear");
    for (d_in, d_out) in [(HIDDEN, 3 * HIDDEN), (HIDDEN, FFN), (FFN, HIDDEN)] {
        let layer = LinearConfig::new(d_in, d_out).init(&device);
        let x = random([BATCH, SEQ, d_in], &device);
        group.throughput(Throughput::Elements(
            (2 * BATCH * SEQ * d_in * d_out) as u64,
        ));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{d_in}x{d_out}")),
            |b| b.iter(|| black_box(layer.forward(x.clone()))),
        );
    }
    group.finish();
}

fn attention_kernels(c: &mut Criterion) {
    let device = Device::flex();
    let qkv = random([BATCH, SEQ, 3 * HIDDEN], &device);
    let mask = padding_mask(&device);
    let mut group = c.benchmark_group("attention");
    group.throughput(Throughput::Elements((BATCH * HEADS * SEQ * SEQ) as u64));
    group.bench_function("fused", |b| {
        b.iter(|| black_box(model_core::kernels::self_attention(&qkv, &mask, HEADS).unwrap()))
    });
    group.bench_function("burn", |b| {
        b.iter(|| {
            let d = HIDDEN / HEADS;
            let split = qkv
                .clone()
                .reshape([BATCH, SEQ, 3 * HEADS, d])
                .swap_dims(1, 2);
            let q = split.clone().narrow(1, 0, HEADS);
            let k = split.clone().narrow(1, HEADS, HEADS);
            let v = split.narrow(1, 2 * HEADS, HEADS);
            let m = mask
                .clone()
                .reshape([BATCH, 1, 1, SEQ])
                .expand([BATCH, HEADS, SEQ, SEQ]);
            let out = attention(q, k, v, Some(m), None, AttentionModuleOptions::default());
            black_box(out.swap_dims(1, 2).reshape([BATCH, SEQ, HIDDEN]))
        })
    });
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let device = Device::flex();
    let h = random([BATCH, SEQ, FFN], &device);
    let mut group = c.benchmark_group("gelu");
    group.throughput(Throughput::Elements((BATCH * SEQ * FFN) as u64));
    // The fused kernel works in place: give it its own copy each time, as the encoder does.
    group.bench_function("fused", |b| {
        b.iter_batched(
            || h.clone() * 1.0,
            |x| black_box(model_core::kernels::gelu::gelu(x).unwrap()),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("burn", |b| {
        b.iter_batched(
            || h.clone() * 1.0,
            |x| black_box(gelu(x)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();

    let x = random([BATCH, SEQ, HIDDEN], &device);
    let norm = burn::nn::LayerNormConfig::new(HIDDEN).init(&device);
    let mut group = c.benchmark_group("layer_norm");
    group.throughput(Throughput::Elements((BATCH * SEQ * HIDDEN) as u64));
    group.bench_function("burn", |b| b.iter(|| black_box(norm.forward(x.clone()))));
    group.finish();

    let scores = random([BATCH, HEADS, SEQ, SEQ], &device);
    let mut group = c.benchmark_group("softmax");
    group.throughput(Throughput::Elements((BATCH * HEADS * SEQ * SEQ) as u64));
    group.bench_function("burn", |b| b.iter(|| black_box(softmax(scores.clone(), 3))));
    group.finish();
}

fn encoder_layer(c: &mut Criterion) {
    let device = Device::flex();
    // One layer, run by the fused stack kernel (`BertEncoder::forward` on flex) and by
    // the modules (burn's ops plus the fused attention and GELU).
    let encoder = BertEncoder::init(&minilm_config(), &device);
    let x = random([BATCH, SEQ, HIDDEN], &device);
    let mask = padding_mask(&device);
    let mut group = c.benchmark_group("encoder_layer");
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("fused_stack", |b| {
        b.iter(|| black_box(encoder.forward(x.clone(), mask.clone())))
    });
    group.bench_function("modules", |b| {
        b.iter(|| black_box(encoder.forward_modules(x.clone(), mask.clone())))
    });
    // The fused stack with int8 projections (what the page computes for an int8
    // export; natively AVX-512 VNNI where the CPU has it).
    let mut int8 = encoder.clone();
    int8.precision = MatmulPrecision::Int8;
    group.bench_function("fused_stack_int8", |b| {
        b.iter(|| black_box(int8.forward(x.clone(), mask.clone())))
    });
    group.finish();
}

/// Training (flex autodiff), forward and backward: the attention core as one op
/// against burn's ops spelled out (head split, `q·kᵀ`, masked softmax, `·v`, merge;
/// what it replaced), and one whole encoder layer, which takes the training ops.
fn training(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mask = padding_mask(&device);
    let dropout = burn::nn::DropoutConfig::new(0.0).init();
    let qkv = random([BATCH, SEQ, 3 * HIDDEN], &device).require_grad();
    let g = random([BATCH, SEQ, HIDDEN], &device);
    let mut group = c.benchmark_group("train_attention");
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("block_op", |b| {
        b.iter(|| {
            let ctx =
                model_core::kernels::train::attention_block(&qkv, &mask, HEADS, SEQ, &dropout)
                    .expect("flex autodiff");
            black_box((ctx * g.clone()).sum().backward())
        })
    });
    group.bench_function("burn_ops", |b| {
        b.iter(|| {
            let hd = HIDDEN / HEADS;
            let x = qkv
                .clone()
                .reshape([BATCH, SEQ, 3 * HEADS, hd])
                .swap_dims(1, 2);
            let q = x.clone().narrow(1, 0, HEADS);
            let k = x.clone().narrow(1, HEADS, HEADS);
            let v = x.narrow(1, 2 * HEADS, HEADS);
            let m4 = mask
                .clone()
                .reshape([BATCH, 1, 1, SEQ])
                .expand([BATCH, HEADS, SEQ, SEQ]);
            let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
            let ctx = softmax(scores.mask_fill(m4, -1.0e9), 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([BATCH, SEQ, HIDDEN]);
            black_box((ctx * g.clone()).sum().backward())
        })
    });
    group.finish();
    let encoder = BertEncoder::init(&minilm_config(), &device);
    let x = random([BATCH, SEQ, HIDDEN], &device).require_grad();
    let mut group = c.benchmark_group("train_encoder_layer");
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let y = encoder.forward(x.clone(), mask.clone());
            black_box((y * g.clone()).sum().backward())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = linear, attention_kernels, elementwise, encoder_layer, training
}
criterion_main!(benches);
