//! The in-browser sentiment page, and the wasm side of the JS library (one module
//! for both; built with the `page` feature, its start function mounts the page).
//!
//! - [`app`]: the Leptos page (client-side rendering): mounts it and lays out the panels.
//! - `panels`: one module per feature (engine bar, model, one review, explanation,
//!   many reviews, teach it your texts), each taking its state from context.
//! - [`state`]: each feature's signals, provided as context.
//! - [`batch`]: many reviews from a file of any size, the results in the page's
//!   storage (IndexedDB), so a reload loses nothing.
//! - [`lifecycle`]: the page's model through the JS library: load, switch engines, classify.
//! - [`client`]: the page's handle on the JS library's `SentimentClassifier`.
//! - [`explain`]: a review's reading and explanation through the model (page and library).
//! - [`library`]: the wasm exports the JS library's worker calls (`static/lib/`).
//! - [`tuning`]: the worker's fine-tuning (`clf.fineTune`), its checkpoints, and `clf.exportBundle`.
//! - [`occlusion`]: what the model reads of a review, and the "Why?" explanation (DOM-free).
//! - [`engine`]: WebGPU through burn's wgpu, flex on wasm as the fallback.
//! - [`fetch`]: file input, downloads, timers, the service worker's registration.
//! - [`idb`]: the page's IndexedDB plumbing; [`kept_model`]: the model fine-tuned in
//!   the page, kept across reloads.
//! - [`text`]: labels and text ranges (DOM-free).
//! - [`archive`]: a tar of a bundle's files, the page's download of a fine-tuned model.

pub mod app;
pub mod archive;
pub mod batch;
pub mod client;
pub mod engine;
pub mod explain;
pub mod fetch;
pub mod idb;
pub mod kept_model;
pub mod library;
pub mod lifecycle;
pub mod occlusion;
mod panels;
pub mod state;
pub mod text;
pub mod tuning;

#[cfg(feature = "page")]
unsafe extern "C" {
    /// The module's static constructors (cubecl's IR registers its operations in
    /// them). A module that never calls this itself gets it called by the linker at
    /// the start of every export, and every JS value handed to wasm goes through an
    /// export: that cost the library's calls milliseconds each.
    fn __wasm_call_ctors();
}

/// The page module's start: run the constructors (once), then mount the page on
/// `<body>`. The same module runs in the JS library's Web Worker
/// (`static/lib/worker.js`), which has no window and only calls the exports of
/// [`library`].
#[cfg(feature = "page")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // In the threaded module every rayon worker instantiates the module again on the
    // same memory: the constructors (and the panic hook) must run only on the first.
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if STARTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    // SAFETY: called once, first, before any other code of the module runs.
    unsafe { __wasm_call_ctors() };
    app::report_panics();
    if web_sys::window().is_some() {
        app::mount();
    }
}

/// `initThreadPool(n)` for the library's worker: start rayon's pool of `n` Web
/// Workers on this module and its shared memory (the threaded module only).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

// The unit tests run in the browser (`cargo xtask test-web`), where the crate runs.
#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
