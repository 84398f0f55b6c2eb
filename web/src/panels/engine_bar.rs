//! The engine bar: which engine the model runs on (and on how many CPU threads),
//! the switch between WebGPU and the CPU, and notices about either.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::engine::Engine;
use crate::lifecycle::{ModelState, Status, switch_engine};

/// The engine picker, the engine's name, and why the page is not on WebGPU.
#[component]
pub fn EngineBar() -> impl IntoView {
    let state = expect_context::<ModelState>();
    let on_change = move |ev: leptos::ev::Event| {
        let wanted = if event_target_value(&ev) == "webgpu" {
            Engine::WebGpu
        } else {
            Engine::Cpu
        };
        if state.engine.get_untracked() == Some(wanted) {
            return;
        }
        spawn_local(async move {
            match switch_engine(state, wanted).await {
                Ok(()) => state.notice.set(None),
                Err(e) => state.notice.set(Some(e)),
            }
        });
    };
    view! {
        <div class="engine">
            <label for="engine">"Runs on "</label>
            <select
                id="engine"
                on:change=on_change
                prop:value=move || match state.engine.get() {
                    Some(Engine::WebGpu) => "webgpu",
                    _ => "cpu",
                }
                disabled=move || state.status.get() != Status::Ready
            >
                <option value="webgpu">"WebGPU"</option>
                <option value="cpu">"CPU (wasm)"</option>
            </select>
            <span class="engine-name" data-testid="engine">
                {move || state.engine.get().map(|e| e.to_string()).unwrap_or_else(|| "…".into())}
            </span>
            {move || {
                // WebGPU runs on the GPU's own threads; the CPU engine on this many.
                let cpu = state.engine.get() == Some(Engine::Cpu);
                state.threads.get().filter(|_| cpu).map(|n| {
                    let text = if n == 1 { "1 thread".to_string() } else { format!("{n} threads") };
                    view! { <span class="threads" data-testid="threads">{text}</span> }
                })
            }}
            {move || state.webgpu_note.get().map(|n| view! { <span class="note">{n}</span> })}
            {move || state.notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
        </div>
    }
}
