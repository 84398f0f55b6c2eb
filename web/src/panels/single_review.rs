//! One review: the text box, Classify (or Ctrl+Enter), and the answer with its
//! confidence; the answer's explanation is [`super::explanation`]'s.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::explanation::{ExplanationView, WhyButton};
use crate::fetch::now_ms;
use crate::lifecycle::{ModelState, Status, classify_review};
use crate::state::{ExplainState, ReviewState, Shown};
use crate::text::{capitalize, percent};

/// The review box, its answer, and the answer's explanation.
#[component]
pub fn SingleReview() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let state = expect_context::<ReviewState>();
    let explain = expect_context::<ExplainState>();
    let ready = move || model.status.get() == Status::Ready;
    let empty = move || state.text.with(|t| t.trim().is_empty());
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if (ev.ctrl_key() || ev.meta_key()) && ev.key() == "Enter" {
            ev.prevent_default();
            classify(model, state, explain);
        }
    };
    view! {
        <section class="single" aria-labelledby="single-title">
            <h2 id="single-title">"One review"</h2>
            <label for="review">"Review text"</label>
            <textarea
                id="review"
                rows="7"
                placeholder="Paste or type a movie review…"
                prop:value=move || state.text.get()
                on:input=move |ev| state.text.set(event_target_value(&ev))
                on:keydown=on_key
            ></textarea>
            <div class="actions">
                <button
                    id="classify"
                    class="primary"
                    on:click=move |_| classify(model, state, explain)
                    disabled=move || !ready() || empty() || model.busy.get()
                >
                    "Classify"
                </button>
                <span class="hint">
                    {move || {
                        if !ready() {
                            "Waiting for the model…"
                        } else if empty() {
                            "Type a review to classify it."
                        } else {
                            "Ctrl+Enter classifies."
                        }
                    }}
                </span>
            </div>
            <div class="result" aria-live="polite" data-testid="result">
                {move || state.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {move || state.shown.get().map(result_view)}
            </div>
            <ExplanationView />
        </section>
    }
}

/// Classify the review in the box, unless the model is busy.
fn classify(model: ModelState, state: ReviewState, explain: ExplainState) {
    let text = state.text.get_untracked();
    if text.trim().is_empty() || model.busy.get_untracked() {
        return;
    }
    model.busy.set(true);
    state.error.set(None);
    explain.explanation.set(None);
    spawn_local(async move {
        let t0 = now_ms();
        let result = classify_review(model, &text).await;
        let latency_ms = now_ms() - t0;
        match result {
            Ok(Some(r)) => state.shown.set(Some(Shown {
                prediction: r.prediction,
                latency_ms,
                engine: r.engine,
                max_len: r.max_len,
                truncation: r.truncation,
                windows: r.windows,
            })),
            Ok(None) => {}
            Err(e) => state.error.set(Some(e)),
        }
        model.busy.set(false);
    });
}

/// The answer: label, confidence bar, every label's probability, how long it
/// took, and what truncation left out.
fn result_view(s: Shown) -> impl IntoView {
    let p = &s.prediction;
    let pct = p.confidence * 100.0;
    let kind = if p.label.eq_ignore_ascii_case("positive") {
        "positive"
    } else if p.label.eq_ignore_ascii_case("negative") {
        "negative"
    } else {
        "other"
    };
    let headline = format!(
        "{}, {} confidence",
        capitalize(&p.label),
        percent(p.confidence)
    );
    let probs = p
        .probabilities
        .iter()
        .map(|(l, v)| format!("{l} {}", percent(*v)))
        .collect::<Vec<_>>()
        .join(" · ");
    let truncated = p.truncated.then(|| {
        let budget = s.max_len.saturating_sub(2);
        let how = if s.truncation == "head" {
            "kept the beginning"
        } else {
            "kept the beginning and the end"
        };
        format!(
            "This review has {} tokens; the model reads at most {budget}, so it {how} ({} truncation).",
            p.tokens, s.truncation
        )
    });
    view! {
        <div class=format!("verdict {kind}")>
            <p class="label" data-testid="label">{headline}</p>
            <div
                class="bar"
                role="meter"
                aria-label="Confidence"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=format!("{pct:.0}")
            >
                <div class="fill" style:width=format!("{pct:.1}%")></div>
            </div>
            <p class="probs">{probs}</p>
            <p class="meta" data-testid="meta">
                {format!("{:.0} ms on {}", s.latency_ms, s.engine)}
            </p>
            {truncated.map(|t| view! { <p class="notice">{t}</p> })}
            <WhyButton />
        </div>
    }
}
