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
    /// The ndarray CPU backend: deprecated upstream in favour of flex, and among the
    /// slowest crates to compile, so only with the `ndarray` Cargo feature.
    Ndarray,
    /// wgpu: Vulkan/Metal/DX12 natively, WebGPU in the browser.
    Wgpu,
    /// CUDA on NVIDIA GPUs, through burn's CubeCL CUDA runtime. Only with the `cuda`
    /// Cargo feature: it needs the NVIDIA driver and NVRTC at run time.
    Cuda,
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "flex" | "cpu" => Ok(Self::Flex),
            "ndarray" => Ok(Self::Ndarray),
            "wgpu" | "gpu" | "webgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(Error::InvalidArgument(format!(
                "unknown backend `{other}` (expected auto, flex, ndarray, wgpu or cuda)"
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
            Self::Cuda => "cuda",
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
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // deprecated upstream; still selectable with the feature
            BackendKind::Ndarray => Device::ndarray(),
            _ => Device::flex(),
        },
        kind,
        description: format!("{kind} (CPU, {} threads)", threads()),
    };
    match kind {
        BackendKind::Flex => Ok(cpu(BackendKind::Flex)),
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => Ok(cpu(BackendKind::Ndarray)),
        #[cfg(not(feature = "ndarray"))]
        BackendKind::Ndarray => Err(Error::Backend {
            backend: "ndarray".into(),
            message: "not compiled in (build with `--features ndarray`; burn deprecates it in \
                      favour of flex, the default CPU backend)"
                .into(),
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
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(SelectedDevice {
            device: Device::cuda(0),
            kind: BackendKind::Cuda,
            description: "cuda: device 0".into(),
        }),
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda => Err(Error::Backend {
            backend: "cuda".into(),
            message:
                "not compiled in (build with `--features cuda`, which needs the NVIDIA driver \
                      and NVRTC at run time)"
                    .into(),
        }),
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

/// The wgpu device for a test that also checks the GPU path: `None`, with a printed
/// `SKIPPED` line naming `what`, on a machine without an adapter, and a panic instead
/// when `REQUIRE_WGPU` is set, so CI (lavapipe) can never skip the GPU path silently.
/// Public for the integration tests; one place for that rule.
#[cfg(not(target_family = "wasm"))]
pub fn wgpu_for_tests(what: &str) -> Option<SelectedDevice> {
    match select_device(BackendKind::Wgpu) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var_os("REQUIRE_WGPU").is_some() => {
            panic!("REQUIRE_WGPU is set but wgpu has no adapter for {what}: {e}")
        }
        Err(e) => {
            eprintln!("{what} on wgpu SKIPPED: {e}");
            None
        }
    }
}

/// `n` devices of one backend, for data-parallel training (`trainer fine-tune --devices N`).
///
/// With wgpu, device `i` is wgpu's discrete GPU `i`; with cuda, CUDA device `i`. With the CPU
/// backends it is the one CPU device `n` times: each batch is still split into `n` shards, but
/// they share the same cores. That adds no speed; it is how the data-parallel path is tested on
/// a machine with one GPU or none. `n == 1` is exactly [`select_device`].
#[cfg(not(target_family = "wasm"))]
pub fn select_devices(kind: BackendKind, n: usize) -> Result<Vec<SelectedDevice>> {
    if n == 0 {
        return Err(Error::InvalidArgument(
            "--devices must be at least 1".into(),
        ));
    }
    let first = select_device(kind)?;
    if n == 1 {
        return Ok(vec![first]);
    }
    match first.kind {
        BackendKind::Wgpu => (0..n)
            .map(|i| {
                let (device, setup) = Device::wgpu_options()
                    .device_kind(burn::tensor::DeviceKind::DiscreteGpu(i))
                    .init_with_setup()
                    .map_err(|e| Error::Backend {
                        backend: "wgpu".into(),
                        message: format!("discrete GPU {i} (of --devices {n}): {e}"),
                    })?;
                let info = setup.adapter.get_info();
                Ok(SelectedDevice {
                    device,
                    kind: BackendKind::Wgpu,
                    description: format!(
                        "wgpu GPU {i}: {} ({:?}, {:?})",
                        info.name, info.device_type, info.backend
                    ),
                })
            })
            .collect(),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok((0..n)
            .map(|i| SelectedDevice {
                device: Device::cuda(i),
                kind: BackendKind::Cuda,
                description: format!("cuda: device {i}"),
            })
            .collect()),
        _ => Ok(vec![first; n]),
    }
}

/// Keep the wgpu probe quiet on a machine without a desktop session: turn off Mesa's
/// Vulkan device-selection layer (`NODEVICE_SELECT=1`) when neither `WAYLAND_DISPLAY`
/// nor `DISPLAY` is set and the user has not configured the layer.
///
/// Why: that implicit layer picks the GPU the desktop runs on by connecting to the
/// display server; without one, libwayland prints `error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment.` to stderr for every Vulkan instance, and `--backend
/// auto` opens several while it looks for a GPU: lines that read as a failure before a
/// run that then, rightly, goes on (on the CPU when the only adapter is lavapipe).
/// With no display the layer has nothing to choose by, so the order of GPUs is the
/// driver's either way.
///
/// # Safety
/// It sets an environment variable: call it first thing in `main`, before any other
/// thread exists (another thread reading the environment meanwhile is undefined
/// behaviour).
#[cfg(not(target_family = "wasm"))]
pub unsafe fn quiet_headless_vulkan() {
    let var = |name| std::env::var_os(name).is_some();
    let headless = !var("WAYLAND_DISPLAY") && !var("DISPLAY");
    let configured = var("NODEVICE_SELECT") || var("MESA_VK_DEVICE_SELECT");
    if headless && !configured {
        // SAFETY: the caller's contract: no other thread exists yet.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// Threads the CPU backends use.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
