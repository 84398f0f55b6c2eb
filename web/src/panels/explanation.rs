//! The explanation of one review's answer ("Why?"): occlusion run through the
//! model (in the library's worker) a few variants at a time, and the review shown with each phrase coloured
//! by how much it moved p(positive). The arithmetic is [`crate::occlusion`]'s.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::progress::progress_view;
use crate::explain::occlude;
use crate::lifecycle::{ModelState, predict};
use crate::occlusion::{Explanation, Segment, plan, segments, variants_per_run};
use crate::state::{ExplainState, ReviewState};
use crate::text::positive_index;

/// The "Why?" button under an answer.
#[component]
pub fn WhyButton() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let review = expect_context::<ReviewState>();
    let state = expect_context::<ExplainState>();
    view! {
        <button
            id="explain"
            on:click=move |_| explain(model, review, state)
            disabled=move || model.busy.get()
        >
            "Why?"
        </button>
    }
}

/// Explaining's progress, then the explanation.
#[component]
pub fn ExplanationView() -> impl IntoView {
    let state = expect_context::<ExplainState>();
    view! {
        {move || {
            state.explaining.get().map(|(done, total)| {
                let caption = format!("Explaining: {done} of {total} phrases");
                progress_view("explain-progress", caption, done as f64, total as f64)
            })
        }}
        {move || state.explanation.get().map(explanation_view)}
    }
}

/// Occlusion: remove each phrase in turn and record how p(positive) moves.
fn explain(model: ModelState, review: ReviewState, state: ExplainState) {
    let Some(shown) = review.shown.get_untracked() else {
        return;
    };
    let labels = model.labels.get_untracked();
    let pos = positive_index(&labels);
    let planned = plan(&review.text.get_untracked(), &shown.windows);
    model.busy.set(true);
    state.explaining.set(Some((0, planned.phrases.len())));
    // What the model reads of the review: all its tokens, or the budget.
    let tokens = shown.prediction.tokens.min(shown.max_len);
    spawn_local(async move {
        let per_run = variants_per_run(tokens);
        let base = planned.whole.then(|| shown.prediction.probabilities[pos].1);
        let run = |variants: Vec<String>| async move {
            let refs: Vec<&str> = variants.iter().map(String::as_str).collect();
            predict(model, &refs).await
        };
        let progress = |done, total| state.explaining.set(Some((done, total)));
        match occlude(&planned, base, pos, per_run, run, progress).await {
            Ok(spans) => state.explanation.set(Some(Explanation {
                text: planned.text,
                spans,
                positive: labels[pos].clone(),
                gaps: planned.gaps,
            })),
            Err(e) => review.error.set(Some(e)),
        }
        state.explaining.set(None);
        model.busy.set(false);
    });
}

/// The explained text, each phrase coloured by its effect.
fn explanation_view(e: Explanation) -> impl IntoView {
    let max = e.spans.iter().fold(1e-6f32, |m, (_, d)| m.max(d.abs()));
    let positive = e.positive.clone();
    let rendered = segments(&e)
        .into_iter()
        .map(|segment| match segment {
            Segment::Plain(s) => view! { <span>{s}</span> }.into_any(),
            Segment::Gap(chars) => view! {
                <span class="omitted">
                    {format!(" [… {chars} characters the model does not read …] ")}
                </span>
            }
            .into_any(),
            Segment::Phrase(s, d) => {
                let strength = (d.abs() / max).clamp(0.0, 1.0);
                let hue = if d >= 0.0 {
                    "var(--pos-rgb)"
                } else {
                    "var(--neg-rgb)"
                };
                let style = format!("background: rgba({hue}, {:.2})", 0.08 + 0.6 * strength);
                let title = format!("removing this changes p({positive}) by {:+.3}", -d);
                view! { <mark style=style title=title>{s}</mark> }.into_any()
            }
        })
        .collect_view();
    view! {
        <div class="explanation" data-testid="explanation">
            <h3>"Why"</h3>
            <p class="legend">
                <mark class="legend-pos">"green"</mark>
                " pushed towards "
                {e.positive.clone()}
                ", "
                <mark class="legend-neg">"red"</mark>
                " pushed away from it; stronger colour, stronger effect (how much p("
                {e.positive.clone()}
                ") drops when the phrase is removed)."
            </p>
            <p class="explained">{rendered}</p>
        </div>
    }
}
