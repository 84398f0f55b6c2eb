//! The run report: `report.md` with the test metrics, confusion matrix and
//! calibration, the training curves as SVG (`loss.svg`, `accuracy.svg`) and the
//! reliability diagram before and after calibration (`reliability.svg`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use model_core::calibration::Calibration;
use plotters::prelude::*;

use crate::checkpoint::write_atomic;
use crate::metrics::Summary;

/// A series of (x, y) points.
/// How one summary value is shown, if it is there.
type Format = fn(&serde_json::Value) -> Option<String>;

type Series = Vec<(f64, f64)>;

fn read_metrics(run_dir: &Path) -> Result<Vec<serde_json::Value>> {
    let path = run_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn plot(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(&str, &Series, RGBColor)],
) -> Result<()> {
    let points: Vec<&(f64, f64)> = series.iter().flat_map(|(_, s, _)| s.iter()).collect();
    if points.is_empty() {
        return Ok(());
    }
    let (x_max, mut y_min, mut y_max) = points
        .iter()
        .fold((1.0f64, f64::MAX, f64::MIN), |(xm, lo, hi), (x, y)| {
            (xm.max(*x), lo.min(*y), hi.max(*y))
        });
    if (y_max - y_min).abs() < 1e-9 {
        y_min -= 0.5;
        y_max += 0.5;
    }
    let pad = (y_max - y_min) * 0.05;
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc(y_label)
            .draw()?;
        for (name, s, color) in series {
            chart
                .draw_series(LineSeries::new(s.iter().copied(), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(s.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("{}: cannot draw: {e}", path.display()))
}

/// A fraction as people read it: `0.92841` → `92.84%`.
fn percent(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

/// A duration: `522.649` → `522.6 s`.
fn seconds(s: f64) -> String {
    format!("{s:.1} s")
}

/// Arguments of `trainer report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run folder (or a copy of one, such as `static/model/training/`) holding
    /// `results.json` and `metrics.jsonl`.
    #[arg(long)]
    pub run: std::path::PathBuf,
}

/// `trainer report`: the report of a finished run, written again (after an update
/// of this program changes how it reads) from what the run recorded.
pub fn run(args: ReportArgs) -> Result<()> {
    let path = args.run.join("results.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let results: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    let summary = |key: &str| -> Result<Option<Summary>> {
        match results.get(key) {
            Some(t) if !t.is_null() => {
                Ok(Some(serde_json::from_value::<Summary>(t.clone()).map_err(
                    |e| anyhow::anyhow!("{}: `{key}` is not a summary: {e}", path.display()),
                )?))
            }
            _ => Ok(None),
        }
    };
    let test = summary("test")?;
    let uncalibrated = summary("test_uncalibrated")?;
    write(&args.run, &results, test.as_ref(), uncalibrated.as_ref())?;
    eprintln!("wrote {}", args.run.join("report.md").display());
    Ok(())
}

/// Write `report.md`, `loss.svg`, `accuracy.svg` and, with test metrics,
/// `reliability.svg` into the run folder; `uncalibrated` is the same test pass at
/// uncalibrated, when the model has a calibration.
pub fn write(
    run_dir: &Path,
    results: &serde_json::Value,
    test: Option<&Summary>,
    uncalibrated: Option<&Summary>,
) -> Result<()> {
    let metrics = read_metrics(run_dir)?;
    let pick = |split: Option<&str>, key: &str| -> Series {
        metrics
            .iter()
            .filter(|m| m.get("split").and_then(|s| s.as_str()) == split)
            .filter_map(|m| Some((m["step"].as_f64()?, m.get(key)?.as_f64()?)))
            .collect()
    };
    let train_loss = pick(None, "loss");
    let valid_loss = pick(Some("validation"), "loss");
    let valid_acc = pick(Some("validation"), "accuracy");
    plot(
        &run_dir.join("loss.svg"),
        "Cross-entropy loss",
        "loss",
        &[
            ("training (10-step mean)", &train_loss, BLUE),
            ("validation", &valid_loss, RED),
        ],
    )?;
    plot(
        &run_dir.join("accuracy.svg"),
        "Validation accuracy",
        "accuracy",
        &[("validation", &valid_acc, RED)],
    )?;

    let mut md = String::new();
    writeln!(md, "# Fine-tuning report\n")?;
    let command = std::fs::read_to_string(run_dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["command"].as_array().cloned())
        .unwrap_or_default();
    if !command.is_empty() {
        let words: Vec<&str> = command.iter().filter_map(|w| w.as_str()).collect();
        writeln!(md, "```\n{}\n```\n", words.join(" "))?;
    }
    writeln!(md, "| | |\n|---|---|")?;
    let rows: [(&str, &str, Format); 5] = [
        ("steps", "optimizer steps", |v| {
            v.as_u64().map(|n| n.to_string())
        }),
        ("train_seconds", "training time", |v| {
            v.as_f64().map(seconds)
        }),
        (
            "best_validation_accuracy",
            "best validation accuracy",
            |v| v.as_f64().map(percent),
        ),
        ("best_step", "best step", |v| {
            v.as_u64().map(|n| n.to_string())
        }),
        ("backend", "backend", |v| v.as_str().map(str::to_string)),
    ];
    for (key, label, show) in rows {
        let value = results.get(key).and_then(show);
        writeln!(md, "| {label} | {} |", value.as_deref().unwrap_or("—"))?;
    }
    writeln!(md, "\n![loss](loss.svg)\n\n![accuracy](accuracy.svg)\n")?;
    if let Some(s) = test {
        writeln!(md, "## Test set ({} reviews)\n", s.n)?;
        writeln!(
            md,
            "| accuracy | precision | recall | F1 | ECE | loss |\n|---|---|---|---|---|---|"
        )?;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.4} |\n",
            percent(s.accuracy),
            percent(s.precision),
            percent(s.recall),
            percent(s.f1),
            percent(s.ece),
            s.loss
        )?;
        writeln!(
            md,
            "Confusion matrix (rows: true label, columns: predicted):\n"
        )?;
        writeln!(md, "| | {} |", s.labels.join(" | "))?;
        writeln!(md, "|---|{}", "---|".repeat(s.labels.len()))?;
        for (label, row) in s.labels.iter().zip(&s.confusion) {
            let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            writeln!(md, "| **{label}** | {} |", cells.join(" | "))?;
        }
        writeln!(
            md,
            "\nECE is the expected calibration error over {} equal-width confidence bins: the average gap \
             between confidence and accuracy, weighted by how many predictions fall in each bin.",
            model_core::calibration::BINS
        )?;
        calibration(&mut md, run_dir, results, s, uncalibrated)?;
    }
    write_atomic(&run_dir.join("report.md"), md.as_bytes())
}

/// The report's calibration section and `reliability.svg`.
fn calibration(
    md: &mut String,
    run_dir: &Path,
    results: &serde_json::Value,
    test: &Summary,
    uncalibrated: Option<&Summary>,
) -> Result<()> {
    let mut series = vec![];
    if let Some(raw) = uncalibrated {
        series.push(("uncalibrated", raw.reliability.as_slice(), RED));
    }
    let scaled = test.calibration.to_string();
    series.push((scaled.as_str(), test.reliability.as_slice(), BLUE));
    if test.reliability.is_empty() {
        return Ok(());
    }
    crate::reliability::plot(
        &run_dir.join("reliability.svg"),
        "Reliability (test set)",
        &series,
    )?;
    writeln!(md, "\n## Calibration\n")?;
    if let Some(fit) = results.get("calibration").filter(|c| !c.is_null()) {
        let fitted = Calibration {
            temperature: fit["temperature"].as_f64().unwrap_or(f64::NAN) as f32,
            exponent: fit["exponent"].as_f64().unwrap_or(1.0) as f32,
        };
        writeln!(
            md,
            "Calibration: {fitted}, fitted on {} validation reviews (ECE {} → {}, loss {:.4} → {:.4}); \
             it maps each logit through the same increasing function before the softmax, so every \
             prediction, and the accuracy, stays the same.\n",
            fit["n"].as_u64().unwrap_or(0),
            percent(fit["before"]["ece"].as_f64().unwrap_or(f64::NAN)),
            percent(fit["after"]["ece"].as_f64().unwrap_or(f64::NAN)),
            fit["before"]["loss"].as_f64().unwrap_or(f64::NAN),
            fit["after"]["loss"].as_f64().unwrap_or(f64::NAN),
        )?;
    }
    if let Some(raw) = uncalibrated {
        writeln!(
            md,
            "| test set | ECE | loss |\n|---|---|---|\n| uncalibrated | {} | {:.4} |\n| {} | {} | {:.4} |\n",
            percent(raw.ece),
            raw.loss,
            test.calibration,
            percent(test.ece),
            test.loss
        )?;
    }
    writeln!(md, "![reliability](reliability.svg)")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            accuracy: 0.9276,
            f1: 0.92841,
            precision: 0.9176,
            recall: 0.9394,
            confusion: vec![vec![11446, 1054], vec![757, 11743]],
            ece: 0.0557,
            loss: 0.27594,
            n: 25000,
            labels: vec!["negative".into(), "positive".into()],
            calibration: Calibration::NONE,
            reliability: vec![],
        }
    }

    #[test]
    fn the_report_shows_percentages_seconds_and_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("metrics.jsonl"),
            "{\"step\": 10, \"epoch\": 1, \"loss\": 0.6}\n\
             {\"step\": 20, \"epoch\": 1, \"split\": \"validation\", \"accuracy\": 0.9, \"loss\": 0.3}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"command": ["trainer", "fine-tune", "--out", "runs/full"]}"#,
        )
        .unwrap();
        let results = serde_json::json!({
            "train_seconds": 522.649241778,
            "steps": 4221,
            "best_validation_accuracy": 0.9284,
            "best_step": 4221,
            "backend": "wgpu: NVIDIA H200 (DiscreteGpu, Vulkan)",
        });
        write(dir.path(), &results, Some(&summary()), None).unwrap();
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        for line in [
            "trainer fine-tune --out runs/full",
            "| optimizer steps | 4221 |",
            "| training time | 522.6 s |",
            "| best validation accuracy | 92.84% |",
            "| best step | 4221 |",
            "| backend | wgpu: NVIDIA H200 (DiscreteGpu, Vulkan) |",
            "## Test set (25000 reviews)",
            "| 92.76% | 91.76% | 93.94% | 92.84% | 5.57% | 0.2759 |",
            "| **negative** | 11446 | 1054 |",
        ] {
            assert!(md.contains(line), "no `{line}` in:\n{md}");
        }
        assert!(!md.contains('"'), "JSON quotes in:\n{md}");
        assert!(dir.path().join("loss.svg").is_file());
        assert!(dir.path().join("accuracy.svg").is_file());
    }

    #[test]
    fn a_calibrated_run_reports_its_temperature_and_reliability() {
        use model_core::calibration::Bin;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), "").unwrap();
        let bin = |confidence, accuracy| Bin {
            count: 10,
            confidence,
            accuracy,
        };
        let raw = Summary {
            reliability: vec![bin(0.7, 0.6), bin(0.98, 0.9)],
            ..summary()
        };
        let calibrated = Summary {
            calibration: Calibration::temperature(1.8),
            ece: 0.012,
            loss: 0.21,
            reliability: vec![bin(0.65, 0.6), bin(0.91, 0.9)],
            ..summary()
        };
        let results = serde_json::json!({"calibration": {"temperature": 1.8, "n": 2500,
            "before": {"ece": 0.05, "loss": 0.3}, "after": {"ece": 0.01, "loss": 0.25}}});
        write(dir.path(), &results, Some(&calibrated), Some(&raw)).unwrap();
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        for line in [
            "## Calibration",
            "Calibration: temperature 1.800, fitted on 2500 validation reviews (ECE 5.00% → 1.00%, loss 0.3000 → 0.2500)",
            "| uncalibrated | 5.57% | 0.2759 |",
            "| temperature 1.800 | 1.20% | 0.2100 |",
            "![reliability](reliability.svg)",
        ] {
            assert!(md.contains(line), "no `{line}` in:\n{md}");
        }
        let svg = std::fs::read_to_string(dir.path().join("reliability.svg")).unwrap();
        assert!(svg.contains("temperature 1.800"), "{svg}");
    }

    #[test]
    fn missing_results_show_a_dash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), "").unwrap();
        write(dir.path(), &serde_json::json!({"steps": 3}), None, None).unwrap();
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("| best validation accuracy | — |"), "{md}");
        assert!(!md.contains("Test set"), "{md}");
    }
}
