//! Finishing a run: the `final/` model folder, the best model's test pass,
//! `results.json`, the report, and the results on stdout.

use anyhow::Result;
use model_core::model::BertForSequenceClassification;

use super::outputs::{log_metrics, save_model_folder};
use super::setup::{Run, load_saved};
use crate::checkpoint::{TrainState, write_atomic};
use crate::evaluate::evaluate_model;
use crate::metrics::Summary;

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
    let test_summary = match &run.test {
        Some(_) => {
            let summary = test_best(run, state)?;
            results["test"] = serde_json::to_value(&summary)?;
            Some(summary)
        }
        None => None,
    };
    crate::report::write(&run.run_dir, &results, test_summary.as_ref())?;
    write_atomic(
        &run.run_dir.join("results.json"),
        &serde_json::to_vec_pretty(&results)?,
    )?;
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}

/// Evaluate `best/` on the test data and log the metrics.
fn test_best(run: &Run, state: &TrainState) -> Result<Summary> {
    let s = run.settings();
    let test = run.test.as_ref().expect("called with test data");
    eprintln!(
        "evaluating the best model on {} test reviews",
        test.examples.len()
    );
    let best_model = load_saved(
        &run.config,
        run.num_labels(),
        &run.run_dir.join("best"),
        &run.base_device,
    )?;
    let summary = evaluate_model(
        best_model,
        &run.config,
        &run.tokenizer,
        &run.base_device,
        test,
        s.max_len,
        s.truncation,
    )?;
    log_metrics(
        &run.run_dir,
        serde_json::json!({"step": state.step, "split": "test", "accuracy": summary.accuracy, "f1": summary.f1,
            "precision": summary.precision, "recall": summary.recall, "ece": summary.ece, "n": summary.n}),
    )?;
    eprintln!("test accuracy {:.4} (n = {})", summary.accuracy, summary.n);
    Ok(summary)
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

        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.matches("\"test\"").count(), 1, "{metrics}");
        for f in ["report.md", "loss.svg", "accuracy.svg"] {
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
