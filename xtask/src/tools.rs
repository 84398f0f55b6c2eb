//! The tools the page and its tests need, installed once at pinned versions.

use std::process::Command;

use crate::workspace::{root, run};

/// `program --version`'s output, if it runs.
pub fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `program sub --version`'s output, if it runs (for cargo subcommands).
pub fn version_of_sub(program: &str, sub: &str) -> Option<String> {
    let out = Command::new(program)
        .args([sub, "--version"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The exact wasm-bindgen version in Cargo.lock: wasm-bindgen-cli must match it.
pub fn locked_wasm_bindgen() -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_string());
        }
    }
    Err("Cargo.lock has no wasm-bindgen entry".into())
}

/// The nightly toolchain the threaded page module is built with: wasm threads need
/// the standard library rebuilt with atomics (`-Z build-std`), which only nightly
/// cargo does. Pinned, like every other tool.
pub const NIGHTLY: &str = "nightly-2026-05-20";

/// Install what building the page needs, once: the wasm target, the pinned nightly
/// with its standard library's source (for the threaded module), and the
/// wasm-bindgen CLI matching Cargo.lock (its `wasm-bindgen-test-runner` also runs the
/// browser tests).
pub fn ensure_web_tools() -> Result<(), String> {
    if Command::new("rustup").arg("--version").output().is_ok() {
        run("rustup", &["target", "add", "wasm32-unknown-unknown"], &[])?;
        let have = Command::new("rustup")
            .args(["run", NIGHTLY, "rustc", "--version"])
            .env("RUSTUP_AUTO_INSTALL", "0")
            .output()
            .is_ok_and(|o| o.status.success());
        let src = have
            && Command::new("rustup")
                .args(["run", NIGHTLY, "rustc", "--print", "sysroot"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .is_some_and(|root| {
                    std::path::Path::new(&root)
                        .join("lib/rustlib/src/rust/library/std")
                        .is_dir()
                        && std::path::Path::new(&root)
                            .join("lib/rustlib/wasm32-unknown-unknown")
                            .is_dir()
                });
        if !src {
            eprintln!("installing the {NIGHTLY} toolchain for the threaded module (once)");
            run(
                "rustup",
                &[
                    "toolchain",
                    "install",
                    NIGHTLY,
                    "--profile",
                    "minimal",
                    "--component",
                    "rust-src",
                    "--target",
                    "wasm32-unknown-unknown",
                ],
                &[],
            )?;
        }
    }
    let wb = locked_wasm_bindgen()?;
    if version_of("wasm-bindgen").is_none_or(|v| !v.ends_with(&wb)) {
        eprintln!("installing wasm-bindgen-cli {wb} (once, a few minutes)");
        run(
            "cargo",
            &["install", "wasm-bindgen-cli", "--version", &wb],
            &[],
        )?;
    }
    Ok(())
}
