//! Finishing a run: the `final/` model folder, the best model's calibration fitted
//! on the validation data (written into `best/inference.json`), the best model's
//! test pass before and after calibration, `results.json`, the report, and the
//! results on stdout.

use anyhow::Result;
use model_core::calibration::Calibration;
use model_core::model::BertForSequenceClassification;
use model_core::settings::InferenceSettings;

use super::outputs::{log_metrics, save_model_folder};
use super::setup::{Run, load_saved};
use crate::checkpoint::{TrainState, write_atomic};
use crate::evaluate::{labelled_logits, snapshot_classifier};
use crate::metrics::{Summary, summaries};

/// Write what a finished run leaves besides its checkpoints and `best/`, and print
/// `results.json` as one line.
pub fn finish(run: &Run, model: &BertForSequenceClassification, state: &TrainState) -> Result<()> {
    let s = run.settings();
    save_model_folder(&run.run_dir, "final", model, &run.config, &run.tokenizer, s)?;
    let mut results = serde_json::json!({
        "train_seconds": state.elapsed_s,
        "steps": state.step,
        "best_validation_accuracy": state.best_accuracy,
        "best_step": state.best_step,
        "backend": run.backend_description,
    });
    let best = load_saved(
        &run.config,
        run.num_labels(),
        &run.run_dir.join("best"),
        &run.base_device,
    )?;
    let classifier = snapshot_classifier(
        best,
        &run.config,
        &run.tokenizer,
        &run.base_device,
        s.max_len,
        s.truncation,
    )?;
    let (calibration, fit) = calibrate_best(run, &classifier)?;
    results["calibration"] = fit;
    let test_summary = match &run.test {
        Some(test) => {
            eprintln!(
                "evaluating the best model on {} test reviews",
                test.examples.len()
            );
            let logits = labelled_logits(&classifier, test, None)?;
            let [raw, calibrated] = <[Summary; 2]>::try_from(summaries(
                &classifier.labels,
                &logits,
                &[Calibration::NONE, calibration],
            ))
            .expect("two calibrations, two summaries");
            log_test(run, state, &calibrated)?;
            results["test"] = serde_json::to_value(&calibrated)?;
            results["test_uncalibrated"] = serde_json::to_value(&raw)?;
            Some((calibrated, raw))
        }
        None => None,
    };
    crate::report::write(
        &run.run_dir,
        &results,
        test_summary.as_ref().map(|(c, _)| c),
        test_summary.as_ref().map(|(_, r)| r),
    )?;
    write_atomic(
        &run.run_dir.join("results.json"),
        &serde_json::to_vec_pretty(&results)?,
    )?;
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}

/// Fit the best model's calibration on the validation data and record it in
/// `best/inference.json`, so that everything that loads `best/` (or an export of it)
/// shows calibrated probabilities. Returns it with the fit's figures for
/// `results.json`.
fn calibrate_best(
    run: &Run,
    classifier: &model_core::Classifier,
) -> Result<(Calibration, serde_json::Value)> {
    let s = run.settings();
    eprintln!(
        "fitting the calibration on {} validation reviews",
        run.valid.examples.len()
    );
    let logits = labelled_logits(classifier, &run.valid, None)?;
    let calibration = Calibration::fit(&logits);
    let [before, after] = <[Summary; 2]>::try_from(summaries(
        &classifier.labels,
        &logits,
        &[Calibration::NONE, calibration],
    ))
    .expect("two calibrations, two summaries");
    let settings = InferenceSettings {
        max_len: s.max_len,
        truncation: s.truncation,
        calibration,
    };
    write_atomic(
        &run.run_dir.join("best").join(InferenceSettings::FILE),
        &settings.to_json(),
    )?;
    eprintln!(
        "{calibration}: validation ECE {:.4} -> {:.4}, loss {:.4} -> {:.4}",
        before.ece, after.ece, before.loss, after.loss
    );
    Ok((
        calibration,
        serde_json::json!({
            "temperature": calibration.temperature,
            "exponent": calibration.exponent,
            "fitted_on": "validation",
            "n": after.n,
            "before": {"ece": before.ece, "loss": before.loss},
            "after": {"ece": after.ece, "loss": after.loss},
        }),
    ))
}

/// Log the best model's test metrics.
fn log_test(run: &Run, state: &TrainState, summary: &Summary) -> Result<()> {
    log_metrics(
        &run.run_dir,
        serde_json::json!({"step": state.step, "split": "test", "accuracy": summary.accuracy, "f1": summary.f1,
            "precision": summary.precision, "recall": summary.recall, "ece": summary.ece,
            "temperature": summary.calibration.temperature,
            "exponent": summary.calibration.exponent, "n": summary.n}),
    )?;
    eprintln!(
        "test accuracy {:.4}, ECE {:.4} (n = {})",
        summary.accuracy, summary.ece, summary.n
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::epochs::{Ended, train};
    use crate::train::setup::open;
    use crate::train::testing::{self, tiny, tiny_run};
    use std::sync::atomic::AtomicBool;

    fn read_json(path: &std::path::Path) -> serde_json::Value {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_finished_run_has_its_final_model_test_metrics_and_report() {
        let _serial = testing::serial();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let test_data = tiny("reviews.jsonl");
        let changes = [
            ("--test-data", test_data.to_str().unwrap()),
            ("--eval-limit", "6"),
        ];
        let (run, progress) = open(&tiny_run(&out, &changes)).unwrap();
        let Ended::Finished(p) = train(&run, progress, &AtomicBool::new(false), None).unwrap()
        else {
            panic!("stopped before the end")
        };
        finish(&run, &p.model, &p.state).unwrap();

        for f in [
            "model.bpk",
            "config.json",
            "tokenizer.json",
            "inference.json",
        ] {
            assert!(out.join("final").join(f).is_file(), "final/{f} missing");
        }
        assert_eq!(read_json(&out.join("final/inference.json"))["max_len"], 64);
        // `best/` carries the calibration fitted on the validation data; the test
        // summary was computed with it, and the uncalibrated one beside it.
        let best = read_json(&out.join("best/inference.json"));
        let t = best["temperature"]
            .as_f64()
            .expect("best/ has a temperature");
        assert!(t > 0.0, "{best}");
        assert_eq!(
            read_json(&out.join("final/config.json"))["id2label"]["1"],
            "positive"
        );
        // `final/` holds the weights training ended with.
        let saved = load_saved(&run.config, 2, &out.join("final"), &run.base_device).unwrap();
        assert_eq!(testing::weights(&saved), testing::weights(&p.model));

        let results = read_json(&out.join("results.json"));
        assert_eq!(results["steps"], 8);
        assert_eq!(results["best_step"], p.state.best_step.unwrap());
        assert_eq!(
            results["best_validation_accuracy"],
            p.state.best_accuracy.unwrap()
        );
        assert_eq!(results["backend"], run.backend_description.as_str());
        assert_eq!(
            results["test"]["n"], 6,
            "--eval-limit applies to the test data"
        );
        let confusion: u64 = results["test"]["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(confusion, 6);

        let as_f32 = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
        assert_eq!(
            as_f32(&results["calibration"]["temperature"]),
            Some(t as f32)
        );
        assert_eq!(as_f32(&results["test"]["temperature"]), Some(t as f32));
        assert_eq!(results["test_uncalibrated"]["temperature"], 1.0);
        assert_eq!(
            results["test"]["accuracy"], results["test_uncalibrated"]["accuracy"],
            "a temperature never changes a prediction"
        );
        let loaded = model_core::loader::load_classifier(
            out.join("best").to_str().unwrap(),
            &run.base_device,
            model_core::InferenceOptions {
                max_len: 64,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(loaded.classifier.calibration.temperature, t as f32);
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.matches("\"test\"").count(), 1, "{metrics}");
        for f in ["report.md", "loss.svg", "accuracy.svg", "reliability.svg"] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("## Test set (6 reviews)"), "{report}");
        assert!(
            report.contains(&format!("| backend | {} |", run.backend_description)),
            "{report}"
        );
    }
}
