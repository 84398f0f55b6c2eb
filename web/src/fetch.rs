//! Browser I/O: fetching the model bundle with byte progress, reading files the
//! user picked, and handing results back as a download.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

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

/// GET `url`; `fresh` bypasses the HTTP cache (the service worker still answers
/// offline). `progress(bytes_so_far)` is called as chunks arrive.
pub async fn fetch_bytes(
    url: &str,
    fresh: bool,
    mut progress: impl FnMut(u64),
) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let init = RequestInit::new();
    if fresh {
        init.set_cache(RequestCache::NoCache);
    }
    let response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| js_error(&format!("{url}: network error"), e))?;
    let response: Response = response.unchecked_into();
    if !response.ok() {
        return Err(format!(
            "{url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let Some(body) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| js_error(&format!("{url}: download interrupted"), e))?;
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| js_error(url, e))?;
        let bytes: Uint8Array = value.unchecked_into();
        let start = out.len();
        out.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[start..]);
        progress(out.len() as u64);
    }
    Ok(out)
}

/// The bytes of a file the user picked.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| js_error(&file.name(), e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Offer `content` as a download named `name`.
pub fn download(name: &str, mime: &str, content: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(content));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|e| js_error("blob", e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| js_error("url", e))?;
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

/// Whether a service worker controls the page now, so that a request started now
/// goes through it (and lands in its offline cache).
pub fn under_service_worker() -> bool {
    web_sys::window()
        .and_then(|w| Reflect::get(&w.navigator().service_worker(), &"controller".into()).ok())
        .is_some_and(|c| !c.is_null() && !c.is_undefined())
}

/// Hand a file the page downloaded and verified to the service worker for offline
/// use. For requests made before the worker controlled the page (a first visit,
/// see [`under_service_worker`]), which it never saw: it would otherwise download
/// the file a second time.
pub fn keep_offline(url: &str, bytes: &[u8], content_type: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let container = window.navigator().service_worker();
    let base = window.location().href().unwrap_or_default();
    let (Ok(ready), Ok(absolute)) = (container.ready(), web_sys::Url::new_with_base(url, &base))
    else {
        return;
    };
    let message = js_sys::Object::new();
    for (key, value) in [
        ("op", JsValue::from_str("cache")),
        ("url", JsValue::from_str(&absolute.href())),
        ("type", JsValue::from_str(content_type)),
        ("bytes", Uint8Array::from(bytes).into()),
    ] {
        let _ = Reflect::set(&message, &key.into(), &value);
    }
    wasm_bindgen_futures::spawn_local(async move {
        let Ok(registration) = JsFuture::from(ready).await else {
            return;
        };
        let post = Reflect::get(&registration, &"active".into()).and_then(|worker| {
            let post: js_sys::Function =
                Reflect::get(&worker, &"postMessage".into())?.dyn_into()?;
            post.call1(&worker, &message)
        });
        if post.is_err() {
            web_sys::console::warn_1(
                &"the service worker did not take the model for offline use".into(),
            );
        }
    });
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
