//! Building the page into `$CARGO_TARGET_DIR/dist`: the static files as they are (the
//! JS library in `lib/` among them), the examples in `examples/`, the
//! plain simd128 module, the relaxed-SIMD module beside it, and a report of what a
//! first visit downloads.
//!
//! Plain cargo and wasm-bindgen, no bundler: `static/` is already the site (its
//! `index.html` loads `boot.js`, which picks a module), so a build is two `cargo
//! build`s, two `wasm-bindgen`s and a copy. That also spares every user and CI run
//! installing a bundler.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::ensure_web_tools;
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
/// `page`) and `features`, then wasm-bindgen into `out` (`web.js`, `web_bg.wasm`: the
/// names `boot.js` and the service worker load).
fn build_module(features: &[&str], out: &Path) -> Result<(), String> {
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
        "--features",
        "page",
    ];
    args.extend_from_slice(features);
    run("cargo", &args, &[])?;
    let wasm = target_dir()
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
