//! The page's storage for many-reviews results: an IndexedDB database holding the
//! [`RunRecord`] and one [`StoredRow`] per review, keyed by its position in the
//! results (0, 1, 2, …), so that a page of the table is one key range and a reload
//! finds every row classified before it. A chunk's rows and the record that counts
//! them are written in one transaction: after a crash or a reload the two agree.

use js_sys::Array;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransaction, IdbTransactionMode};

use super::record::{RunRecord, StoredRow};
use crate::idb::{answer, committed, from_js, js, open_database, to_js};

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

impl Store {
    /// Open (or create) the database.
    pub async fn open() -> Result<Store, String> {
        Ok(Store {
            db: open_database(DATABASE, VERSION, &[RUNS, ROWS]).await?,
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
