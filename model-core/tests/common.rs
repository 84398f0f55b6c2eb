//! Shared by the model-core integration tests: where `../shared` is, and JSON fixtures.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` beside the repository, where the real checkpoint and data live.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// Point the hub client at `../shared/hf` unless the caller chose a cache.
/// Returns false (after saying why) when the cache is absent.
pub fn use_shared_hf_cache() -> bool {
    let hf = shared_dir().join("hf");
    if std::env::var_os("HF_HOME").is_none() {
        // SAFETY: set before any thread of this test process reads it; tests that call
        // this only read the same value.
        unsafe { std::env::set_var("HF_HOME", &hf) };
    }
    let home = PathBuf::from(std::env::var_os("HF_HOME").unwrap());
    let present = home
        .join("hub/models--sentence-transformers--all-MiniLM-L6-v2")
        .is_dir();
    if !present {
        eprintln!(
            "SKIPPED: the MiniLM checkpoint is not in {} (the shared assets are absent)",
            home.display()
        );
    }
    present
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
