//! Many reviews: pasted one per line or opened from a .txt, .jsonl or .csv file,
//! classified in chunks with a yield between them, shown as a table with
//! accuracy and a confusion matrix when the input has labels, and saved as CSV.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::progress::progress_view;
use crate::fetch::{download, read_file, yield_now};
use crate::lifecycle::{ModelState, Status, predict};
use crate::state::BatchState;
use crate::text::{BatchItem, BatchRow, confusion, parse_batch, results_csv};

/// Classify `items` 16 at a time, adding rows as they come, unless the model is busy.
fn run_batch(model: ModelState, state: BatchState, items: Vec<BatchItem>) {
    if items.is_empty() || model.busy.get_untracked() {
        return;
    }
    model.busy.set(true);
    state.rows.set(Vec::new());
    state.error.set(None);
    let total = items.len();
    state.progress.set(Some((0, total)));
    spawn_local(async move {
        for chunk in items.chunks(16) {
            let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
            match predict(model, &texts).await {
                Ok(preds) => state.rows.update(|rows| {
                    rows.extend(chunk.iter().zip(preds).map(|(item, p)| BatchRow {
                        text: item.text.clone(),
                        expected: item.label.clone(),
                        label: p.label,
                        confidence: p.confidence,
                    }))
                }),
                Err(e) => {
                    state.error.set(Some(e));
                    break;
                }
            }
            let done = state.rows.with_untracked(Vec::len);
            state.progress.set(Some((done, total)));
            yield_now().await;
        }
        model.busy.set(false);
    });
}

/// The batch input, its progress, metrics and results.
#[component]
pub fn BatchPanel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let state = expect_context::<BatchState>();
    let ready = move || model.status.get() == Status::Ready;
    let classify_pasted = move |_| {
        let labels = model.labels.get_untracked();
        match parse_batch("pasted", &state.text.get_untracked(), &labels) {
            Ok(items) => run_batch(model, state, items),
            Err(e) => state.error.set(Some(e)),
        }
    };
    let open_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|l| l.get(0)) else {
            return;
        };
        spawn_local(async move {
            let labels = model.labels.get_untracked();
            let parsed = read_file(&file).await.and_then(|bytes| {
                let text = String::from_utf8(bytes)
                    .map_err(|e| format!("{}: not UTF-8 text ({e})", file.name()))?;
                parse_batch(&file.name(), &text, &labels)
            });
            match parsed {
                Ok(items) if items.is_empty() => state
                    .error
                    .set(Some(format!("{}: no reviews found", file.name()))),
                Ok(items) => run_batch(model, state, items),
                Err(e) => state.error.set(Some(e)),
            }
        });
    };
    let save_csv = move |_| {
        let csv = state.rows.with_untracked(|r| results_csv(r));
        if let Err(e) = download("sentiment-results.csv", "text/csv", &csv) {
            state.error.set(Some(e));
        }
    };
    view! {
        <section class="batch" aria-labelledby="batch-title">
            <h2 id="batch-title">"Many reviews"</h2>
            <label for="batch-input">"One review per line"</label>
            <textarea
                id="batch-input"
                rows="5"
                placeholder="One review per line…"
                prop:value=move || state.text.get()
                on:input=move |ev| state.text.set(event_target_value(&ev))
            ></textarea>
            <div class="actions">
                <button
                    id="classify-batch"
                    on:click=classify_pasted
                    disabled=move || {
                        !ready() || model.busy.get()
                            || state.text.with(|t| t.trim().is_empty())
                    }
                >
                    "Classify all"
                </button>
                <label class="file">
                    "or open a .txt, .jsonl or .csv file "
                    <input
                        id="batch-file"
                        type="file"
                        accept=".txt,.jsonl,.csv,.ndjson"
                        on:change=open_file
                        disabled=move || !ready()
                    />
                </label>
            </div>
            {move || state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || {
                state.progress.get().map(|(done, total)| {
                    let caption = format!("{done} of {total} reviews classified");
                    progress_view("batch-progress", caption, done as f64, total as f64)
                })
            }}
            {move || {
                let labels = model.labels.get();
                state
                    .rows
                    .with(|rows| confusion(rows, &labels))
                    .map(move |(acc, m)| confusion_view(labels, acc, m))
            }}
            <Show when=move || state.rows.with(|r| !r.is_empty())>
                <button id="download-csv" on:click=save_csv>"Download results (CSV)"</button>
                <table class="results" data-testid="batch-results">
                    <thead>
                        <tr>
                            <th scope="col">"#"</th>
                            <th scope="col">"Review"</th>
                            <th scope="col">"Label"</th>
                            <th scope="col">"Confidence"</th>
                            <th scope="col">"Expected"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            state.rows.with(|rows| {
                                rows.iter()
                                    .enumerate()
                                    .take(2000)
                                    .map(|(i, r)| {
                                        let short: String = r.text.chars().take(140).collect();
                                        let wrong = r.expected.as_ref().is_some_and(|e| *e != r.label);
                                        view! {
                                            <tr class:wrong=wrong>
                                                <td>{i + 1}</td>
                                                <td class="text">{short}</td>
                                                <td>{r.label.clone()}</td>
                                                <td>{format!("{:.1}%", r.confidence * 100.0)}</td>
                                                <td>{r.expected.clone().unwrap_or_default()}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            })
                        }}
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// Accuracy on the labelled reviews and the confusion matrix.
fn confusion_view(labels: Vec<String>, accuracy: f64, matrix: Vec<Vec<usize>>) -> impl IntoView {
    let header = labels
        .iter()
        .map(|l| view! { <th scope="col">{format!("predicted {l}")}</th> })
        .collect_view();
    let rows = labels
        .iter()
        .zip(matrix)
        .map(|(l, row)| {
            let cells = row
                .into_iter()
                .map(|n| view! { <td>{n}</td> })
                .collect_view();
            view! {
                <tr>
                    <th scope="row">{format!("expected {l}")}</th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="metrics" data-testid="batch-metrics">
            <p>{format!("Accuracy on labelled reviews: {:.1}%", accuracy * 100.0)}</p>
            <table class="confusion">
                <thead>
                    <tr>
                        <th></th>
                        {header}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
