//! The progress bar the panels share (download, explanation, batch).

use leptos::prelude::*;

/// A labelled progress bar.
pub fn progress_view(id: &'static str, caption: String, done: f64, total: f64) -> impl IntoView {
    view! {
        <label for=id>{caption}</label>
        <progress id=id max=total.max(1.0) value=done></progress>
    }
}
