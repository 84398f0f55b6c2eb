//! The page's storage for many-reviews results: an IndexedDB database holding the
//! [`RunRecord`] and one [`StoredRow`] per review, keyed by its position in the
//! results (0, 1, 2, …), so that a page of the table is one key range and a reload
//! finds every row classified before it. A chunk's rows and the record that counts
//! them are written in one transaction: after a crash or a reload the two agree.
//!
//! IndexedDB answers through events; each request here becomes a future that
//! resolves on `success` (or a transaction's `complete`) and fails, with the
//! browser's message, on `error` or `abort`.

use js_sys::{Array, Promise};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbDatabase, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransaction,
    IdbTransactionMode,
};

use super::record::{RunRecord, StoredRow};

const DATABASE: &str = "bert-sentiment-results";
const VERSION: u32 = 1;
const RUNS: &str = "runs";
const ROWS: &str = "rows";
/// The one run kept (the page keeps the results of its last run until cleared).
const CURRENT: &str = "current";

/// The results database, open.
pub struct Store {
    db: IdbDatabase,
}

fn message(what: &str, e: Option<web_sys::DomException>) -> String {
    match e {
        Some(e) => format!("the page's storage: {what}: {} ({})", e.message(), e.name()),
        None => format!("the page's storage: {what} failed"),
    }
}

fn js(what: &str, e: JsValue) -> String {
    format!(
        "the page's storage: {what}: {}",
        e.as_string().unwrap_or_else(|| format!("{e:?}"))
    )
}

/// The result of `request`, once it has one.
async fn answer(request: &IdbRequest, what: &str) -> Result<JsValue, String> {
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

/// Wait until `tx` has committed.
async fn committed(tx: &IdbTransaction, what: &str) -> Result<(), String> {
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

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, String> {
    serde_wasm_bindgen::to_value(value).map_err(|e| format!("the page's storage: {e}"))
}

fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| format!("the page's storage: a saved value: {e}"))
}

impl Store {
    /// Open (or create) the database.
    pub async fn open() -> Result<Store, String> {
        let factory = web_sys::window()
            .ok_or("no window")?
            .indexed_db()
            .map_err(|e| js("IndexedDB", e))?
            .ok_or("the page's storage: this browser has no IndexedDB")?;
        let request: IdbOpenDbRequest = factory
            .open_with_u32(DATABASE, VERSION)
            .map_err(|e| js("open", e))?;
        let upgrade = Closure::once_into_js(move |event: web_sys::Event| {
            let db = event
                .target()
                .and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok())
                .and_then(|r| r.result().ok())
                .and_then(|db| db.dyn_into::<IdbDatabase>().ok());
            if let Some(db) = db {
                for name in [RUNS, ROWS] {
                    if !db.object_store_names().contains(name) {
                        let _ = db.create_object_store(name);
                    }
                }
            }
        });
        request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        let db = answer(&request, "open").await?;
        request.set_onupgradeneeded(None);
        Ok(Store {
            db: db.unchecked_into(),
        })
    }

    fn transaction(&self, mode: IdbTransactionMode) -> Result<IdbTransaction, String> {
        let names = Array::of2(&RUNS.into(), &ROWS.into());
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map_err(|e| js("transaction", e))
    }

    fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, String> {
        tx.object_store(name).map_err(|e| js(name, e))
    }

    /// The run kept, if any.
    pub async fn run(&self) -> Result<Option<RunRecord>, String> {
        let tx = self.transaction(IdbTransactionMode::Readonly)?;
        let request = Self::store(&tx, RUNS)?
            .get(&CURRENT.into())
            .map_err(|e| js("read", e))?;
        let value = answer(&request, "read the run").await?;
        if value.is_undefined() {
            return Ok(None);
        }
        from_js(value).map(Some)
    }

    /// Save `rows` after the `run.done - rows.len()` rows saved before, and `run`
    /// (which counts them), in one transaction.
    pub async fn save(&self, run: &RunRecord, rows: &[StoredRow]) -> Result<(), String> {
        let tx = self.transaction(IdbTransactionMode::Readwrite)?;
        let first = run.done - rows.len();
        let store = Self::store(&tx, ROWS)?;
        for (i, row) in rows.iter().enumerate() {
            let key = JsValue::from_f64((first + i) as f64);
            store
                .put_with_key(&to_js(row)?, &key)
                .map_err(|e| js("write", e))?;
        }
        Self::store(&tx, RUNS)?
            .put_with_key(&to_js(run)?, &CURRENT.into())
            .map_err(|e| js("write", e))?;
        committed(&tx, "save the results").await
    }

    /// Rows `from..from + count` of the results (fewer at the end).
    pub async fn rows(&self, from: usize, count: usize) -> Result<Vec<StoredRow>, String> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let tx = self.transaction(IdbTransactionMode::Readonly)?;
        let range = IdbKeyRange::bound(
            &JsValue::from_f64(from as f64),
            &JsValue::from_f64((from + count - 1) as f64),
        )
        .map_err(|e| js("range", e))?;
        let request = Self::store(&tx, ROWS)?
            .get_all_with_key(&range)
            .map_err(|e| js("read", e))?;
        let values: Array = answer(&request, "read the results").await?.unchecked_into();
        values.iter().map(from_js).collect()
    }

    /// Forget the run and its rows.
    pub async fn clear(&self) -> Result<(), String> {
        let tx = self.transaction(IdbTransactionMode::Readwrite)?;
        Self::store(&tx, RUNS)?
            .clear()
            .map_err(|e| js("clear", e))?;
        Self::store(&tx, ROWS)?
            .clear()
            .map_err(|e| js("clear", e))?;
        committed(&tx, "clear the results").await
    }
}
