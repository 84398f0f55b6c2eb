//! `trainer fine-tune`, `evaluate` and `export` end to end on the tiny checkpoint and
//! a 20-line JSONL file: the run folder, resume after SIGKILL, and the exports.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::*;

#[test]
fn fine_tune_writes_a_complete_run_and_evaluate_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = tiny("reviews.jsonl");
    let model = tiny("backbone");
    let stdout = run_ok(&fine_tune_args(
        run.to_str().unwrap(),
        data.to_str().unwrap(),
        model.to_str().unwrap(),
    ));
    let results: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        results["steps"], 8,
        "16 training reviews / batch 4 x 2 epochs: {results}"
    );
    for f in [
        "run.json",
        "metrics.jsonl",
        "results.json",
        "latest.json",
        "best/model.bpk",
        "best/config.json",
        "best/tokenizer.json",
        "final/model.bpk",
        "report.md",
        "loss.svg",
        "accuracy.svg",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let validations = metrics
        .lines()
        .filter(|l| l.contains("\"validation\""))
        .count();
    assert_eq!(validations, 2, "one validation per epoch:\n{metrics}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("best/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["id2label"]["1"], "positive");

    let summary: serde_json::Value = serde_json::from_str(
        run_ok(&[
            "evaluate",
            "--model",
            run.join("best").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--backend",
            "flex",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(summary["n"], 20);
    for k in ["accuracy", "f1", "precision", "recall", "ece"] {
        let v = summary[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    let confusion: u64 = summary["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, 20);
}

/// Kill a run with SIGKILL mid-epoch, resume it, and compare the final weights'
/// predictions with a run that was never stopped.
#[test]
fn resume_after_sigkill_equals_an_uninterrupted_run() {
    let t = StopAndResume::new("killed");
    let killed = &t.run;
    let mut child = Command::new(trainer_bin())
        .args(&t.args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // 120 steps per epoch: kill once a checkpoint past step 20 exists, mid-epoch 1.
    loop {
        let latest = std::fs::read_to_string(killed.join("latest.json")).unwrap_or_default();
        let step: usize = latest
            .split("step-")
            .nth(1)
            .and_then(|s| s.get(..8))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if step >= 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after 120 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !killed.join("final").exists(),
        "the kill came too late to test anything"
    );

    let d = t.resume_and_compare();
    assert!(
        d < 1e-5,
        "resumed run differs from the uninterrupted one by {d}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["steps"], 240);
}

#[test]
fn hf_export_predicts_like_the_run_and_web_export_has_a_checked_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = tiny("reviews.jsonl");
    run_ok(&fine_tune_args(
        run.to_str().unwrap(),
        data.to_str().unwrap(),
        tiny("backbone").to_str().unwrap(),
    ));

    let hf = dir.path().join("hf");
    run_ok(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        hf.to_str().unwrap(),
        "--format",
        "hf",
    ]);
    assert!(hf.join("model.safetensors").is_file() && hf.join("config.json").is_file());
    let d = max_diff(&predict_probs(&run.join("best")), &predict_probs(&hf));
    assert!(d < 1e-5, "hf export differs from the run's model by {d}");

    let web = dir.path().join("web");
    run_ok(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        web.to_str().unwrap(),
        "--format",
        "web",
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(web.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["labels"],
        serde_json::json!(["negative", "positive"])
    );
    assert_eq!(manifest["max_len"], 64);
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("best/inference.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["temperature"], best["temperature"],
        "the export carries the calibration fitted at the end of the run"
    );
    assert_eq!(manifest["exponent"], best["exponent"]);
    for f in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(web.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap());
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    }
    let d = max_diff(&predict_probs(&run.join("best")), &predict_probs(&web));
    assert!(d < 1e-6, "web export differs from the run's model by {d}");
}

#[test]
fn bad_training_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny("backbone");
    let m = model.to_str().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();

    let bad_json = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad_json,
        "{\"text\": \"good\", \"label\": \"positive\"}\n{\"text\": \"bad\", \"label\": \n",
    )
    .unwrap();
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                bad_json.to_str().unwrap(),
                "--out",
                o,
            ],
            None,
        ),
        &["bad.jsonl:2", "malformed JSON"],
    );

    let one_class = dir.path().join("one.jsonl");
    std::fs::write(&one_class, "{\"text\": \"good\", \"label\": \"positive\"}\n{\"text\": \"fine\", \"label\": \"positive\"}\n").unwrap();
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                one_class.to_str().unwrap(),
                "--out",
                dir.path().join("r2").to_str().unwrap(),
                "--valid-fraction",
                "0.5",
            ],
            None,
        ),
        &["single class"],
    );

    let csv = dir.path().join("no_text.csv");
    std::fs::write(&csv, "body,label\nhello,positive\n").unwrap();
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                csv.to_str().unwrap(),
                "--out",
                dir.path().join("r3").to_str().unwrap(),
            ],
            None,
        ),
        &["no_text.csv:1", "no text column"],
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                tiny("reviews.jsonl").to_str().unwrap(),
                "--out",
                file.to_str().unwrap(),
            ],
            None,
        ),
        &["a-file", "not a folder"],
    );

    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                tiny("reviews.jsonl").to_str().unwrap(),
                "--out",
                o,
                "--batch-size",
                "0",
            ],
            None,
        ),
        &["--batch-size"],
    );
    assert_clean_failure(
        &trainer(
            &["fine-tune", "--resume", dir.path().to_str().unwrap()],
            None,
        ),
        &["not a run folder"],
    );
    // Conflicting flags: a resumed run keeps its recorded settings, and a separate
    // validation file leaves nothing to split off.
    assert_clean_failure(
        &trainer(&["fine-tune", "--resume", o, "--lr", "1e-5"], None),
        &["--resume", "cannot be used with", "--lr"],
    );
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                tiny("reviews.jsonl").to_str().unwrap(),
                "--valid-data",
                tiny("reviews.jsonl").to_str().unwrap(),
                "--valid-fraction",
                "0.3",
                "--out",
                o,
            ],
            None,
        ),
        &["--valid-data", "cannot be used with", "--valid-fraction"],
    );
    assert!(!out.exists(), "a refused run left {} behind", out.display());
    assert_clean_failure(
        &trainer(
            &[
                "fine-tune",
                "--model",
                m,
                "--data",
                dir.path().join("missing.jsonl").to_str().unwrap(),
                "--out",
                o,
            ],
            None,
        ),
        &["missing.jsonl", "no such file"],
    );
}

/// Ctrl-C (SIGINT) saves a checkpoint after the current step and exits with 130;
/// the run then resumes to the same result as an uninterrupted one.
#[test]
fn ctrl_c_checkpoints_and_exits_cleanly() {
    let t = StopAndResume::new("interrupted");
    let run = &t.run;
    let child = Command::new(trainer_bin())
        .args(&t.args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !run.join("latest.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after 120 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("checkpoint saved") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!run.join("final").exists());

    let d = t.resume_and_compare();
    assert!(d < 1e-5, "interrupted and resumed run differs by {d}");
}

/// `--devices 2` splits every batch in two shards, runs each on its own replica of the model and
/// sums the share-weighted gradients: with dropout off, that is the whole batch's gradient, so
/// the trained model predicts what a one-device run's does (up to float summation order). This
/// machine has no second GPU: both shards run on flex, which exercises the same code path.
#[test]
fn data_parallel_over_two_devices_trains_the_same_model_as_one() {
    let dir = tempfile::tempdir().unwrap();
    // The tiny backbone with dropout off, so shards and the whole batch see the same network.
    let model = copy_dir(&tiny("backbone"));
    let config_path = model.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let data = tiny("reviews.jsonl");
    let train = |name: &str, devices: &str, lr: &str| {
        let out = dir.path().join(name);
        let mut args = fine_tune_args(
            out.to_str().unwrap(),
            data.to_str().unwrap(),
            model.path().to_str().unwrap(),
        )
        .into_iter()
        .map(|a| if a == "1e-3" { lr } else { a }.to_string())
        .collect::<Vec<_>>();
        args.extend(["--devices".into(), devices.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = run_ok(&args);
        let results: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        (out, results)
    };
    let (one, _) = train("one", "1", "1e-3");
    let (two, results) = train("two", "2", "1e-3");
    // The same run with a negligible learning rate: the model training started from.
    let (still, _) = train("still", "1", "1e-12");
    assert!(
        results["backend"]
            .as_str()
            .unwrap()
            .starts_with("2 devices, data-parallel"),
        "{results}"
    );
    let untrained = predict_probs(&still.join("final"));
    let (p1, p2) = (
        predict_probs(&one.join("final")),
        predict_probs(&two.join("final")),
    );
    assert!(
        max_diff(&p1, &untrained) > 1e-3,
        "the runs did not train: {p1:?}"
    );
    let diff = max_diff(&p1, &p2);
    assert!(
        diff < 1e-4,
        "two devices: max |dp| {diff} against one device\n{p1:?}\n{p2:?}"
    );

    // --devices 0 is refused before anything is written.
    let out = dir.path().join("zero");
    let mut args = fine_tune_args(
        out.to_str().unwrap(),
        data.to_str().unwrap(),
        model.path().to_str().unwrap(),
    );
    args.extend(["--devices", "0"]);
    assert_clean_failure(&trainer(&args, None), &["--devices"]);
    assert!(!out.exists(), "a refused run left {}", out.display());
}
