//! The in-browser sentiment page.
//!
//! - [`app`]: the Leptos page (client-side rendering).
//! - [`engine`]: WebGPU through burn's wgpu, flex on wasm as the fallback.
//! - [`fetch`]: the model download with progress, file input, CSV download.
//! - [`text`]: batch input parsing, occlusion phrases, results CSV (DOM-free).

pub mod app;
pub mod engine;
pub mod fetch;
pub mod text;
