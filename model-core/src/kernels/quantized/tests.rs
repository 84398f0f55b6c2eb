//! The int8 products against the exact product and against each other, per
//! kernel.

use super::*;

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// `lhs · W` in f64.
fn reference(lhs: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    (0..m * n)
        .map(|t| {
            let (i, j) = (t / n, t % n);
            (0..k)
                .map(|l| lhs[i * k + l] as f64 * w[l * n + j] as f64)
                .sum()
        })
        .collect()
}

/// The int8 product stays within int8's error of the exact one for every shape
/// class (partial tiles, partial panels, `k` not a multiple of 4), and accumulates.
/// A row's result does not depend on the rows around it: a block of rows (split
/// over rayon's threads, in tiles of four) gives each row exactly what it gives
/// alone, so the answer is the same on any number of threads and in any batch.
#[test]
fn each_row_independent_of_its_block() {
    let (m, k, n) = (150, 96, 40);
    let lhs = values(m * k, 5);
    let w = values(k * n, 6);
    let q = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
    let mut all = vec![0.5f32; m * n];
    q.accumulate(&mut all, &lhs, m);
    for i in 0..m {
        let mut one = vec![0.5f32; n];
        q.accumulate(&mut one, &lhs[i * k..(i + 1) * k], 1);
        assert_eq!(one, all[i * n..(i + 1) * n], "row {i}");
    }
}

#[test]
fn close_to_the_exact_product() {
    for (m, k, n) in [(1, 1, 1), (3, 5, 7), (4, 8, 8), (9, 37, 21), (17, 384, 40)] {
        let lhs = values(m * k, 1);
        let w = values(k * n, 2);
        let q = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
        let mut dst = vec![1.0f32; m * n];
        q.accumulate(&mut dst, &lhs, m);
        let exact = reference(&lhs, &w, m, k, n);
        // Each product's error is at most about half a step of each operand:
        // k · (|x|·t/2 + |w|·s/2) with |x|, |w| ≤ 1, s ≤ 2/127, t ≤ 1/127.
        let bound = k as f64 * (1.5 / 127.0) + 1e-5;
        for (t, (d, e)) in dst.iter().zip(&exact).enumerate() {
            assert!(
                (*d as f64 - 1.0 - e).abs() <= bound,
                "m={m} k={k} n={n} at {t}: {d} vs {}",
                e + 1.0
            );
        }
    }
}

/// Weights that are already int8 times a per-column scale (an int8 export) and
/// inputs on the 7-bit grid give the exact product.
#[test]
fn exact_on_the_grid() {
    let (m, k, n) = (5, 12, 9);
    let t: Vec<f32> = (0..n).map(|j| 0.01 * (j + 1) as f32).collect();
    // Row 0 holds each column's largest magnitude, 127 steps.
    let w: Vec<f32> = (0..k * n)
        .map(|i| {
            let q = if i < n {
                127
            } else {
                (i * 37 % 255) as i32 - 127
            };
            q as f32 * t[i % n]
        })
        .collect();
    // Each row spans [-z, 127 - z] steps of 0.5, with both ends present.
    let lhs: Vec<f32> = (0..m * k)
        .map(|i| {
            let (r, c) = (i / k, i % k);
            let z = 20 * r as i32;
            let a = match c {
                0 => 0,
                1 => 127,
                _ => (c as i32 * 29 + r as i32) % 128,
            };
            (a - z) as f32 * 0.5
        })
        .collect();
    let q = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
    let mut dst = vec![0.0f32; m * n];
    q.accumulate(&mut dst, &lhs, m);
    for (d, e) in dst.iter().zip(reference(&lhs, &w, m, k, n)) {
        assert!(
            (*d as f64 - e).abs() <= 1e-3 * e.abs().max(1.0),
            "{d} vs {e}"
        );
    }
}

/// A transposed weight view (how burn stores a loaded `Linear`) packs the same.
#[test]
fn transposed_view() {
    let (m, k, n) = (6, 10, 11);
    let w = values(k * n, 3);
    let wt: Vec<f32> = (0..n * k).map(|t| w[(t % k) * n + t / k]).collect();
    let lhs = values(m * k, 4);
    let a = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
    let b = QuantizedWeight::quantize(&wt, 0, 1, k as isize, k, n);
    let (mut da, mut db) = (vec![0.0; m * n], vec![0.0; m * n]);
    a.accumulate(&mut da, &lhs, m);
    b.accumulate(&mut db, &lhs, m);
    assert_eq!(da, db);
}

/// Natively, the AVX-512 VNNI kernel (where the CPU has it) and the portable code
/// compute the same integers, so the same floats.
#[cfg(target_arch = "x86_64")]
#[test]
fn vnni_and_portable_agree() {
    if !(std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512vl"))
    {
        println!("skipped: this CPU has no AVX-512 VNNI");
        return;
    }
    let (m, k, n) = (11, 70, 19);
    let q = QuantizedWeight::quantize(&values(k * n, 5), 0, n as isize, 1, k, n);
    let mut rows = Rows::default();
    rows.quantize(&values(m * k, 6), m, k);
    let (mut a, mut b) = (vec![0.5f32; m * n], vec![0.5f32; m * n]);
    portable(&q, &mut a, &rows);
    // SAFETY: the CPU has the features (checked above).
    unsafe { vnni::rows_block(&q, &mut b, &rows) };
    assert_eq!(a, b);
}

/// Natively, the AVX2 kernel (where the CPU has it) and the portable code compute
/// the same integers, so the same floats, also at the ends of both ranges (inputs
/// 127 against weights ±127, where a 16-bit pair sum would saturate if the inputs
/// were 8-bit).
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_and_portable_agree() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        println!("skipped: this CPU has no AVX2");
        return;
    }
    let (m, k, n) = (11, 70, 19);
    let mut w = values(k * n, 5);
    // Whole columns at the weight's extremes, and rows at the input's.
    for i in 0..k {
        w[i * n] = 1.0;
        w[i * n + 1] = -1.0;
    }
    let mut lhs = values(m * k, 6);
    lhs[..k].fill(3.0);
    lhs[k..2 * k]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = if i % 2 == 0 { 3.0 } else { -3.0 });
    let q = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
    let mut rows = Rows::default();
    rows.quantize(&lhs, m, k);
    assert!(rows.q.contains(&127), "an input at the top of its range");
    let (mut a, mut b) = (vec![0.5f32; m * n], vec![0.5f32; m * n]);
    portable(&q, &mut a, &rows);
    // SAFETY: the CPU has the feature (checked above).
    unsafe { avx2::rows_block(&q, &mut b, &rows) };
    assert_eq!(a, b);
}

/// Rows of zeros, constants and a zero column give finite, right answers.
#[test]
fn degenerate_rows_and_columns() {
    let (k, n) = (4, 3);
    let w = vec![
        0.5, 0.0, -1.0, 0.25, 0.0, 1.0, -0.5, 0.0, 0.5, 1.0, 0.0, -0.25,
    ];
    let lhs = [[0.0; 4], [2.0; 4], [-3.0; 4]].concat();
    let q = QuantizedWeight::quantize(&w, 0, n as isize, 1, k, n);
    let mut dst = vec![0.0f32; 3 * n];
    q.accumulate(&mut dst, &lhs, 3);
    let exact = reference(&lhs, &w, 3, k, n);
    for (d, e) in dst.iter().zip(&exact) {
        assert!((*d as f64 - e).abs() < 0.05, "{dst:?} vs {exact:?}");
    }
    assert_eq!(dst[1], 0.0, "column of zeros");
}
