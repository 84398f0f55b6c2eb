//! The browser benchmarks (dev-only): `cargo xtask bench-web` (our page's engine
//! against Transformers.js on the same model in the same headless Chromium),
//! `bench-page-batch` (the page's many-reviews mode) and `bench-tune` (fine-tuning in
//! the page against the native trainer).

use std::path::Path;

use crate::page::build_web;
use crate::workspace::{root, run, run_in, target_dir};

/// The browser benchmark (`tests/bench-web/`): our page's engine against Transformers.js on
/// the same model in the same headless Chromium. Dev-only: it needs `../shared` (the review
/// sample) and a Python with `tools/requirements-onnx.txt` (`ONNX_PYTHON`, default `python3`)
/// to make the ONNX files once.
pub fn bench_web() -> Result<(), String> {
    let dist = build_web()?;
    let dir = root().join("tests/bench-web");
    if !dir.join("node_modules/@huggingface/transformers").is_dir() {
        // --ignore-scripts: onnxruntime-node's install script downloads from nuget.org, and
        // only the browser build is used here.
        run_in(
            &dir,
            "npm",
            &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            &[],
        )?;
    }
    let work = target_dir().join("bench-web");
    let models = work.join("models");
    let onnx = models.join("release/onnx/model.onnx");
    let model_hash = std::fs::read_to_string(root().join("static/model/manifest.json"))
        .map_err(|e| format!("static/model/manifest.json: {e}"))?;
    let stamp = work.join("models.manifest.json");
    let stale = std::fs::read_to_string(&stamp).ok().as_deref() != Some(model_hash.as_str());
    if !onnx.is_file() || !models.join("web-f32/manifest.json").is_file() || stale {
        let hf = work.join("hf");
        let hf_s = hf.to_string_lossy().to_string();
        let _ = std::fs::remove_dir_all(&hf);
        let _ = std::fs::remove_dir_all(&models);
        // The release model for `transformers` and ONNX, and, as our page's fp32 contender,
        // the same weights exported again in f32.
        let trainer = crate::checks::trainer()?;
        let trainer = trainer.to_string_lossy().to_string();
        let export = |out: &str, format: &[&str]| {
            let mut args = vec!["export", "--run", "static/model", "--out", out];
            args.extend_from_slice(format);
            run(&trainer, &args, &[])
        };
        export(&hf_s, &["--format", "hf"])?;
        let f32_s = models.join("web-f32").to_string_lossy().to_string();
        export(&f32_s, &["--format", "web", "--dtype", "f32"])?;
        let python = std::env::var("ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
        let release = models.join("release").to_string_lossy().to_string();
        run(&python, &["tools/export_onnx.py", &hf_s, &release], &[])?;
        std::fs::write(&stamp, &model_hash).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    let texts = work.join("texts.jsonl");
    if !texts.is_file() {
        let texts_s = texts.to_string_lossy().to_string();
        run(
            "python3",
            &["tools/bench_texts.py", "64", "7", &texts_s],
            &[],
        )?;
    }
    let artifacts = target_dir().join("bench-web-artifacts");
    let s = |p: &Path| p.to_string_lossy().to_string();
    run_in(
        &dir,
        "node",
        &["bench.mjs"],
        &[
            ("DIST", &s(&dist)),
            ("MODELS", &s(&models)),
            ("F32_MODEL", &s(&models.join("web-f32"))),
            ("TEXTS", &s(&texts)),
            ("ARTIFACTS", &s(&artifacts)),
        ],
    )?;
    eprintln!("results: {}", artifacts.join("bench-web.json").display());
    Ok(())
}

/// `cargo xtask bench-page-batch [N]`: the page on N test reviews (default all
/// 25,000), `trainer predict` (the test build's binary) as the reference.
pub fn bench_page_batch(args: &[String]) -> Result<(), String> {
    let reviews = match args.first() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("bench-page-batch: `{n}` is not a number of reviews"))?,
        None => 25_000,
    };
    let dist = build_web()?;
    let trainer = crate::checks::trainer()?;
    let listener = crate::serve::bind(0)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || crate::serve::serve(listener, dist, true));
    let artifacts = target_dir().join("page-batch");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    crate::many_reviews::many_reviews(&format!("http://{addr}/"), &artifacts, reviews, &trainer)?;
    eprintln!("timings, CSVs and the review file: {}", artifacts.display());
    Ok(())
}

/// `cargo xtask bench-tune`: the release model fine-tuned in the page on 400 IMDb
/// reviews (10 against 7-8, two epochs, length 128, batch 16, every core) against the
/// native trainer's training step on the same reviews (a release build, MiniLM through
/// `HF_HOME`), measured before and after the browser's run.
pub fn bench_tune() -> Result<(), String> {
    let dist = build_web()?;
    run(
        "cargo",
        &["build", "--release", "-p", "trainer", "--quiet"],
        &[],
    )?;
    let trainer = target_dir().join("release/trainer");
    let listener = crate::serve::bind(0)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || crate::serve::serve(listener, dist, true));
    let artifacts = target_dir().join("bench-tune");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    crate::tune_imdb::tune_imdb(&format!("http://{addr}/"), &artifacts, Some(&trainer))?;
    eprintln!("results: {}", artifacts.join("tune-imdb.json").display());
    Ok(())
}
