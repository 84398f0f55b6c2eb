//! The page's many-reviews mode on IMDb test reviews against `trainer predict
//! --products int8` on the same file (`tests/e2e/many.mjs`): 2,000 of them in
//! `cargo xtask e2e`, any number (all 25,000 unless told) in
//! `cargo xtask bench-page-batch [N]` ([`crate::bench_web`]), with the tab's memory
//! and both throughputs.

use std::path::Path;

use crate::workspace::{root, run_in};

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
