//! Device selection in the browser.
//!
//! WebGPU is tried first through burn's wgpu runtime (`init_async`: a browser cannot
//! block on adapter requests). When the browser offers no adapter, or the user asks
//! for the CPU, flex runs on wasm with simd128.
//!
//! The threaded module (feature `threads`, no `webgpu`) has only the CPU engine:
//! wgpu's browser types cannot be shared between threads. The library's worker asks
//! [`auto_engine`] first and runs WebGPU in a module that has it.

use std::cell::RefCell;

use burn::tensor::Device;
#[cfg(feature = "webgpu")]
use burn::tensor::wgpu::WgpuBackend;

/// Which engine runs the model in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// burn wgpu on the browser's WebGPU.
    WebGpu,
    /// burn flex on wasm.
    Cpu,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::WebGpu => "WebGPU",
            // Which module static/boot.js loaded: the relaxed-SIMD build where the
            // browser has it (fused multiply-add in the GEMM), else plain simd128.
            Engine::Cpu if cfg!(feature = "relaxed-simd") => "CPU (wasm, relaxed SIMD)",
            Engine::Cpu => "CPU (wasm)",
        })
    }
}

thread_local! {
    /// The WebGPU device, initialised once per page: switching engines back and
    /// forth must not ask the browser for a second adapter.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// Initialise WebGPU (once). The error says why it is unavailable (no
/// `navigator.gpu`, no adapter...), for the page to show next to its CPU fallback.
pub async fn init_webgpu() -> Result<Device, String> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    webgpu_adapter().await?;
    open_webgpu().await
}

/// burn's wgpu device on the browser's WebGPU, once an adapter is known to exist
/// (wgpu's own errors for a missing one print its internal structures).
#[cfg(feature = "webgpu")]
async fn open_webgpu() -> Result<Device, String> {
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| format!("WebGPU unavailable: {e}"))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

#[cfg(not(feature = "webgpu"))]
async fn open_webgpu() -> Result<Device, String> {
    Err("WebGPU is not in the threaded CPU module (the library runs WebGPU in its single-threaded module)".into())
}

/// The device for `engine`: WebGPU may fail, the CPU never does.
pub async fn device_for(engine: Engine) -> Result<Device, String> {
    match engine {
        Engine::WebGpu => init_webgpu().await,
        Engine::Cpu => Ok(Device::flex()),
    }
}

/// Why the WebGPU device was lost, if it was: `static/lib/gpu-watch.js` records the
/// `GPUDevice.lost` reason in `globalThis.bertSentimentGpu.lost`.
pub fn webgpu_lost() -> Option<String> {
    use js_sys::Reflect;
    let watch = Reflect::get(&js_sys::global(), &"bertSentimentGpu".into()).ok()?;
    let lost = Reflect::get(&watch, &"lost".into()).ok()?;
    lost.as_string()
}

/// What the browser says about its WebGPU adapter: `(software, description)`; or,
/// in words, why there is none (no `navigator.gpu`, no adapter).
async fn webgpu_adapter() -> Result<(bool, String), String> {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;
    const NO_WEBGPU: &str = "WebGPU unavailable: this browser has no WebGPU (no navigator.gpu)";
    const NO_ADAPTER: &str = "WebGPU unavailable: the browser offers no WebGPU adapter (no usable GPU, or WebGPU is turned off)";
    // The global's navigator: the page's window, or the library's Web Worker.
    let gpu = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"gpu".into()))
        .ok()
        .filter(|gpu| !gpu.is_undefined() && !gpu.is_null())
        .ok_or(NO_WEBGPU)?;
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or(NO_WEBGPU)?;
    let promise: Promise = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into().ok())
        .ok_or(NO_ADAPTER)?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .ok()
        .filter(|a| !a.is_null() && !a.is_undefined())
        .ok_or(NO_ADAPTER)?;
    let info = Reflect::get(&adapter, &"info".into()).map_err(|_| NO_ADAPTER)?;
    let field = |k: &str| {
        Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let fallback = Reflect::get(&info, &"isFallbackAdapter".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let architecture = field("architecture");
    let software = fallback || architecture.eq_ignore_ascii_case("swiftshader");
    let description = [field("vendor"), architecture, field("description")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok((software, description))
}

/// Which engine `auto` picks: WebGPU when the browser has a hardware adapter
/// (`Ok`); the CPU, with the reason (`Err`), when it has none or only a software one
/// (SwiftShader emulates a GPU on the CPU and is far slower than flex).
pub async fn auto_engine() -> Result<(), String> {
    match webgpu_adapter().await {
        Ok((true, description)) => Err(format!(
            "WebGPU here is a software adapter ({description}), slower than the CPU engine; you can still pick it."
        )),
        Ok((false, _)) => Ok(()),
        Err(why) => Err(why),
    }
}

/// The engine to start on ([`auto_engine`]'s pick), with a note when it is not WebGPU.
pub async fn best_device() -> (Engine, Device, Option<String>) {
    let opened = match auto_engine().await {
        Ok(()) => match WEBGPU.with(|d| d.borrow().clone()) {
            Some(device) => Ok(device),
            None => open_webgpu().await,
        },
        Err(why) => Err(why),
    };
    match opened {
        Ok(device) => (Engine::WebGpu, device, None),
        Err(why) => (Engine::Cpu, Device::flex(), Some(why)),
    }
}
