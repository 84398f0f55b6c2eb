//! Device selection in the browser.
//!
//! WebGPU is tried first through burn's wgpu runtime (`init_async`: a browser cannot
//! block on adapter requests). When the browser offers no adapter, or the user asks
//! for the CPU, flex runs on wasm with simd128.

use burn::tensor::Device;
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
            Engine::Cpu => "CPU (wasm)",
        })
    }
}

/// Initialise WebGPU. The error says why it is unavailable (no `navigator.gpu`, no
/// adapter...), for the page to show next to its CPU fallback.
pub async fn init_webgpu() -> Result<Device, String> {
    Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| format!("WebGPU unavailable: {e}"))
}

/// The device for `engine`: WebGPU may fail, the CPU never does.
pub async fn device_for(engine: Engine) -> Result<Device, String> {
    match engine {
        Engine::WebGpu => init_webgpu().await,
        Engine::Cpu => Ok(Device::flex()),
    }
}

/// WebGPU when available, else the CPU, with the reason for the fallback.
pub async fn best_device() -> (Engine, Device, Option<String>) {
    match init_webgpu().await {
        Ok(device) => (Engine::WebGpu, device, None),
        Err(why) => (Engine::Cpu, Device::flex(), Some(why)),
    }
}
