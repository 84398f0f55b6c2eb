//! The model panel: where loading stands (download progress, errors with a
//! retry), and a bundle of the user's own to load instead.

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::progress::progress_view;
use crate::fetch::read_file;
use crate::lifecycle::{ModelSource, ModelState, Status, load, replace_fine_tuned};
use crate::state::ReviewState;

/// Load the model from the page's source. An error shown for the review came
/// from the model loaded before, so it goes.
pub async fn reload(model: ModelState, review: ReviewState) {
    review.error.set(None);
    load(model).await;
}

/// Loading status, and the picker for a bundle from disk.
#[component]
pub fn ModelPanel() -> impl IntoView {
    let state = expect_context::<ModelState>();
    let review = expect_context::<ReviewState>();
    let open_bundle = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(list) = input.files() else { return };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        spawn_local(async move {
            let mut map = HashMap::new();
            for f in files {
                match read_file(&f).await {
                    Ok(bytes) => {
                        map.insert(f.name(), bytes);
                    }
                    Err(e) => {
                        state.status.set(Status::Failed(e));
                        return;
                    }
                }
            }
            review.error.set(None);
            replace_fine_tuned(state, ModelSource::Files(Rc::new(map))).await;
        });
    };
    view! {
        <section class="model" aria-label="Model">
            {move || match state.status.get() {
                Status::Starting => view! { <p>"Starting…"</p> }.into_any(),
                Status::Downloading { file, done, total } => {
                    let caption = format!(
                        "Downloading the model ({file}): {:.1} of {:.1} MB",
                        done as f64 / 1e6,
                        total as f64 / 1e6,
                    );
                    progress_view("download", caption, done as f64, total as f64).into_any()
                }
                Status::Building => view! { <p>"Preparing the model…"</p> }.into_any(),
                Status::Ready => view! { <p class="ready">"Model ready."</p> }.into_any(),
                Status::Failed(e) => {
                    view! {
                        <div class="error" role="alert">
                            <p>"The model could not be loaded: " {e}</p>
                            <button on:click=move |_| spawn_local(reload(state, review))>"Retry"</button>
                        </div>
                    }
                        .into_any()
                }
            }}
            <details>
                <summary>"Use your own model"</summary>
                <p>
                    "Pick all files of a folder made by "
                    <code>"trainer export --format web"</code>
                    " (manifest.json, config.json, tokenizer.json and the weights). They are read locally."
                </p>
                <input
                    type="file"
                    multiple
                    aria-label="Model bundle files"
                    on:change=open_bundle
                />
            </details>
        </section>
    }
}
