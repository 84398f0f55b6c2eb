//! Forms derived once from a weight (packed panels, int8 quantization) and kept for
//! as long as the weight's buffer lives.
//!
//! Entries are keyed by the buffer's identity (a `Weak` to flex's shared storage, so
//! the address cannot be reused while the entry exists), the view's layout, a
//! fingerprint of 32 sampled elements and the derived type, so a buffer updated in
//! place (burn mutates uniquely owned tensors, e.g. in an optimiser step) is derived
//! again rather than served stale. Entries whose buffer is gone are dropped on the
//! next call.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex, Weak};

use burn::tensor::Bytes;
use burn_flex::FlexTensor;

/// `build(data, offset, row_stride, col_stride, k, n)` of the 2-D f32 flex `weight`
/// `[k, n]`, built on first use.
pub fn derived<T: Any + Send + Sync>(
    weight: &FlexTensor,
    build: impl FnOnce(&[f32], usize, isize, isize, usize, usize) -> T,
) -> Arc<T> {
    static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    let layout = weight.layout();
    let (k, n) = (layout.shape()[0], layout.shape()[1]);
    let (rs, cs) = (layout.strides()[0], layout.strides()[1]);
    let offset = layout.start_offset();
    let data = weight.storage::<f32>();
    let fingerprint: [u32; 32] = std::array::from_fn(|s| {
        let t = s * (k * n).max(1) / 32;
        let (i, j) = (t / n.max(1), t % n.max(1));
        let at = offset as isize + (i as isize) * rs + (j as isize) * cs;
        data.get(at as usize).map_or(0, |v| v.to_bits())
    });
    let arc = weight.data_arc();
    let key = Key {
        offset,
        shape: [k, n],
        strides: [rs, cs],
        fingerprint,
        kind: TypeId::of::<T>(),
    };
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|e| e.buffer.strong_count() > 0);
    let buffer = Arc::as_ptr(&arc);
    if let Some(e) = cache
        .iter()
        .find(|e| e.buffer.as_ptr() == buffer && e.key == key)
        && let Ok(found) = e.value.clone().downcast::<T>()
    {
        return found;
    }
    let value = Arc::new(build(data, offset, rs, cs, k, n));
    cache.push(Entry {
        buffer: Arc::downgrade(&arc),
        key,
        value: value.clone(),
    });
    value
}

struct Entry {
    buffer: Weak<Bytes>,
    key: Key,
    value: Arc<dyn Any + Send + Sync>,
}

#[derive(PartialEq, Eq)]
struct Key {
    offset: usize,
    shape: [usize; 2],
    strides: [isize; 2],
    fingerprint: [u32; 32],
    kind: TypeId,
}

/// The strides of the view `src[offset + i·rs + j·cs]`, `i < k`, `j < n`, as
/// indices, after checking that the view lies inside `src`.
///
/// # Panics
/// If a stride is negative or the view reaches past `src`.
pub fn checked_view(
    src: &[f32],
    offset: usize,
    rs: isize,
    cs: isize,
    k: usize,
    n: usize,
) -> (usize, usize) {
    assert!(rs >= 0 && cs >= 0, "weight strides must be non-negative");
    let (rs, cs) = (rs as usize, cs as usize);
    if k > 0 && n > 0 {
        assert!(
            offset + (k - 1) * rs + (n - 1) * cs < src.len(),
            "weight view"
        );
    }
    (rs, cs)
}
