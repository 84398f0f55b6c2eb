//! Helpers for the integration tests: run the `trainer` binary, read fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed tiny checkpoints made by `tools/make_tiny_fixtures.py`.
pub fn tiny(name: &str) -> PathBuf {
    root().join("model-core/tests/fixtures/tiny").join(name)
}

/// The golden values of the tiny checkpoints.
pub fn tiny_golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tiny("golden.json")).unwrap()).unwrap()
}

/// The `trainer` binary cargo built next to this test executable
/// (`cargo test --workspace` builds it because the `trainer` package has tests).
pub fn trainer_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(format!("trainer{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p trainer` first)",
        bin.display()
    );
    bin
}

/// Run `trainer args…` with `stdin`, returning its output.
pub fn trainer(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(trainer_bin())
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Assert a run failed cleanly: non-zero exit, no panic, and stderr mentions every
/// `needle`. Returns stderr.
pub fn assert_clean_failure(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "exit code 101 is a panic: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr should mention `{n}`: {stderr}");
    }
    stderr
}

/// Stdout as one JSON value per line.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "trainer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Copy a folder (flat) into a new temporary folder.
pub fn copy_dir(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// `fine-tune` arguments for a tiny 2-epoch run on the flex backend, checkpointing
/// every 2 steps.
pub fn fine_tune_args<'a>(out: &'a str, data: &'a str, model: &'a str) -> Vec<&'a str> {
    vec![
        "fine-tune",
        "--model",
        model,
        "--data",
        data,
        "--out",
        out,
        "--backend",
        "flex",
        "--max-len",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--valid-fraction",
        "0.2",
        "--checkpoint-every",
        "2",
        "--seed",
        "7",
    ]
}

/// Run `trainer args…` and return stdout, failing the test with stderr if it fails.
pub fn run_ok(args: &[&str]) -> String {
    let out = trainer(args, None);
    assert!(
        out.status.success(),
        "trainer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The texts of the tiny reviews (`reviews.jsonl`), in order.
pub fn tiny_texts() -> Vec<String> {
    std::fs::read_to_string(tiny("reviews.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// p(positive) for each tiny review, as `trainer predict` gives it for `model`.
pub fn predict_probs(model: &Path) -> Vec<f64> {
    let texts = tiny_texts();
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--backend",
        "flex",
        "--max-len",
        "64",
    ];
    args.extend(texts.iter().map(String::as_str));
    json_lines(&trainer(&args, None))
        .iter()
        .map(|v| v["probabilities"]["positive"].as_f64().unwrap())
        .collect()
}

/// Largest absolute difference between two equally long lists.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// 600 reviews: the 20 tiny ones, 30 times each (so a run lasts long enough to be killed).
pub fn repeated_reviews(dir: &Path) -> PathBuf {
    let lines = std::fs::read_to_string(tiny("reviews.jsonl")).unwrap();
    let path = dir.join("reviews600.jsonl");
    std::fs::write(&path, lines.repeat(30)).unwrap();
    path
}

/// Paths of a stop-and-resume test: an uninterrupted reference run (already
/// trained) and the folder of the run to interrupt, with that run's arguments.
pub struct StopAndResume {
    /// The temporary folder holding everything below.
    pub dir: tempfile::TempDir,
    /// The training data (600 reviews).
    pub data: PathBuf,
    /// The backbone.
    pub model: PathBuf,
    /// The uninterrupted run.
    pub straight: PathBuf,
    /// The run to interrupt.
    pub run: PathBuf,
    /// Its `fine-tune` arguments.
    pub args: Vec<String>,
}

impl StopAndResume {
    /// Train the uninterrupted run; `name` is the folder of the run to interrupt.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = repeated_reviews(dir.path());
        let model = tiny("backbone");
        let straight = dir.path().join("straight");
        run_ok(&fine_tune_args(
            straight.to_str().unwrap(),
            data.to_str().unwrap(),
            model.to_str().unwrap(),
        ));
        let run = dir.path().join(name);
        let args = fine_tune_args(
            run.to_str().unwrap(),
            data.to_str().unwrap(),
            model.to_str().unwrap(),
        )
        .into_iter()
        .map(String::from)
        .collect();
        Self {
            dir,
            data,
            model,
            straight,
            run,
            args,
        }
    }

    /// Resume the stopped run to the end; return how far its predictions are from
    /// the uninterrupted run's.
    pub fn resume_and_compare(&self) -> f64 {
        run_ok(&[
            "fine-tune",
            "--resume",
            self.run.to_str().unwrap(),
            "--backend",
            "flex",
        ]);
        max_diff(
            &predict_probs(&self.straight.join("final")),
            &predict_probs(&self.run.join("final")),
        )
    }
}
