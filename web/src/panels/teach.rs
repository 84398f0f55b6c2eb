//! "Teach it your texts": fine-tune the page's model on the user's own labelled
//! examples, in the library's worker (`clf.fineTune`), with progress and Cancel; then
//! download the result as a bundle, or go back to the release model.
//!
//! Examples are read by the trainer's readers (model-core's input pipeline): JSONL or
//! CSV/TSV with a header, pasted or from a file, labels by the page's rule (a label
//! name in any case, or a class index).

use leptos::prelude::*;
use leptos::task::spawn_local;
use model_core::input::stream::{Format, read_all};
use model_core::input::{Columns, Labels, RawLabel, Row};
use wasm_bindgen::JsValue;

use super::progress::progress_view;
use crate::archive::tar;
use crate::batch::record::duration;
use crate::client::{SavedTune, Tune, TuneProgress, TuneReport};
use crate::fetch::{blob, download_blob, read_file};
use crate::lifecycle::{
    ModelSource, ModelState, Status, discard_fine_tune, export_bundle, fine_tune,
    replace_fine_tuned, saved_fine_tune,
};
use crate::state::TeachState;

/// The format of pasted examples: JSONL when the first line is an object, else CSV,
/// tab-separated when that line has a tab.
fn pasted_format(text: &str) -> Format {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        Format::Jsonl
    } else if first.contains('\t') {
        Format::Csv { delimiter: b'\t' }
    } else {
        Format::Csv { delimiter: b',' }
    }
}

/// The labelled rows of the picked file, else of the pasted text.
fn read_examples(state: TeachState) -> Result<Vec<Row>, String> {
    let columns = Columns::default();
    let rows = match state.file.get_untracked() {
        Some((name, bytes)) => read_all(
            bytes.as_slice(),
            Format::for_name(&name),
            &columns,
            &name,
            Labels::Required,
        ),
        None => {
            let text = state.text.get_untracked();
            read_all(
                text.as_bytes(),
                pasted_format(&text),
                &columns,
                "the pasted examples",
                Labels::Required,
            )
        }
    };
    rows.map_err(|e| e.to_string())
}

/// Rows as `fineTune` takes them: `[{ text, label }]`.
fn examples_js(rows: Vec<Row>) -> JsValue {
    let out = js_sys::Array::new();
    for row in rows {
        let o = js_sys::Object::new();
        let label: JsValue = match row.label {
            Some(RawLabel::Index(i)) => (i as f64).into(),
            Some(RawLabel::Name(n)) => n.into(),
            None => JsValue::NULL,
        };
        let _ = js_sys::Reflect::set(&o, &"text".into(), &row.text.into());
        let _ = js_sys::Reflect::set(&o, &"label".into(), &label);
        out.push(&o);
    }
    out.into()
}

/// The settings as typed, as `fineTune` names them; errors name the field.
fn settings_js(state: TeachState) -> Result<JsValue, String> {
    fn number<T: std::str::FromStr>(what: &str, value: &str) -> Result<T, String> {
        value
            .trim()
            .parse()
            .map_err(|_| format!("{what}: `{value}` is not a number"))
    }
    let o = js_sys::Object::new();
    let set = |key: &str, value: JsValue| {
        let _ = js_sys::Reflect::set(&o, &key.into(), &value);
    };
    set(
        "epochs",
        number::<usize>("Epochs", &state.epochs.get_untracked())?.into(),
    );
    set(
        "learningRate",
        number::<f64>("Learning rate", &state.learning_rate.get_untracked())?.into(),
    );
    set(
        "batchSize",
        number::<usize>("Batch size", &state.batch_size.get_untracked())?.into(),
    );
    let max_len = state.max_len.get_untracked();
    if !max_len.trim().is_empty() {
        set("maxLen", number::<usize>("Max length", &max_len)?.into());
    }
    let layers = state.layers.get_untracked();
    set(
        "layers",
        match layers.trim().parse::<usize>() {
            Ok(n) => n.into(),
            Err(_) => layers.trim().into(),
        },
    );
    let held_out: f64 = number("Held out (%)", &state.held_out.get_untracked())?;
    set("validation", (held_out / 100.0).into());
    set(
        "seed",
        (number::<u64>("Seed", &state.seed.get_untracked())? as f64).into(),
    );
    Ok(o.into())
}

/// Read the examples and settings, then fine-tune.
fn start(model: ModelState, state: TeachState) {
    state.error.set(None);
    let prepared = read_examples(state).and_then(|rows| {
        if rows.is_empty() {
            return Err("no examples: paste some, or open a file".into());
        }
        Ok((examples_js(rows), settings_js(state)?))
    });
    match prepared {
        Ok(p) => run(model, state, Some(p)),
        Err(e) => state.error.set(Some(e)),
    }
}

/// The page's checkpoints: every 10 steps, or a minute, whichever comes first (a
/// MiniLM checkpoint is about 270 MB; ten steps of batch 16 take about as long as
/// writing one).
fn checkpoint_js() -> JsValue {
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"steps".into(), &10.into());
    let _ = js_sys::Reflect::set(&o, &"seconds".into(), &60.into());
    o.into()
}

/// Fine-tune on `examples` and settings (JS values), or go on with the kept run
/// (`None`), with progress in the state.
fn run(model: ModelState, state: TeachState, examples: Option<(JsValue, JsValue)>) {
    state.error.set(None);
    let Ok(controller) = web_sys::AbortController::new() else {
        state
            .error
            .set(Some("this browser has no AbortController".into()));
        return;
    };
    let signal = controller.signal();
    state.abort.set_value(Some(controller));
    state.running.set(true);
    state.saved.set(None);
    state.progress.set(None);
    state.report.set(None);
    spawn_local(async move {
        let progress = move |p: TuneProgress| state.progress.set(Some(p));
        let tune = match &examples {
            Some((examples, settings)) => Tune::New { examples, settings },
            None => Tune::Resume,
        };
        let out = fine_tune(model, tune, &checkpoint_js(), progress, &signal).await;
        state.running.set(false);
        state.abort.set_value(None);
        match out {
            Ok(report) => state.report.set(Some(report)),
            Err(_) if signal.aborted() => state.error.set(Some(
                "Cancelled: the model before is still the one answering.".into(),
            )),
            Err(e) => {
                state.error.set(Some(format!(
                    "Fine-tuning failed: {e}. The model before is still the one answering."
                )));
                // A failed run may have left a checkpoint to go on from.
                look_for_saved(model, state).await;
            }
        }
    });
}

/// Offer the run kept in the browser's storage, if the model has one.
async fn look_for_saved(model: ModelState, state: TeachState) {
    match saved_fine_tune(model).await {
        Ok(saved) => state.saved.set(saved),
        Err(e) => web_sys::console::warn_1(&format!("no kept fine-tuning run: {e}").into()),
    }
}

fn saved_line(s: &SavedTune) -> String {
    let when = js_sys::Date::new(&s.saved_at.into())
        .to_locale_time_string("default")
        .as_string()
        .unwrap_or_default();
    format!(
        "A fine-tuning run on {} examples stopped at step {} of {} (kept at {when}).",
        s.examples, s.step, s.steps
    )
}

fn progress_caption(p: &TuneProgress) -> String {
    match p.stage.as_str() {
        "prepare" => "Scoring the held-out examples and loading a trainable copy…".into(),
        "finish" => "Packaging the model and calibrating it on the held-out examples…".into(),
        _ => format!(
            "Step {} of {} · loss {:.3} · {:.1} examples/s · {} left{}",
            p.step,
            p.steps,
            p.loss.unwrap_or(f64::NAN),
            p.samples_per_second.unwrap_or(0.0),
            duration(p.eta_seconds.unwrap_or(0.0)),
            p.warning
                .as_ref()
                .map(|w| format!(" · {w}"))
                .unwrap_or_default(),
        ),
    }
}

fn report_line(r: &TuneReport) -> String {
    let resumed = if r.resumed_from > 0 {
        format!(", going on from the checkpoint of step {}", r.resumed_from)
    } else {
        String::new()
    };
    let warning = r
        .warning
        .as_ref()
        .map(|w| format!(" Note: {w}."))
        .unwrap_or_default();
    let trained = format!(
        "{} examples trained in {} ({:.1} examples/s{resumed}){warning}",
        r.examples.train,
        duration(r.seconds),
        r.samples_per_second
    );
    match (&r.before, &r.after) {
        (Some(b), Some(a)) => {
            let calibrated = match (a.ece_uncalibrated, a.ece) {
                (Some(u), Some(c)) => {
                    format!(" Confidence calibrated on them (ECE {u:.3} → {c:.3}).")
                }
                _ => String::new(),
            };
            format!(
                "Held-out accuracy {:.1}% → {:.1}% on {} examples; {trained}.{calibrated}",
                b.accuracy * 100.0,
                a.accuracy * 100.0,
                r.examples.validation
            )
        }
        _ => format!("{trained}; none held out, so no accuracy and no calibration."),
    }
}

/// The fine-tuned model as `personalized-model.tar` (the bundle's folder).
async fn download(model: ModelState) -> Result<(), String> {
    let files = export_bundle(model).await?;
    let archive = tar("personalized-model", &files)?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(archive.as_slice()));
    download_blob(
        "personalized-model.tar",
        &blob(&parts, "application/x-tar")?,
    )
}

/// A setting's labelled input.
fn setting(id: &'static str, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label for=id>{label}</label>
        <input
            id=id
            type="text"
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev))
        />
    }
}

/// The examples, the settings, the run and its report.
#[component]
pub fn TeachPanel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let state = expect_context::<TeachState>();
    let ready = move || model.status.get() == Status::Ready;
    let open_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|l| l.get(0)) else {
            state.file.set(None);
            return;
        };
        spawn_local(async move {
            match read_file(&file).await {
                Ok(bytes) => state
                    .file
                    .set(Some((file.name(), std::sync::Arc::new(bytes)))),
                Err(e) => state.error.set(Some(e)),
            }
        });
    };
    let no_input =
        move || state.file.with(Option::is_none) && state.text.with(|t| t.trim().is_empty());
    // Each time a model becomes ready: is a run of it kept from before a reload?
    Effect::new(move |_| {
        if ready() && !state.running.get_untracked() {
            spawn_local(look_for_saved(model, state));
        }
    });
    let discard = move |_| {
        spawn_local(async move {
            match discard_fine_tune(model).await {
                Ok(()) => state.saved.set(None),
                Err(e) => state
                    .error
                    .set(Some(format!("The kept run was not dropped: {e}"))),
            }
        })
    };
    let release = move |_| {
        spawn_local(async move {
            state.report.set(None);
            replace_fine_tuned(model, ModelSource::Url("model/".into())).await;
        })
    };
    let save = move |_| {
        spawn_local(async move {
            if let Err(e) = download(model).await {
                state.error.set(Some(format!("The download failed: {e}")));
            }
        })
    };
    view! {
        <section class="teach" aria-labelledby="teach-title">
            <h2 id="teach-title">"Teach it your texts"</h2>
            <p class="hint">
                "Fine-tune the model on labelled examples of your own, on this device: nothing is uploaded. "
                "Paste JSONL (one {\"text\": …, \"label\": \"positive\"} per line) or CSV/TSV with a text and a label column, or open such a file."
            </p>
            <label for="teach-input">"Labelled examples"</label>
            <textarea
                id="teach-input"
                rows="5"
                placeholder="text,label\nArrived broken.,negative\nWorks great!,positive"
                prop:value=move || state.text.get()
                on:input=move |ev| state.text.set(event_target_value(&ev))
            ></textarea>
            <label class="file">
                "or open a .jsonl or .csv file "
                <input
                    id="teach-file"
                    type="file"
                    accept=".jsonl,.ndjson,.json,.csv,.tsv"
                    on:change=open_file
                />
            </label>
            <details class="settings">
                <summary>"Settings"</summary>
                <div class="grid">
                    {setting("teach-epochs", "Epochs", state.epochs)}
                    {setting("teach-lr", "Learning rate", state.learning_rate)}
                    {setting("teach-batch", "Batch size", state.batch_size)}
                    {setting("teach-max-len", "Max length (tokens; blank: the default, at most the model's)", state.max_len)}
                    {setting("teach-layers", "Layers to train (all, head or a number)", state.layers)}
                    {setting("teach-held-out", "Held out (%)", state.held_out)}
                    {setting("teach-seed", "Seed", state.seed)}
                </div>
            </details>
            {move || {
                state
                    .saved
                    .get()
                    .filter(|_| !state.running.get())
                    .map(|s| {
                        view! {
                            <div class="notice" data-testid="teach-saved">
                                <p>{saved_line(&s)}</p>
                                <div class="actions">
                                    <button
                                        id="teach-resume"
                                        class="primary"
                                        on:click=move |_| run(model, state, None)
                                        disabled=move || !ready() || model.busy.get()
                                    >
                                        "Resume it"
                                    </button>
                                    <button id="teach-discard" on:click=discard>
                                        "Discard it"
                                    </button>
                                </div>
                            </div>
                        }
                    })
            }}
            <div class="actions">
                <button
                    id="teach-start"
                    class="primary"
                    on:click=move |_| start(model, state)
                    disabled=move || !ready() || model.busy.get() || no_input()
                >
                    "Fine-tune"
                </button>
                <Show when=move || state.running.get()>
                    <button
                        id="teach-cancel"
                        on:click=move |_| {
                            state.abort.with_value(|c| {
                                if let Some(c) = c {
                                    c.abort();
                                }
                            })
                        }
                    >
                        "Cancel"
                    </button>
                </Show>
            </div>
            {move || {
                state
                    .progress
                    .get()
                    .filter(|_| state.running.get())
                    .map(|p| {
                        progress_view("teach-progress", progress_caption(&p), p.step as f64, p.steps as f64)
                    })
            }}
            {move || {
                state
                    .report
                    .get()
                    .map(|r| view! { <p class="ready" data-testid="teach-report">{report_line(&r)}</p> })
            }}
            {move || state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Show when=move || model.personal.get()>
                <div class="actions">
                    <button id="teach-download" on:click=save>"Download the model (.tar)"</button>
                    <button id="teach-release" on:click=release>"Back to the release model"</button>
                </div>
                <p class="hint">
                    "The fine-tuned model is this page's model, on this device, until you go back to the release model or open another: download it to use it elsewhere (\"Use your own model\", or "
                    <code>"trainer predict --model"</code>
                    ")."
                </p>
            </Show>
        </section>
    }
}
