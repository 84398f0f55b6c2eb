//! Many reviews: pasted one per line or opened from a .txt, .jsonl or .csv file of
//! any size ([`crate::batch`] reads and classifies it), with progress (rate and time
//! left), accuracy and a confusion matrix when the input has labels, one page of
//! the results at a time, the results as CSV, and what a reload left.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use super::progress::progress_view;
use crate::batch::record::{RunRecord, csv_header, duration};
use crate::batch::{self, Input, PAGE};
use crate::fetch::{blob, download_blob};
use crate::lifecycle::{ModelState, Status};
use crate::state::BatchState;
use crate::text::percent;

/// Rows per part of the CSV file (each becomes a blob, so the page never holds it all).
const CSV_PART: usize = 1000;

/// The results file, written from the storage a part at a time.
async fn save_csv() -> Result<(), String> {
    let store = batch::store().await?;
    let run = store.run().await?.ok_or("no results to save")?;
    let parts = js_sys::Array::of1(&JsValue::from_str(&csv_header(&run.labels)));
    let mut from = 0;
    while from < run.done {
        let rows = store.rows(from, CSV_PART).await?;
        if rows.is_empty() {
            break;
        }
        let text: String = rows.iter().map(|r| r.csv(&run.labels)).collect();
        let part = blob(&js_sys::Array::of1(&JsValue::from_str(&text)), "text/csv")?;
        parts.push(&part);
        from += rows.len();
    }
    download_blob("sentiment-results.csv", &blob(&parts, "text/csv")?)
}

/// "1,234".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a run that is not going says about itself.
fn summary(run: &RunRecord) -> String {
    let of = if run.source == "pasted" {
        "pasted reviews".to_string()
    } else {
        run.source.clone()
    };
    let rate = if run.seconds > 0.0 {
        format!(
            " in {} ({:.1} reviews/s)",
            duration(run.seconds),
            run.done as f64 / run.seconds
        )
    } else {
        String::new()
    };
    if run.finished {
        format!("{} reviews of {of} classified{rate}.", grouped(run.done))
    } else if run.pasted.is_some() {
        format!(
            "{} of the pasted reviews classified; stopped before line {}.",
            grouped(run.done),
            grouped(run.next_line)
        )
    } else {
        format!(
            "{} reviews of {of} classified; stopped before line {}. Open {of} again to go on from there.",
            grouped(run.done),
            grouped(run.next_line)
        )
    }
}

/// The batch input, its progress, metrics and results.
#[component]
pub fn BatchPanel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let state = expect_context::<BatchState>();
    spawn_local(batch::restore(state));
    let ready = move || model.status.get() == Status::Ready;
    let classify_pasted = move |_| {
        let text = state.text.get_untracked();
        spawn_local(batch::run(model, state, Input::Pasted(text)));
    };
    let open_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|l| l.get(0)) else {
            return;
        };
        // The same file can be picked again (to go on after a reload).
        input.set_value("");
        spawn_local(batch::run(model, state, Input::File(file)));
    };
    let go_on = move |_| {
        if let Some(text) = state
            .run
            .with_untracked(|r| r.as_ref().and_then(|r| r.pasted.clone()))
        {
            spawn_local(batch::run(model, state, Input::Pasted(text)));
        }
    };
    let save = move |_| {
        spawn_local(async move {
            if let Err(e) = save_csv().await {
                state.error.set(Some(e));
            }
        })
    };
    let done = move || state.run.with(|r| r.as_ref().map_or(0, |r| r.done));
    let pages = move || done().div_ceil(PAGE).max(1);
    let turn = move |page: usize| {
        state.follow.set(page + 1 == pages());
        spawn_local(batch::show_page(state, page));
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
                        accept=".txt,.jsonl,.ndjson,.json,.csv,.tsv"
                        on:change=open_file
                        disabled=move || !ready() || model.busy.get()
                    />
                </label>
                <Show when=move || state.running.get()>
                    <button id="stop-batch" on:click=move |_| state.stop.set(true) disabled=move || state.stop.get()>
                        "Stop"
                    </button>
                </Show>
            </div>
            {move || state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || progress(state)}
            {move || {
                state.run.with(|r| r.as_ref().filter(|r| r.skipped > 0).map(|r| {
                    let more = r.skipped - r.skipped_messages.len();
                    let items = r.skipped_messages.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view();
                    view! {
                        <div class="error skipped" role="alert" data-testid="batch-skipped">
                            <p>{format!("{} lines skipped:", grouped(r.skipped))}</p>
                            <ul>{items}</ul>
                            {(more > 0).then(|| view! { <p>{format!("and {} more", grouped(more))}</p> })}
                        </div>
                    }
                }))
            }}
            {move || {
                state.run.with(|r| r.as_ref().and_then(|r| r.accuracy().map(|a| (r.labels.clone(), a, r.confusion.clone()))))
                    .map(|(labels, acc, m)| confusion_view(labels, acc, m))
            }}
            <Show when=move || { done() > 0 || state.run.with(|r| r.is_some()) }>
                <div class="actions">
                    <button id="download-csv" on:click=save disabled=move || done() == 0>
                        "Download results (CSV)"
                    </button>
                    <Show when=move || {
                        !state.running.get()
                            && state.run.with(|r| r.as_ref().is_some_and(|r| !r.finished && r.pasted.is_some()))
                    }>
                        <button id="continue-batch" on:click=go_on disabled=move || !ready() || model.busy.get()>
                            "Go on"
                        </button>
                    </Show>
                    <button
                        id="clear-results"
                        on:click=move |_| spawn_local(batch::clear(state))
                        disabled=move || state.running.get()
                    >
                        "Clear results"
                    </button>
                </div>
                {results_table(state)}
                <nav class="pager" aria-label="Results pages">
                    <button id="page-prev" on:click=move |_| turn(state.page.get_untracked().saturating_sub(1)) disabled=move || state.page.get() == 0>
                        "Previous"
                    </button>
                    <span data-testid="batch-page">{move || format!("Page {} of {}", state.page.get() + 1, pages())}</span>
                    <button id="page-next" on:click=move |_| turn(state.page.get_untracked() + 1) disabled=move || { state.page.get() + 1 >= pages() }>
                        "Next"
                    </button>
                </nav>
            </Show>
        </section>
    }
}

/// The progress bar while a run goes (rate, time left), else what the kept run says;
/// `data-done` and `data-finished` say the same to tests.
fn progress(state: BatchState) -> impl IntoView {
    let run = state.run.get();
    let finished = run.as_ref().is_some_and(|r| r.finished);
    let done = run.as_ref().map_or(0, |r| r.done);
    let body = if state.running.get() {
        let caption = match state.estimate.get() {
            Some(e) => {
                let about = if e.exact { "" } else { "about " };
                let left = e
                    .left
                    .map(|s| format!(" · about {} left", duration(s)))
                    .unwrap_or_default();
                format!(
                    "{} of {about}{} reviews classified · {:.1} reviews/s{left}",
                    grouped(e.done),
                    grouped(e.total),
                    e.rate
                )
            }
            None => format!("{} reviews classified; reading…", grouped(done)),
        };
        let total = state.estimate.get().map_or(1, |e| e.total);
        Some(progress_view("batch-progress", caption, done as f64, total as f64).into_any())
    } else {
        run.as_ref()
            .map(|r| view! { <p>{summary(r)}</p> }.into_any())
    };
    view! {
        <div class="batch-status" data-testid="batch-status" data-done=done.to_string() data-finished=finished.to_string()>
            {body}
        </div>
    }
}

/// One page of the results.
fn results_table(state: BatchState) -> impl IntoView {
    view! {
        <table class="results" data-testid="batch-results">
            <thead>
                <tr>
                    <th scope="col">"Line"</th>
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
                            .map(|r| {
                                let short: String = r.text.chars().take(140).collect();
                                let wrong = r.expected.as_ref().is_some_and(|e| *e != r.label);
                                view! {
                                    <tr class:wrong=wrong>
                                        <td>{r.line}</td>
                                        <td class="text">{short}</td>
                                        <td>{r.label.clone()}</td>
                                        <td>{percent(r.confidence)}</td>
                                        <td>{r.expected.clone().unwrap_or_default()}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    })
                }}
            </tbody>
        </table>
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
