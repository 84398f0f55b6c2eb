//! The page's many-reviews mode on IMDb test reviews against `trainer predict
//! --products int8` on the same file (`tests/e2e/many.mjs`): 2,000 of them in
//! `cargo xtask e2e`, any number (all 25,000 unless told) in
//! `cargo xtask bench-page-batch [N]`, with the tab's memory and both throughputs.

use std::path::Path;

use crate::page::build_web;
use crate::serve;
use crate::workspace::{root, run_in, target_dir};

/// Reviews the end-to-end test classifies in the page.
pub const E2E_REVIEWS: usize = 2000;

/// Run `tests/e2e/many.mjs` on `reviews` reviews against the page at `url`, with
/// `trainer` as the reference.
pub fn many_reviews(
    url: &str,
    artifacts: &Path,
    reviews: usize,
    trainer: &Path,
) -> Result<(), String> {
    let model = root().join("static/model");
    run_in(
        &root().join("tests/e2e"),
        "node",
        &["many.mjs"],
        &[
            ("PAGE_URL", url),
            ("ARTIFACTS", &artifacts.to_string_lossy()),
            ("REVIEWS", &reviews.to_string()),
            ("TRAINER", &trainer.to_string_lossy()),
            ("MODEL", &model.to_string_lossy()),
        ],
    )
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
    let listener = serve::bind(0)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || serve::serve(listener, dist));
    let artifacts = target_dir().join("page-batch");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    many_reviews(&format!("http://{addr}/"), &artifacts, reviews, &trainer)?;
    eprintln!("timings, CSVs and the review file: {}", artifacts.display());
    Ok(())
}
