//! A fine-tuning run's checkpoint as the worker keeps it (`static/lib/tuning-store.js`
//! writes it to IndexedDB): `{ step, steps, model, optimizer }`, the last two burnpack
//! bytes. A reload starts the same run again (same model, examples and settings) and
//! restores it, to end where an uninterrupted run would.

use js_sys::{Object, Reflect, Uint8Array};
use model_core::training::Snapshot;
use wasm_bindgen::prelude::*;

use super::{err, with_run};
use crate::engine::Engine;

fn field(o: &JsValue, name: &str) -> Result<JsValue, JsError> {
    Reflect::get(o, &name.into()).map_err(|_| err(format!("checkpoint: no `{name}`")))
}

fn count(o: &JsValue, name: &str) -> Result<usize, JsError> {
    field(o, name)?
        .as_f64()
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
        .map(|n| n as usize)
        .ok_or_else(|| err(format!("checkpoint: `{name}` is not a step count")))
}

fn bytes(o: &JsValue, name: &str) -> Result<Vec<u8>, JsError> {
    let v = field(o, name)?;
    if !v.is_instance_of::<Uint8Array>() {
        return Err(err(format!("checkpoint: `{name}` is not a Uint8Array")));
    }
    Ok(Uint8Array::from(v).to_vec())
}

/// The run in progress as a checkpoint. The CPU engine only: burn's optimizer state
/// has no asynchronous read, which is all WebGPU allows.
#[wasm_bindgen(js_name = fineTuneSnapshot)]
pub fn fine_tune_snapshot() -> Result<JsValue, JsError> {
    with_run(|run| {
        if run.base.engine == Engine::WebGpu {
            return Err(err(
                "checkpoints are kept on the CPU engine only (WebGPU's optimizer state cannot be read back in the browser)",
            ));
        }
        let s = run.tune.snapshot().map_err(err)?;
        let o = Object::new();
        let set = |k: &str, v: JsValue| Reflect::set(&o, &k.into(), &v).map(|_| ());
        set("step", (s.step as f64).into())
            .and_then(|_| set("steps", (s.steps as f64).into()))
            .and_then(|_| set("model", Uint8Array::from(s.model.as_slice()).into()))
            .and_then(|_| set("optimizer", Uint8Array::from(s.optimizer.as_slice()).into()))
            .map_err(|_| err("checkpoint: cannot build the object"))?;
        Ok(o.into())
    })
}

/// Go on from `checkpoint` (what [`fine_tune_snapshot`] returned in a run of the
/// same model, examples and settings), right after `fineTuneStart`.
#[wasm_bindgen(js_name = fineTuneRestore)]
pub fn fine_tune_restore(checkpoint: JsValue) -> Result<usize, JsError> {
    let snapshot = Snapshot {
        step: count(&checkpoint, "step")?,
        steps: count(&checkpoint, "steps")?,
        model: bytes(&checkpoint, "model")?,
        optimizer: bytes(&checkpoint, "optimizer")?,
    };
    with_run(|run| {
        run.tune.restore(&snapshot).map_err(err)?;
        Ok(snapshot.step)
    })
}
