//! The release model fine-tuned in the page on an IMDb task it cannot do yet
//! (`tests/e2e/tune-imdb.mjs`): in `cargo xtask e2e`, and with the native trainer's
//! training step on the same reviews for the ratio in `cargo xtask bench-tune`
//! ([`crate::bench_web`]).

use std::path::Path;

use crate::workspace::{root, run_in};

/// Run `tests/e2e/tune-imdb.mjs` against the page at `url`; with `trainer` (a release
/// build), the native rate too.
pub fn tune_imdb(url: &str, artifacts: &Path, trainer: Option<&Path>) -> Result<(), String> {
    let artifacts = artifacts.to_string_lossy();
    let trainer = trainer.map(|t| t.to_string_lossy().to_string());
    let mut envs = vec![("PAGE_URL", url), ("ARTIFACTS", &*artifacts)];
    if let Some(t) = &trainer {
        envs.push(("TRAINER", t));
    }
    run_in(&root().join("tests/e2e"), "node", &["tune-imdb.mjs"], &envs)
}
