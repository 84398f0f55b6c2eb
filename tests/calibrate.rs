//! `trainer calibrate`: a calibration fitted on labelled data, recorded in the model
//! folder (and a bundle's manifest), and then used by every command that reads it.

use std::path::Path;

use integration_tests::*;

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// A temperature as the f32 it is (JSON writers widen it to f64 differently).
fn f32_of(v: &serde_json::Value) -> f32 {
    v.as_f64().expect("a number") as f32
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn calibrate(model: &Path, extra: &[&str]) -> serde_json::Value {
    let data = tiny("reviews.jsonl");
    let mut args = vec![
        "calibrate",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--backend",
        "flex",
        "--max-len",
        "64",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(run_ok(&args).trim()).unwrap()
}

#[test]
fn the_fitted_temperature_is_recorded_and_scales_every_later_prediction() {
    let model = copy_dir(&tiny("finetuned"));
    let before = predict_probs(model.path());
    let plot = model.path().join("reliability.svg");
    let report = calibrate(model.path(), &["--plot", plot.to_str().unwrap()]);
    let t = report["temperature"].as_f64().unwrap();
    assert!(t > 0.0 && (t - 1.0).abs() > 1e-3, "{report}");
    assert!(
        report["after"]["loss"].as_f64() <= report["before"]["loss"].as_f64(),
        "the fit lowers the loss on its data: {report}"
    );
    assert_eq!(report["fitted_on"]["n"], 20);
    // 20 examples pin down one number, not two: plain temperature scaling.
    assert_eq!(report["exponent"], 1.0, "{report}");
    assert_eq!(
        report["temperature_only"]["temperature"],
        report["temperature"]
    );
    assert!(plot.is_file());
    let settings = read_json(&model.path().join("inference.json"));
    assert_eq!(f32_of(&settings["temperature"]), t as f32, "{settings}");

    // predict reads it: each probability is the old logit divided by T, and no
    // label changes.
    let after = predict_probs(model.path());
    let mut moved = 0.0f64;
    for (b, a) in before.iter().zip(&after) {
        let want = 1.0 / (1.0 + (-logit(*b) / t).exp());
        assert!(
            (a - want).abs() < 1e-4,
            "p {a}, expected {want} from {b} at T {t}"
        );
        assert_eq!(a > &0.5, b > &0.5, "a temperature changed a label");
        moved = moved.max((a - b).abs());
    }
    assert!(moved > 1e-3, "the probabilities did not change");
}

#[test]
fn a_calibrated_bundle_keeps_its_hashes_and_records_temperature_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let source = copy_dir(&tiny("finetuned"));
    // The tiny model reads at most 64 tokens.
    std::fs::write(
        source.path().join("inference.json"),
        r#"{"max_len":64,"truncation":"head+tail"}"#,
    )
    .unwrap();
    let web = dir.path().join("web");
    run_ok(&[
        "export",
        "--run",
        source.path().to_str().unwrap(),
        "--out",
        web.to_str().unwrap(),
        "--format",
        "web",
    ]);
    let data = tiny("reviews.jsonl");
    let report = calibrate(&web, &["--test-data", data.to_str().unwrap()]);
    let t = report["temperature"].as_f64().unwrap();
    let manifest = read_json(&web.join("manifest.json"));
    assert_eq!(f32_of(&manifest["temperature"]), t as f32);
    assert_eq!(f32_of(&manifest["metrics"]["temperature"]), t as f32);
    assert_eq!(manifest["metrics"]["n"], 20);
    assert_eq!(report["test"]["ece"], manifest["metrics"]["ece"]);
    assert_eq!(
        report["test"]["accuracy"], report["test_uncalibrated"]["accuracy"],
        "{report}"
    );
    // The bundle still opens (every file checked against the manifest) and its
    // predictions are the calibrated ones, as from the folder it came from.
    let folder = predict_probs(source.path());
    let bundle = predict_probs(&web);
    for (f, b) in folder.iter().zip(&bundle) {
        let want = 1.0 / (1.0 + (-logit(*f) / t).exp());
        assert!((b - want).abs() < 1e-4, "bundle p {b}, expected {want}");
    }
    // An export of the calibrated folder carries the temperature on.
    let again = dir.path().join("again");
    run_ok(&[
        "export",
        "--run",
        web.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        f32_of(&read_json(&again.join("manifest.json"))["temperature"]),
        t as f32
    );
}

#[test]
fn bad_calibration_inputs_fail_naming_what_is_wrong() {
    let model = copy_dir(&tiny("finetuned"));
    let data = tiny("reviews.jsonl");
    let m = model.path().to_str().unwrap();
    let d = data.to_str().unwrap();
    let out = trainer(
        &[
            "calibrate",
            "--model",
            m,
            "--data",
            d,
            "--valid-fraction",
            "1.5",
        ],
        None,
    );
    assert_clean_failure(&out, &["--valid-fraction"]);
    let out = trainer(
        &["calibrate", "--model", m, "--data", "nothing.jsonl"],
        None,
    );
    assert_clean_failure(&out, &["nothing.jsonl"]);
    // A temperature that cannot scale logits is refused where it is read.
    std::fs::write(
        model.path().join("inference.json"),
        r#"{"max_len":64,"truncation":"head","temperature":-2}"#,
    )
    .unwrap();
    let out = trainer(
        &["predict", "--model", m, "--backend", "flex", "fine"],
        None,
    );
    assert_clean_failure(&out, &["inference.json", "temperature"]);
}
