//! Browser I/O: reading files the user picked, handing results back as a
//! download, timers, and the service worker.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn js_error(what: &str, e: JsValue) -> String {
    let detail = e
        .as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"));
    format!("{what}: {detail}")
}

/// The bytes of a file the user picked.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| js_error(&file.name(), e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// `len` bytes of a file the user picked from byte `from` (fewer at its end), without
/// reading the rest of it.
pub async fn read_slice(file: &web_sys::File, from: f64, len: f64) -> Result<Vec<u8>, String> {
    let end = (from + len).min(file.size());
    let slice = file
        .slice_with_f64_and_f64(from, end)
        .map_err(|e| js_error(&file.name(), e))?;
    let buffer = JsFuture::from(slice.array_buffer())
        .await
        .map_err(|e| js_error(&file.name(), e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A blob of `parts` (strings or blobs), typed `mime`: the browser keeps a large one
/// out of the page's memory.
pub fn blob(parts: &js_sys::Array, mime: &str) -> Result<web_sys::Blob, String> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    web_sys::Blob::new_with_str_sequence_and_options(parts, &options)
        .map_err(|e| js_error("blob", e))
}

/// Offer `blob` as a download named `name`.
pub fn download_blob(name: &str, blob: &web_sys::Blob) -> Result<(), String> {
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(|e| js_error("url", e))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_error("anchor", e))?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Milliseconds since the page started.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Let the browser paint and handle input between chunks of work.
pub async fn yield_now() {
    sleep_ms(0).await
}

/// Wait `ms` milliseconds without blocking the page.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Register the service worker that keeps the page and the model offline.
pub fn register_service_worker(url: &str) {
    if let Some(w) = web_sys::window() {
        let sw = w.navigator().service_worker();
        // Not available on plain http origins other than localhost: then the page
        // simply works online only.
        if !sw.is_undefined() {
            let _ = sw.register(url);
        }
    }
}
