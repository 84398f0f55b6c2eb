//! `trainer calibrate`: fit the calibration (temperature and exponent,
//! [`model_core::calibration`]) of a model that already exists (one
//! trained before calibration, or anybody's Hugging Face classifier) on labelled
//! data, and record it in the model folder, so that every later `predict`,
//! `evaluate`, export and page load shows calibrated probabilities.
//!
//! `fine-tune` does the same at the end of every run on its validation split; this
//! command reproduces that split (`--valid-fraction` with the run's `--seed`) when it
//! is given the run's training data, so a model is never calibrated on what it was
//! trained on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use model_core::backend::select_device;
use model_core::bundle::{MANIFEST_FILE, Manifest};
use model_core::calibration::Calibration;
use model_core::loader::load_classifier;
use model_core::settings::InferenceSettings;

use crate::checkpoint::write_atomic;
use crate::data::{self, Columns, LabeledData, Split};
use crate::evaluate::labelled_logits;
use crate::inference_args::InferenceArgs;
use crate::metrics::{Summary, summaries};

/// Arguments of `trainer calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Model folder to calibrate (a run's `best/`, an export or a web bundle); its
    /// `inference.json` (and `manifest.json`, for a bundle) get the calibration.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data to fit on: the IMDb archive or folder, a .jsonl or a .csv.
    #[arg(long)]
    pub data: PathBuf,
    /// Which IMDb split `--data` means.
    #[arg(long, value_enum, default_value = "train")]
    pub split: Split,
    /// Fit on the seeded validation share of `--data` that `fine-tune` held out
    /// with the same fraction and `--seed` (its defaults: 0.1 and 42); without it,
    /// on all of `--data`.
    #[arg(long)]
    pub valid_fraction: Option<f64>,
    /// The seed of that split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Labelled data to measure the calibrated model on (the IMDb archive: its test
    /// split); for a bundle, its metrics replace the manifest's.
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// Write the reliability diagram (test data, else the fit's data) to this SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub run: InferenceArgs,
    /// Text column of CSV data.
    #[arg(long)]
    pub text_column: Option<String>,
    /// Label column of CSV data.
    #[arg(long)]
    pub label_column: Option<String>,
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    if let Some(f) = args.valid_fraction
        && !(f > 0.0 && f < 1.0)
    {
        bail!("--valid-fraction {f}: must be between 0 and 1");
    }
    let model = args.model.to_string_lossy().to_string();
    let options = args.run.options(&model)?;
    let columns = Columns {
        text: args.text_column.clone(),
        label: args.label_column.clone(),
        id: None,
    };
    let fit_data = fit_data(&args, &columns)?;
    let test_data = match &args.test_data {
        Some(p) => Some(data::load(p, Split::Test, &columns)?),
        None => None,
    };
    let selected = select_device(args.run.backend)?;
    let mut classifier = load_classifier(&model, &selected.device, options)
        .with_context(|| format!("loading model `{model}`"))?
        .classifier;
    args.run.apply(&mut classifier);
    let labels = classifier.labels.clone();
    let fit_data = data::align_labels(fit_data, &labels, &args.data)?;
    eprintln!(
        "fitting the calibration on {} examples of {} ({}, {} products)",
        fit_data.examples.len(),
        args.data.display(),
        selected.description,
        classifier.matmul_precision()
    );
    let bar = progress_bar(fit_data.examples.len());
    let logits = labelled_logits(&classifier, &fit_data, Some(&bar))?;
    bar.finish_and_clear();
    let calibration = Calibration::fit(&logits);
    // Plain temperature scaling beside it, so that the report says what the exponent
    // adds.
    let candidates = [
        Calibration::NONE,
        Calibration::fit_temperature(&logits, 1.0),
        calibration,
    ];
    let [before, temperature_only, after] = three(summaries(&labels, &logits, &candidates));
    eprintln!(
        "{calibration}: ECE {:.4} -> {:.4} (temperature only: {:.4}), loss {:.4} -> {:.4}",
        before.ece, after.ece, temperature_only.ece, before.loss, after.loss
    );
    let figures = |s: &Summary| {
        serde_json::json!({"temperature": s.calibration.temperature,
            "exponent": s.calibration.exponent, "ece": s.ece, "loss": s.loss})
    };
    let mut report = serde_json::json!({
        "temperature": calibration.temperature,
        "exponent": calibration.exponent,
        "fitted_on": {"data": args.data, "valid_fraction": args.valid_fraction, "seed": args.seed, "n": after.n},
        "before": figures(&before),
        "temperature_only": figures(&temperature_only),
        "after": figures(&after),
    });
    let mut test_metrics = None;
    if let (Some(test), Some(path)) = (test_data, &args.test_data) {
        let test = data::align_labels(test, &labels, path)?;
        eprintln!(
            "measuring on {} examples of {}",
            test.examples.len(),
            path.display()
        );
        let bar = progress_bar(test.examples.len());
        let logits = labelled_logits(&classifier, &test, Some(&bar))?;
        bar.finish_and_clear();
        let [raw, t_only, scaled] = three(summaries(&labels, &logits, &candidates));
        eprintln!(
            "test: accuracy {:.4}, ECE {:.4} -> {:.4} (temperature only: {:.4})",
            scaled.accuracy, raw.ece, scaled.ece, t_only.ece
        );
        report["test"] = serde_json::to_value(&scaled)?;
        report["test_uncalibrated"] = serde_json::to_value(&raw)?;
        report["test_temperature_only"] = figures(&t_only);
        if let Some(plot) = &args.plot {
            plot_three(plot, "Reliability (test data)", [&raw, &t_only, &scaled])?;
        }
        test_metrics = Some(scaled);
    } else if let Some(plot) = &args.plot {
        plot_three(
            plot,
            "Reliability (the data it was fitted on)",
            [&before, &temperature_only, &after],
        )?;
    }
    record(&args.model, options, calibration, test_metrics.as_ref())?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The examples to fit on: all of `--data`, or the validation share `fine-tune`
/// split off it (split before the labels are mapped, as `fine-tune` does).
fn fit_data(args: &CalibrateArgs, columns: &Columns) -> Result<LabeledData> {
    let all = data::load(&args.data, args.split, columns)?;
    let data = match args.valid_fraction {
        Some(f) => data::split_validation(all, f, args.seed).1,
        None => all,
    };
    if data.examples.is_empty() {
        bail!("{}: no labelled examples to fit on", args.data.display());
    }
    Ok(data)
}

/// Write `calibration` into the model folder: `inference.json` always, and a
/// bundle's `manifest.json` (its files, so their hashes, are unchanged), whose
/// metrics become `test` when there is one.
fn record(
    dir: &Path,
    options: model_core::InferenceOptions,
    calibration: Calibration,
    test: Option<&Summary>,
) -> Result<()> {
    let settings_path = dir.join(InferenceSettings::FILE);
    let mut settings = InferenceSettings::read_dir(dir)?
        .unwrap_or_else(|| InferenceSettings::of(&options, calibration));
    settings.calibration = calibration;
    write_atomic(&settings_path, &settings.to_json())?;
    let manifest_path = dir.join(MANIFEST_FILE);
    if manifest_path.is_file() {
        let bytes = std::fs::read(&manifest_path)
            .with_context(|| format!("{}: cannot read", manifest_path.display()))?;
        let mut manifest = Manifest::parse(&bytes, &manifest_path.display().to_string())?;
        manifest.calibration = calibration;
        if let Some(t) = test {
            manifest.metrics = serde_json::to_value(t)?;
        }
        write_atomic(&manifest_path, &manifest.to_json())?;
    }
    eprintln!("recorded {calibration} in {}", dir.display());
    Ok(())
}

/// Uncalibrated, temperature only, and the fitted calibration on one diagram.
fn plot_three(path: &Path, title: &str, [raw, t_only, fitted]: [&Summary; 3]) -> Result<()> {
    use plotters::prelude::{BLUE, GREEN, RED};
    let ece = |s: &Summary| format!("ECE {:.1}%", 100.0 * s.ece);
    let raw_label = format!("uncalibrated, {}", ece(raw));
    let t_label = format!("{}, {}", t_only.calibration, ece(t_only));
    let label = format!("{}, {}", fitted.calibration, ece(fitted));
    let mut series = vec![
        (raw_label.as_str(), raw.reliability.as_slice(), RED),
        (t_label.as_str(), t_only.reliability.as_slice(), GREEN),
    ];
    if fitted.calibration != t_only.calibration {
        series.push((label.as_str(), fitted.reliability.as_slice(), BLUE));
    }
    crate::reliability::plot(path, title, &series)
}

fn three(summaries: Vec<Summary>) -> [Summary; 3] {
    <[Summary; 3]>::try_from(summaries).expect("three calibrations, three summaries")
}

fn progress_bar(n: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} examples, {per_sec}, ETA {eta}",
        )
        .expect("a valid template"),
    );
    bar
}
