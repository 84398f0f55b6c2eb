//! The run report: `report.md` with the test metrics, confusion matrix and
//! calibration, and the training curves as SVG (`loss.svg`, `accuracy.svg`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::checkpoint::write_atomic;
use crate::metrics::Summary;

/// A series of (x, y) points.
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

/// Write `report.md`, `loss.svg` and `accuracy.svg` into the run folder.
pub fn write(run_dir: &Path, results: &serde_json::Value, test: Option<&Summary>) -> Result<()> {
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
    for (k, label) in [
        ("steps", "optimizer steps"),
        ("train_seconds", "training time (s)"),
        ("best_validation_accuracy", "best validation accuracy"),
        ("best_step", "best step"),
        ("backend", "backend"),
    ] {
        writeln!(
            md,
            "| {label} | {} |",
            results.get(k).cloned().unwrap_or_default()
        )?;
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
            "| {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            s.accuracy, s.precision, s.recall, s.f1, s.ece, s.loss
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
            crate::metrics::ECE_BINS
        )?;
    }
    write_atomic(&run_dir.join("report.md"), md.as_bytes())
}
