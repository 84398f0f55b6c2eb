//! The in-browser sentiment page.
//!
//! - [`app`]: the Leptos page (client-side rendering): mounts it and lays out the panels.
//! - `panels`: one module per feature (engine bar, model, one review, explanation,
//!   many reviews), each taking its state from context.
//! - [`state`]: each feature's signals, provided as context.
//! - [`lifecycle`]: loading, verifying and building the model; WebGPU→CPU failover.
//! - [`explain`]: a review's reading and explanation through the model (page and library).
//! - [`library`]: the wasm exports the JS library's worker calls (`static/lib/`).
//! - [`occlusion`]: what the model reads of a review, and the "Why?" explanation (DOM-free).
//! - [`engine`]: WebGPU through burn's wgpu, flex on wasm as the fallback.
//! - [`fetch`]: the model download with progress, file input, CSV download.
//! - [`text`]: batch input parsing, results CSV (DOM-free).

pub mod app;
pub mod engine;
pub mod explain;
pub mod fetch;
pub mod library;
pub mod lifecycle;
pub mod occlusion;
mod panels;
pub mod state;
pub mod text;

// The unit tests run in the browser (`cargo xtask test-web`), where the crate runs.
#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
