//! Many reviews: a whole file (or a paste) classified a chunk at a time, with the
//! results in the page's storage rather than in memory or the DOM.
//!
//! The file is read a slice at a time ([`SLICE`] bytes, `Blob.slice`) into
//! model-core's [`Feed`], the trainer's readers, so the page holds one slice and the
//! reviews waiting for the model, whatever the file's size. Each chunk of [`CHUNK`]
//! reviews goes to the library's worker, and its rows are saved with the run's
//! [`RunRecord`] in one transaction ([`store`]). So a reload loses nothing: the page
//! shows what was classified, and opening the same file again (same name, size and
//! date, same model) goes on from the first line not yet done. The table shows one
//! page of rows read back from the storage; the CSV is written from it a thousand
//! rows at a time.
//!
//! - [`record`]: the run's record and rows, the CSV rows, rate and ETA (DOM-free);
//! - [`store`]: the IndexedDB database.

pub mod record;
pub mod store;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use leptos::prelude::*;
use model_core::input::feed::Feed;
use model_core::input::labels::map_label;
use model_core::input::stream::Format;
use model_core::input::{Columns, Labels, Row};

use crate::fetch::{now_ms, read_slice};
use crate::lifecycle::{ModelState, predict};
use crate::state::BatchState;
use record::{CHUNK, RunRecord, StoredRow, estimate};
use store::Store;

/// Bytes of the file read at a time.
pub const SLICE: usize = 1 << 20;

/// Rows per page of the table.
pub const PAGE: usize = 50;

/// A review read from the input, its label mapped onto the model's.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub line: usize,
    pub id: Option<String>,
    pub expected: Option<String>,
    pub text: String,
}

/// Where the reviews come from.
pub enum Input {
    /// A file the user picked.
    File(web_sys::File),
    /// Reviews pasted one per line.
    Pasted(String),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(f) => f.name(),
            Input::Pasted(_) => "pasted".into(),
        }
    }

    fn size(&self) -> f64 {
        match self {
            Input::File(f) => f.size(),
            Input::Pasted(t) => t.len() as f64,
        }
    }

    async fn slice(&self, from: f64) -> Result<Vec<u8>, String> {
        match self {
            Input::File(f) => read_slice(f, from, SLICE as f64).await,
            Input::Pasted(t) => {
                let from = from as usize;
                Ok(t.as_bytes()[from..(from + SLICE).min(t.len())].to_vec())
            }
        }
    }
}

thread_local! {
    static STORE: RefCell<Option<Rc<Store>>> = const { RefCell::new(None) };
}

/// The results database, opened once.
pub async fn store() -> Result<Rc<Store>, String> {
    if let Some(s) = STORE.with_borrow(Clone::clone) {
        return Ok(s);
    }
    let s = Rc::new(Store::open().await?);
    STORE.with_borrow_mut(|slot| *slot = Some(s.clone()));
    Ok(s)
}

/// A row of the input as a review, its label mapped onto the model's.
fn review(row: Row, labels: &[String], source: &str) -> Result<Review, String> {
    let expected = match &row.label {
        Some(raw) => Some(
            map_label(raw, labels, &format!("{source}:{}", row.line)).map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    Ok(Review {
        line: row.line,
        id: row.id,
        expected,
        text: row.text,
    })
}

/// The kept run, once the page has started: shown as it was left.
pub async fn restore(state: BatchState) {
    match async { store().await?.run().await }.await {
        Ok(run) => {
            state.run.set(run);
            show_page(state, 0).await;
        }
        Err(e) => state.error.set(Some(e)),
    }
}

/// Show page `page` of the results.
pub async fn show_page(state: BatchState, page: usize) {
    let rows = async { store().await?.rows(page * PAGE, PAGE).await }.await;
    match rows {
        Ok(rows) => {
            state.page.set(page);
            state.rows.set(rows);
        }
        Err(e) => state.error.set(Some(e)),
    }
}

/// Forget the kept results.
pub async fn clear(state: BatchState) {
    match async { store().await?.clear().await }.await {
        Ok(()) => {
            state.run.set(None);
            state.rows.set(Vec::new());
            state.page.set(0);
            state.error.set(None);
        }
        Err(e) => state.error.set(Some(e)),
    }
}

/// Classify `input`, going on with the kept run when it is the same input and model,
/// unless the model is busy.
pub async fn run(model: ModelState, state: BatchState, input: Input) {
    if model.busy.get_untracked() {
        return;
    }
    model.busy.set(true);
    state.running.set(true);
    state.stop.set(false);
    state.follow.set(true);
    state.error.set(None);
    if let Err(e) = classify_all(model, state, &input).await {
        state.error.set(Some(e));
    }
    state.running.set(false);
    model.busy.set(false);
}

/// The kept run if `input` continues it, else a new one (the old results cleared).
async fn start(store: &Store, model: ModelState, input: &Input) -> Result<RunRecord, String> {
    let labels = model.labels.get_untracked();
    let described = model.model_info.get_untracked().unwrap_or_default();
    let (name, size) = (input.name(), input.size());
    let modified = match input {
        Input::File(f) => f.last_modified(),
        Input::Pasted(_) => 0.0,
    };
    let mut run = RunRecord::new(&name, size, modified, &described, &labels);
    if let Input::Pasted(text) = input {
        run.pasted = Some(text.clone());
    }
    if let Some(kept) = store.run().await?
        && kept.continues(&run)
    {
        return Ok(kept);
    }
    store.clear().await?;
    store.save(&run, &[]).await?;
    Ok(run)
}

async fn classify_all(model: ModelState, state: BatchState, input: &Input) -> Result<(), String> {
    let store = store().await?;
    let mut run = start(&store, model, input).await?;
    let (name, size) = (input.name(), input.size());
    state.run.set(Some(run.clone()));
    let last_page = |done: usize| done.saturating_sub(1) / PAGE;
    show_page(state, last_page(run.done)).await;

    let format = match input {
        Input::File(_) => Format::for_name(&name),
        Input::Pasted(_) => Format::Lines,
    };
    let mut feed =
        Feed::new(format, &Columns::default(), &name, Labels::Optional).from_line(run.next_line);
    // What the reader has returned and the model not yet seen, in file order: a
    // review, or a row that cannot be one (counted as skipped when the rows around it
    // are saved, so that a run going on after a reload does not count it twice).
    let mut waiting: VecDeque<(usize, Result<Review, String>)> = VecDeque::new();
    let reviews =
        |w: &VecDeque<(usize, Result<Review, String>)>| w.iter().filter(|(_, r)| r.is_ok()).count();
    let (mut read, mut all_read) = (0.0, false);
    let (started, seconds_before, mut classified) = (now_ms(), run.seconds, 0);
    loop {
        while reviews(&waiting) < CHUNK && !all_read {
            let items = if read >= size {
                all_read = true;
                feed.finish()
            } else {
                let bytes = input.slice(read).await?;
                read += bytes.len() as f64;
                feed.push(&bytes)
            }
            .map_err(|e| e.to_string())?;
            for item in items {
                waiting.push_back(match item {
                    Ok(row) => (row.line, review(row, &run.labels, &name)),
                    Err(bad) => (bad.line, Err(bad.error.to_string())),
                });
            }
        }
        if waiting.is_empty() {
            break;
        }
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK
            && let Some((line, item)) = waiting.pop_front()
        {
            run.next_line = run.next_line.max(line + 1);
            match item {
                Ok(r) => chunk.push(r),
                Err(message) => run.skip(message),
            }
        }
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let predictions = if texts.is_empty() {
            Vec::new()
        } else {
            predict(model, &texts).await?
        };
        let rows: Vec<StoredRow> = chunk
            .iter()
            .zip(predictions)
            .map(|(r, p)| StoredRow::new(r, p))
            .collect();
        run.add(&rows);
        classified += rows.len();
        let seconds = (now_ms() - started) / 1000.0;
        run.seconds = seconds_before + seconds;
        store.save(&run, &rows).await?;
        // Reviews the reader has got to: those saved, then those waiting.
        let seen = run.done + reviews(&waiting);
        let consumed = feed.consumed() as f64;
        state.estimate.set(Some(estimate(
            run.done, seen, consumed, size, all_read, classified, seconds,
        )));
        state.run.set(Some(run.clone()));
        if state.follow.get_untracked() {
            show_page(state, last_page(run.done)).await;
        }
        if state.stop.get_untracked() {
            return Ok(());
        }
    }
    run.finished = true;
    store.save(&run, &[]).await?;
    state.run.set(Some(run));
    Ok(())
}
