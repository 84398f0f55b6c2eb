//! Choosing where the model runs. burn 0.22 picks the backend at run time through
//! [`Device`], so one binary carries every backend and the user chooses with a flag.

use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A compute backend the user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// A GPU through wgpu when one is there, else `flex`.
    #[default]
    Auto,
    /// burn's pure-Rust CPU backend (SIMD, multi-threaded natively, simd128 on wasm).
    Flex,
    /// The ndarray CPU backend (deprecated upstream, kept selectable).
    Ndarray,
    /// wgpu: Vulkan/Metal/DX12 natively, WebGPU in the browser.
    Wgpu,
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "flex" | "cpu" => Ok(Self::Flex),
            "ndarray" => Ok(Self::Ndarray),
            "wgpu" | "gpu" | "webgpu" => Ok(Self::Wgpu),
            other => Err(Error::InvalidArgument(format!(
                "unknown backend `{other}` (expected auto, flex, ndarray or wgpu)"
            ))),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
        })
    }
}

/// A device ready to use, and a description of it for logs and the page.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The burn device.
    pub device: Device,
    /// Which backend it is (never `Auto`).
    pub kind: BackendKind,
    /// Adapter name and type for wgpu, `cpu` otherwise.
    pub description: String,
}

/// Initialise the wgpu runtime once per process and describe its adapter (native).
/// burn registers one runtime per adapter selector, so a second `init` would fail.
#[cfg(not(target_family = "wasm"))]
fn init_wgpu() -> Result<(Device, burn::tensor::wgpu::wgpu::AdapterInfo)> {
    use std::sync::OnceLock;
    type Init = std::result::Result<(Device, burn::tensor::wgpu::wgpu::AdapterInfo), String>;
    static WGPU: OnceLock<Init> = OnceLock::new();
    WGPU.get_or_init(|| {
        Device::wgpu_options()
            .init_with_setup()
            .map(|(device, setup)| (device, setup.adapter.get_info()))
            .map_err(|e| format!("no usable adapter: {e}"))
    })
    .clone()
    .map_err(|message| Error::Backend {
        backend: "wgpu".into(),
        message,
    })
}

/// Pick a device natively. `Auto` uses wgpu only on a real GPU: on a machine whose
/// only adapter is a software rasteriser (lavapipe, llvmpipe) flex is much faster.
#[cfg(not(target_family = "wasm"))]
pub fn select_device(kind: BackendKind) -> Result<SelectedDevice> {
    use burn::tensor::wgpu::wgpu::DeviceType;
    let cpu = |kind| SelectedDevice {
        device: match kind {
            #[cfg(feature = "native")]
            #[allow(deprecated)]
            // ndarray is deprecated upstream but part of this project's design
            BackendKind::Ndarray => Device::ndarray(),
            _ => Device::flex(),
        },
        kind,
        description: format!("{kind} (CPU, {} threads)", threads()),
    };
    match kind {
        BackendKind::Flex => Ok(cpu(BackendKind::Flex)),
        #[cfg(feature = "native")]
        BackendKind::Ndarray => Ok(cpu(BackendKind::Ndarray)),
        #[cfg(not(feature = "native"))]
        BackendKind::Ndarray => Err(Error::Backend {
            backend: "ndarray".into(),
            message: "not compiled in (enable the `native` feature)".into(),
        }),
        BackendKind::Wgpu => {
            let (device, info) = init_wgpu()?;
            Ok(SelectedDevice {
                device,
                kind: BackendKind::Wgpu,
                description: format!(
                    "wgpu: {} ({:?}, {:?})",
                    info.name, info.device_type, info.backend
                ),
            })
        }
        BackendKind::Auto => match init_wgpu() {
            Ok((device, info)) if info.device_type != DeviceType::Cpu => Ok(SelectedDevice {
                device,
                kind: BackendKind::Wgpu,
                description: format!(
                    "wgpu: {} ({:?}, {:?})",
                    info.name, info.device_type, info.backend
                ),
            }),
            _ => Ok(cpu(BackendKind::Flex)),
        },
    }
}

/// Threads the CPU backends use.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
