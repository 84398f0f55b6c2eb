//! The page's IndexedDB plumbing, for each store the page keeps ([`crate::batch`]'s
//! results, [`crate::kept_model`]'s fine-tuned model): IndexedDB answers through
//! events; each request here becomes a future that resolves on `success` (or a
//! transaction's `complete`) and fails, with the browser's message, on `error` or
//! `abort`.

use js_sys::Promise;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransaction};

fn message(what: &str, e: Option<web_sys::DomException>) -> String {
    match e {
        Some(e) => format!("the page's storage: {what}: {} ({})", e.message(), e.name()),
        None => format!("the page's storage: {what} failed"),
    }
}

/// A thrown JS value as an error naming `what` failed.
pub(crate) fn js(what: &str, e: JsValue) -> String {
    format!(
        "the page's storage: {what}: {}",
        e.as_string().unwrap_or_else(|| format!("{e:?}"))
    )
}

/// The result of `request`, once it has one.
pub(crate) async fn answer(request: &IdbRequest, what: &str) -> Result<JsValue, String> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let settled = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match settled {
        Ok(_) => request.result().map_err(|e| js(what, e)),
        Err(_) => Err(message(what, request.error().ok().flatten())),
    }
}

/// Wait until `tx` has committed (a full quota fails here, with the browser's words).
pub(crate) async fn committed(tx: &IdbTransaction, what: &str) -> Result<(), String> {
    let promise = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    let settled = JsFuture::from(promise).await;
    match settled {
        Ok(_) => Ok(()),
        Err(_) => Err(message(what, tx.error())),
    }
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, String> {
    serde_wasm_bindgen::to_value(value).map_err(|e| format!("the page's storage: {e}"))
}

pub(crate) fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| format!("the page's storage: a saved value: {e}"))
}

/// Open (or create, with object stores `stores`) the database `name` at `version`.
pub(crate) async fn open_database(
    name: &str,
    version: u32,
    stores: &'static [&'static str],
) -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()
        .map_err(|e| js("IndexedDB", e))?
        .ok_or("the page's storage: this browser has no IndexedDB")?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(name, version)
        .map_err(|e| js("open", e))?;
    let upgrade = Closure::once_into_js(move |event: web_sys::Event| {
        let db = event
            .target()
            .and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|db| db.dyn_into::<IdbDatabase>().ok());
        if let Some(db) = db {
            for store in stores {
                if !db.object_store_names().contains(store) {
                    let _ = db.create_object_store(store);
                }
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db = answer(&request, "open").await?;
    request.set_onupgradeneeded(None);
    Ok(db.unchecked_into())
}
