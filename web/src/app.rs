//! The page: a Leptos (client-side rendered) app around [`model_core::Classifier`].
//!
//! [`App`] creates each feature's state and provides it as context, so each panel
//! (one per feature, in `panels`) takes only what it reads. The model runs in the
//! JS library's Web Worker ([`crate::client`]), so the page keeps painting and
//! taking input while it classifies.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::lifecycle::ModelState;
use crate::lifecycle::first_load;
pub use crate::lifecycle::{ModelSource, Status};
use crate::panels::batch::BatchPanel;
use crate::panels::engine_bar::EngineBar;
use crate::panels::model_panel::ModelPanel;
use crate::panels::single_review::SingleReview;
use crate::panels::teach::TeachPanel;
use crate::state::{BatchState, ExplainState, ReviewState, TeachState};

/// Mount the page on `<body>` with the model served next to it in `model/`.
pub fn mount() {
    report_panics();
    crate::fetch::register_service_worker("./sw.js");
    leptos::mount::mount_to_body(|| view! { <App source=ModelSource::Url("model/".into()) /> })
}

/// Report Rust panics on the console instead of an opaque "unreachable" (in the
/// page and in the JS library's worker).
pub fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("panic: {info}").into());
    }));
}

/// The whole page, with its model loaded from `source`.
#[component]
pub fn App(source: ModelSource) -> impl IntoView {
    let model = ModelState::new(source);
    let review = ReviewState::default();
    provide_context(model);
    provide_context(review);
    provide_context(ExplainState::default());
    provide_context(BatchState::default());
    provide_context(TeachState::default());
    spawn_local(first_load(model));
    view! {
        <header class="top">
            <h1>"Review sentiment"</h1>
            <p class="tagline">
                "A BERT model fine-tuned with this project's Rust trainer, running in your browser. "
                "Your text never leaves this device."
            </p>
            <EngineBar />
        </header>
        <main>
            <ModelPanel />
            <SingleReview />
            <BatchPanel />
            <TeachPanel />
        </main>
        <footer>
            <span>{move || model.model_info.get().unwrap_or_default()}</span>
        </footer>
    }
}
