//! `trainer predict` on checkpoints written by `transformers`: the probabilities
//! must be PyTorch's within 1e-4, whatever the checkpoint layout.

use integration_tests::*;

fn probs(v: &serde_json::Value) -> [f64; 2] {
    [
        v["probabilities"]["negative"].as_f64().unwrap(),
        v["probabilities"]["positive"].as_f64().unwrap(),
    ]
}

/// Predict the golden texts with the model in `folder` and compare with PyTorch.
fn check_folder(folder: &str, backend: &str) {
    let golden = tiny_golden();
    let texts: Vec<&str> = golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let model = tiny(folder);
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--max-len",
        "64",
        "--truncation",
        "head",
        "--backend",
        backend,
    ];
    args.extend(texts.iter().copied());
    let out = trainer(&args, None);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), texts.len());
    for (i, (line, want)) in lines
        .iter()
        .zip(golden["probabilities"].as_array().unwrap())
        .enumerate()
    {
        let got = probs(line);
        for c in 0..2 {
            let w = want[c].as_f64().unwrap();
            assert!(
                (got[c] - w).abs() < 1e-4,
                "{folder} on {backend}: text {i} class {c}: {} vs PyTorch {w}",
                got[c]
            );
        }
        let label = if got[1] > got[0] {
            "positive"
        } else {
            "negative"
        };
        assert_eq!(line["label"], label);
        assert!((line["confidence"].as_f64().unwrap() - got[0].max(got[1])).abs() < 1e-7);
    }
}

#[test]
fn safetensors_with_bert_prefix_matches_pytorch() {
    check_folder("finetuned", "flex");
}

#[test]
fn pytorch_bin_matches_pytorch() {
    check_folder("finetuned-bin", "flex");
}

#[test]
fn legacy_names_and_vocab_txt_match_pytorch() {
    check_folder("legacy", "flex");
}

/// ndarray is opt-in (`--features ndarray`): a trainer built with it matches PyTorch on
/// it, one built without says how to get it instead of failing obscurely.
#[test]
fn ndarray_backend_matches_pytorch_or_says_how_to_build_it() {
    let model = tiny("finetuned");
    let probe = trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--backend",
            "ndarray",
            "Fine.",
        ],
        None,
    );
    if probe.status.success() {
        check_folder("finetuned", "ndarray");
    } else {
        assert_clean_failure(&probe, &["ndarray", "--features ndarray"]);
    }
}

#[test]
fn reads_texts_from_stdin_one_per_line() {
    let model = tiny("finetuned");
    let out = trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            "64",
        ],
        Some(
            "Boring plot, bad acting and awful dialogue.\nA wonderful movie! The acting was great and I loved it.\n",
        ),
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "negative");
    assert_eq!(lines[1]["label"], "positive");
}

#[test]
fn unused_tensors_are_reported_not_fatal() {
    let model = tiny("legacy");
    let out = trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            "64",
            "good",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cls.predictions.bias") && stderr.contains("embeddings.position_ids"),
        "{stderr}"
    );
}

#[test]
fn backbone_without_head_gets_a_fresh_head_and_a_warning() {
    let model = tiny("backbone");
    let out = trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            "64",
            "good",
        ],
        None,
    );
    let lines = json_lines(&out);
    let p = probs(&lines[0]);
    assert!((p[0] + p[1] - 1.0).abs() < 1e-5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("classifier.weight") && stderr.contains("freshly initialised"),
        "{stderr}"
    );
}

#[test]
fn bench_prints_one_json_figure_per_run_in_the_reference_shape() {
    let model = tiny("finetuned");
    let texts = tiny("reviews.jsonl");
    for (what, key) in [
        ("tokenize", "tokenize_reviews_per_s"),
        ("infer", "infer_reviews_per_s"),
        ("train-step", "train_samples_per_s"),
    ] {
        let out = trainer(
            &[
                "bench",
                "--what",
                what,
                "--model",
                model.to_str().unwrap(),
                "--texts",
                texts.to_str().unwrap(),
                "--max-len",
                "64",
                "--batch",
                "4",
                "--steps",
                "2",
                "--passes",
                "2",
            ],
            None,
        );
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{what}");
        let v = &lines[0];
        assert_eq!(v["what"], key);
        assert_eq!(v["max_len"], 64);
        assert_eq!(v["n"], 2);
        let (min, median, max) = (
            v["min"].as_f64().unwrap(),
            v["median"].as_f64().unwrap(),
            v["max"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= median && median <= max, "{v}");
    }
}

/// A review pasted with IMDb's HTML line breaks reads as the same review with spaces:
/// `predict` sees the tokens the trainer's readers gave the model in training.
#[test]
fn line_break_tags_do_not_change_predictions() {
    let model = tiny("finetuned");
    let out = trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--backend",
            "flex",
            "--max-len",
            "64",
        ],
        Some("A fine film.<br /><br />I loved it.\nA fine film.  I loved it.\n"),
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["probabilities"], lines[1]["probabilities"],
        "tagged and spaced texts differ: {lines:?}"
    );
}

/// `--backend auto` on a machine without a desktop session (CI, a server, a container)
/// looks for a GPU without printing errors: Mesa's Vulkan device-selection layer used
/// to make libwayland print `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` four times before the run went on, on the CPU, as it should.
#[test]
fn backend_auto_looks_for_a_gpu_quietly_without_a_display() {
    let model = tiny("finetuned");
    let out = std::process::Command::new(trainer_bin())
        .args([
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            "64",
        ])
        .args(["--backend", "auto"])
        .arg("A wonderful movie! The acting was great and I loved it.")
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .env_remove("MESA_VK_DEVICE_SELECT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(json_lines(&out).len(), 1);
    assert!(
        !stderr.contains("XDG_RUNTIME_DIR") && !stderr.to_lowercase().contains("error"),
        "stderr: {stderr}"
    );
}
