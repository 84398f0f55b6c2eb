//! Building the page into `$CARGO_TARGET_DIR/dist`: the static files as they are (the
//! JS library in `lib/` among them), the examples in `examples/`, the
//! plain simd128 module, the relaxed-SIMD module beside it, the threaded module
//! (wasm threads, CPU only) for the library's worker, and a report of what a first
//! visit downloads.
//!
//! Plain cargo and wasm-bindgen, no bundler: `static/` is already the site (its
//! `index.html` loads `boot.js`, which picks a module), so a build is two `cargo
//! build`s, two `wasm-bindgen`s and a copy. That also spares every user and CI run
//! installing a bundler.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{NIGHTLY, ensure_web_tools};
use crate::workspace::{dist_dir, root, run, target_dir};

/// The cargo profile of the page's modules; the browser tests build with it too.
pub const WEB_PROFILE: &str = "web-release";

/// Build the page into `dist_dir()`.
pub fn build_web() -> Result<PathBuf, String> {
    ensure_web_tools()?;
    let model = root().join("static/model/manifest.json");
    if !model.is_file() {
        return Err(format!(
            "{}: no release model; export one with `trainer export --run <run> --out static/model --format web --dtype int8`",
            model.display()
        ));
    }
    let dist = dist_dir();
    if dist.exists() {
        std::fs::remove_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    }
    copy_static(&root().join("static"), &dist)?;
    // The examples for web developers, served beside the page (`/examples/embed/`).
    copy_static(&root().join("web/examples"), &dist.join("examples"))?;
    // The plain simd128 module (every browser with WebAssembly SIMD) at the root, and
    // the one with relaxed SIMD's fused multiply-add and dot product in `relaxed/`,
    // which `static/boot.js` loads where the browser validates it.
    build_module(&[], &dist)?;
    build_module(&["--features", "relaxed-simd"], &dist.join("relaxed"))?;
    build_threaded(&dist.join("threads"))?;
    precompress(&dist)?;
    report_sizes(&dist);
    Ok(dist)
}

/// A folder of `static/` (or `from`) into `to`, except READMEs (a folder's notes,
/// not the site's).
pub fn copy_static(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_static(&src, &dst)?;
        } else if entry.file_name() != "README.md" {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// One page module: the `web` library as a cdylib with its start function (feature
/// `page`) and `features`, then wasm-bindgen into `out`.
fn build_module(features: &[&str], out: &Path) -> Result<(), String> {
    let mut all = vec!["--features", "page"];
    all.extend_from_slice(features);
    cargo_module(&all, &[])?;
    bindgen(&target_dir(), out)
}

/// The threaded module in `out`: the CPU engine on a rayon pool of Web Workers that
/// share the module's memory, for the library's worker in cross-origin-isolated
/// pages. Shared memory and atomics need the standard library rebuilt with them
/// (`-Z build-std`, so the pinned nightly), in a target directory of its own (other
/// flags, other artefacts). With relaxed SIMD (`static/lib/worker.js` loads it only
/// where the browser validates relaxed SIMD and shared memory) and without WebGPU
/// (wgpu's browser types cannot cross threads). Shared memory declares its maximum
/// up front: the 4 GiB wasm32 allows, reserved, not allocated.
fn build_threaded(out: &Path) -> Result<(), String> {
    let target = target_dir().join("threads");
    let target_s = target.to_string_lossy().to_string();
    let envs = [
        ("RUSTUP_TOOLCHAIN", NIGHTLY),
        ("CARGO_TARGET_DIR", target_s.as_str()),
        (
            "RUSTFLAGS",
            "-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 -C link-arg=--max-memory=4294967296",
        ),
        // `cargo xtask test` lints through stable clippy-driver: not for nightly's rustc.
        ("RUSTC_WORKSPACE_WRAPPER", ""),
        ("RUSTC", ""),
    ];
    cargo_module(
        &[
            "--no-default-features",
            "--features",
            "page,threads,relaxed-simd",
            "-Z",
            "build-std=panic_abort,std",
            // The `target_features` section must stay: it is how wasm-bindgen sees
            // atomics and makes the memory shared (a full strip removes it).
            "--config",
            "profile.web-release.strip=\"debuginfo\"",
            // The link of the module itself (after `--`: this crate only): the memory
            // shared and imported, with the thread-local storage symbols that
            // wasm-bindgen's threads support sets up in each thread.
            "--",
            "-C",
            "link-arg=--shared-memory",
            "-C",
            "link-arg=--import-memory",
            "-C",
            "link-arg=--export=__wasm_init_tls",
            "-C",
            "link-arg=--export=__tls_size",
            "-C",
            "link-arg=--export=__tls_align",
            "-C",
            "link-arg=--export=__tls_base",
        ],
        &envs,
    )
    .map_err(|e| format!("the threaded module ({NIGHTLY}, -Z build-std): {e}"))?;
    bindgen(&target, out)
}

/// `cargo rustc` of the `web` library as a cdylib for wasm, in the page's profile.
fn cargo_module(features: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let mut args = vec![
        "rustc",
        "--package",
        "web",
        "--lib",
        "--crate-type",
        "cdylib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        WEB_PROFILE,
    ];
    args.extend_from_slice(features);
    run("cargo", &args, envs)
}

/// wasm-bindgen of the module cargo left in `target` into `out` (`web.js`,
/// `web_bg.wasm`: the names `boot.js`, the library's worker and the service worker
/// load).
fn bindgen(target: &Path, out: &Path) -> Result<(), String> {
    let wasm = target
        .join("wasm32-unknown-unknown")
        .join(WEB_PROFILE)
        .join("web.wasm");
    let s = |p: &Path| p.to_string_lossy().to_string();
    run(
        "wasm-bindgen",
        &[
            &s(&wasm),
            "--target",
            "web",
            "--out-dir",
            &s(out),
            "--out-name",
            "web",
            "--no-typescript",
        ],
        &[],
    )
}

/// Write `name.gz` (gzip -9) beside every file of `dir` that it makes at least 5%
/// smaller, for `cargo xtask serve` to send compressed (static hosts compress the
/// same files on the fly or from such copies).
fn precompress(dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            precompress(&path)?;
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.len() < 1024 || path.extension().is_some_and(|e| e == "gz" || e == "png") {
            continue;
        }
        let out = Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(&path)
            .output()
            .map_err(|e| format!("gzip {}: {e} (is gzip installed?)", path.display()))?;
        if out.status.success() && (out.stdout.len() as u64) * 100 < meta.len() * 95 {
            let gz = PathBuf::from(format!("{}.gz", path.display()));
            std::fs::write(&gz, &out.stdout).map_err(|e| format!("{}: {e}", gz.display()))?;
        }
    }
    Ok(())
}

fn gzip_len(path: &Path) -> Option<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .ok()?;
    Some(out.stdout.len() as u64)
}

fn report_sizes(dist: &Path) {
    let model: u64 = std::fs::read_dir(dist.join("model"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".gz"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let mb = |b: u64| b as f64 / 1e6;
    for (dir, what) in [
        (dist.to_path_buf(), "simd128"),
        (dist.join("relaxed"), "relaxed SIMD"),
        (dist.join("threads"), "threads, relaxed SIMD, CPU only"),
    ] {
        let (wasm, js) = (dir.join("web_bg.wasm"), dir.join("web.js"));
        if let (Ok(w), Some(wg), Some(jg)) = (wasm.metadata(), gzip_len(&wasm), gzip_len(&js)) {
            eprintln!(
                "page module ({what}): wasm {:.1} MB ({:.2} MB gzipped), js {:.2} MB gzipped",
                mb(w.len()),
                mb(wg),
                mb(jg),
            );
        }
    }
    eprintln!("model files {:.1} MB", mb(model));
}
