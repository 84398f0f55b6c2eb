//! The model fine-tuned in the page, kept in IndexedDB (database
//! `bert-sentiment-model`) so that it is still the page's model after a reload, and
//! offline: its web bundle, file by file, as one `Map<name, Uint8Array>` written in
//! one transaction. One model is kept; going back to the release model or opening
//! another from disk forgets it.

use std::collections::HashMap;

use js_sys::{Array, Map, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbTransactionMode};

use crate::idb::{answer, committed, js, open_database};

const DATABASE: &str = "bert-sentiment-model";
const STORE: &str = "bundles";
const KEY: &str = "fine-tuned";

async fn open() -> Result<IdbDatabase, String> {
    open_database(DATABASE, 1, &[STORE]).await
}

/// Keep `files` as the page's model (in place of any kept before).
pub async fn keep(files: &[(String, Vec<u8>)]) -> Result<(), String> {
    let db = open().await?;
    let map = Map::new();
    for (name, bytes) in files {
        map.set(&name.into(), &Uint8Array::from(bytes.as_slice()));
    }
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|e| js("transaction", e))?;
    tx.object_store(STORE)
        .map_err(|e| js(STORE, e))?
        .put_with_key(&map, &KEY.into())
        .map_err(|e| js("write", e))?;
    committed(&tx, "keep the fine-tuned model").await
}

/// The kept model's files, if one is kept.
pub async fn kept() -> Result<Option<HashMap<String, Vec<u8>>>, String> {
    let db = open().await?;
    let tx = db
        .transaction_with_str(STORE)
        .map_err(|e| js("transaction", e))?;
    let request = tx
        .object_store(STORE)
        .map_err(|e| js(STORE, e))?
        .get(&KEY.into())
        .map_err(|e| js("read", e))?;
    let value = answer(&request, "read the fine-tuned model").await?;
    let Ok(map) = value.dyn_into::<Map>() else {
        return Ok(None);
    };
    let mut files = HashMap::new();
    for entry in map.entries() {
        let pair: Array = entry.map_err(|e| js("read", e))?.unchecked_into();
        let name = pair
            .get(0)
            .as_string()
            .ok_or("a kept file without a name")?;
        files.insert(name, pair.get(1).unchecked_into::<Uint8Array>().to_vec());
    }
    Ok(Some(files))
}

/// Forget the kept model.
pub async fn forget() -> Result<(), String> {
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|e| js("transaction", e))?;
    tx.object_store(STORE)
        .map_err(|e| js(STORE, e))?
        .delete(&KEY.into())
        .map_err(|e| js("delete", e))?;
    committed(&tx, "forget the fine-tuned model").await
}
