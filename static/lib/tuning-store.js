// Where a fine-tuning run's checkpoint is kept between page loads: IndexedDB database
// `bert-sentiment-tuning`, one record at a time (a MiniLM checkpoint is about 270 MB:
// the weights and AdamW's two moments), written whole in one transaction, so a reload
// or a crash mid-write leaves the previous checkpoint or the new one, never half of one.
//
// A record: { key, model, examples, settings, step, steps, state: { step, steps, model,
// optimizer }, savedAt }. `key` names the run (the model it started from, its examples
// and settings: the same three make the same run again), `model` the model it started
// from, `state` what tuning/checkpoint.rs reads back.

const DB = 'bert-sentiment-tuning';
const STORE = 'checkpoints';

// What the browser said when it refused a write, as an Error that says it in words
// (a full quota's DOMException often has no message).
function storageError(e) {
  if (e?.name === 'QuotaExceededError') return new Error(`the browser's storage quota for this site is full (QuotaExceededError${e.message ? `: ${e.message}` : ''})`);
  if (e) return new Error(`the browser's storage refused the write (${e.name}${e.message ? `: ${e.message}` : ''})`);
  return new Error("the browser's storage aborted the write");
}

let opened = null;

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function database() {
  opened ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'key' });
    r.onsuccess = () => {
      // Let the page delete or upgrade the database: this connection goes, and the
      // next use opens a new one.
      r.result.onversionchange = () => {
        r.result.close();
        opened = null;
      };
      resolve(r.result);
    };
    r.onerror = () => reject(storageError(r.error));
  }).catch((e) => {
    opened = null;
    throw e;
  });
  return opened;
}

// Run `body(store)` in one transaction; resolves once it is committed (a quota error
// surfaces here, as the transaction's error).
async function inTransaction(mode, body) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    let result;
    tx.oncomplete = () => resolve(result);
    tx.onabort = () => reject(storageError(tx.error));
    tx.onerror = () => {};
    new Promise((r) => r(body(tx.objectStore(STORE)))).then((v) => {
      result = v;
    }, (e) => {
      try {
        tx.abort();
      } catch {}
      reject(e instanceof DOMException ? storageError(e) : e);
    });
  });
}

// Keep `record` as the one checkpoint (any other run's goes in the same transaction).
export function saveCheckpoint(record) {
  return inTransaction('readwrite', (store) => {
    store.clear();
    store.put(record);
  });
}

// The kept checkpoint, or null.
export async function keptCheckpoint() {
  const all = await inTransaction('readonly', (store) => request(store.getAll()));
  return all[0] ?? null;
}

// Drop the kept checkpoint, if any.
export function dropCheckpoints() {
  return inTransaction('readwrite', (store) => {
    store.clear();
  });
}
