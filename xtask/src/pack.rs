//! `cargo xtask pack`: the JS library as an npm package (`npm pack`), from the built
//! site: `lib/` (the module, its worker, its TypeScript declarations), the wasm
//! modules beside it as the site lays them out, and `web/npm/package.json`.
//! Nothing is published.

use std::path::PathBuf;

use crate::page::{build_web, copy_static};
use crate::workspace::{root, run_in, target_dir};

/// Build the site, assemble the package folder and pack it; returns the tarball.
pub fn pack() -> Result<PathBuf, String> {
    let dist = build_web()?;
    let out = target_dir().join("npm/bert-sentiment");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    for (from, to) in [
        (dist.join("lib"), out.join("lib")),
        (dist.join("relaxed"), out.join("relaxed")),
    ] {
        copy_static(&from, &to)?;
    }
    for (from, to) in [
        (dist.join("web.js"), "web.js"),
        (dist.join("web_bg.wasm"), "web_bg.wasm"),
        (dist.join("wasm-features.js"), "wasm-features.js"),
        (root().join("web/npm/package.json"), "package.json"),
        (root().join("web/npm/README.md"), "README.md"),
    ] {
        std::fs::copy(&from, out.join(to)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let dest = target_dir().join("npm");
    run_in(
        &out,
        "npm",
        &["pack", "--pack-destination", &dest.to_string_lossy()],
        &[],
    )?;
    let tarball = dest.join("bert-sentiment-0.1.0.tgz");
    if !tarball.is_file() {
        return Err(format!("{}: npm pack wrote no tarball", tarball.display()));
    }
    eprintln!("npm package: {}", tarball.display());
    Ok(tarball)
}
