//! The epoch loop: steps in each epoch's seeded plan, the progress bar and the
//! metrics log, checkpoints at the configured cadence and at each epoch end,
//! validation and the best model, and the three ways a run stops early: Ctrl-C
//! (checkpoint, then [`crate::Interrupted`]), `--max-steps`, and a non-finite loss
//! or gradient (never leaving a checkpoint of the weights that gave it to resume from).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};

use super::outputs::{log_metrics, save_model_folder};
use super::setup::{Progress, Run};
use crate::checkpoint::{self, TrainState};
use crate::evaluate::evaluate_model;
use model_core::training::{Diverged, StepStats, plan_epoch, train_step};

/// How the loop ended without an error.
pub enum Ended {
    /// Every epoch ran: the model and state to finish the run with.
    Finished(Box<Progress>),
    /// `--max-steps` was reached; the last step is checkpointed.
    Stopped,
}

/// Training loss and throughput since the last metrics line.
struct Window {
    loss: f64,
    steps: usize,
    samples: usize,
    start: Instant,
}

impl Window {
    fn new() -> Self {
        Self {
            loss: 0.0,
            steps: 0,
            samples: 0,
            start: Instant::now(),
        }
    }

    fn add(&mut self, stats: &StepStats) {
        self.loss += stats.loss;
        self.steps += 1;
        self.samples += stats.samples;
    }

    fn mean_loss(&self) -> f64 {
        self.loss / self.steps as f64
    }

    fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }
}

fn progress_bar(total_steps: usize, position: usize) -> ProgressBar {
    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} steps ({eta} left) {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_position(position as u64);
    bar
}

/// Train from `progress` to the end of the last epoch, or until `interrupted` is set
/// (checkpoint after the current step, then `Err(Interrupted)`) or `max_steps`.
pub fn train(
    run: &Run,
    progress: Progress,
    interrupted: &AtomicBool,
    max_steps: Option<usize>,
) -> Result<Ended> {
    let Progress {
        mut model,
        mut optim,
        mut state,
    } = progress;
    let s = run.settings();
    let total_steps = run.step_context.schedule.total;
    let data = run.examples();
    let bar = progress_bar(total_steps, state.step);
    let started = Instant::now();
    let elapsed_before = state.elapsed_s;
    let elapsed = || elapsed_before + started.elapsed().as_secs_f64();
    let mut window = Window::new();
    let stop_at = max_steps.unwrap_or(usize::MAX);

    while state.epoch < s.epochs {
        let plan = plan_epoch(&run.lengths, s.batch_size, s.seed, state.epoch);
        while state.batch_in_epoch < plan.len() {
            if state.step >= stop_at {
                bar.finish_and_clear();
                state.elapsed_s = elapsed();
                checkpoint::save(&run.run_dir, &model, &optim, &state)?;
                eprintln!("stopped after {} steps (--max-steps)", state.step);
                return Ok(Ended::Stopped);
            }
            // One optimizer step: `grad_accum` batches.
            let group_end = (state.batch_in_epoch + s.grad_accum).min(plan.len());
            let group = &plan[state.batch_in_epoch..group_end];
            let (next, outcome) = train_step(
                model,
                &mut optim,
                &run.step_context,
                &data,
                group,
                state.step,
            );
            model = next;
            let stats = match outcome {
                Ok(stats) => stats,
                Err(diverged) => {
                    bar.finish_and_clear();
                    return stop_diverged(run, &state, diverged);
                }
            };
            state.step += 1;
            state.batch_in_epoch = group_end;

            window.add(&stats);
            let rate = window.samples_per_s();
            bar.set_position(state.step as u64);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} {:.1} samples/s",
                state.epoch + 1,
                s.epochs,
                window.mean_loss(),
                rate
            ));
            if state.step % 10 == 0 || state.step == total_steps {
                log_metrics(
                    &run.run_dir,
                    serde_json::json!({"step": state.step, "epoch": state.epoch + 1, "loss": window.mean_loss(),
                        "lr": stats.lr, "grad_norm": stats.grad_norm, "samples_per_s": rate}),
                )?;
                if bar.is_hidden() {
                    eprintln!(
                        "step {}/{} epoch {} loss {:.4} lr {:.2e} {:.1} samples/s",
                        state.step,
                        total_steps,
                        state.epoch + 1,
                        window.mean_loss(),
                        stats.lr,
                        rate
                    );
                }
                window = Window::new();
            }
            let interrupt = interrupted.load(Ordering::SeqCst);
            if state.step % s.checkpoint_every == 0 || interrupt {
                state.elapsed_s = elapsed();
                let at = checkpoint::save(&run.run_dir, &model, &optim, &state)?;
                if interrupt {
                    bar.finish_and_clear();
                    eprintln!(
                        "interrupted: checkpoint saved to {}; continue with `trainer fine-tune --resume {}`",
                        at.display(),
                        run.run_dir.display()
                    );
                    return Err(crate::Interrupted.into());
                }
            }
        }
        end_epoch(run, &bar, &model, &mut state)?;
        state.elapsed_s = elapsed();
        checkpoint::save(&run.run_dir, &model, &optim, &state)?;
    }
    bar.finish_and_clear();
    Ok(Ended::Finished(Box::new(Progress {
        model,
        optim,
        state,
    })))
}

/// Epoch end: validate, keep the best model, move `state` to the next epoch.
fn end_epoch(
    run: &Run,
    bar: &ProgressBar,
    model: &model_core::model::BertForSequenceClassification,
    state: &mut TrainState,
) -> Result<()> {
    let s = run.settings();
    bar.suspend(|| {
        eprintln!(
            "epoch {} done; validating on {} reviews",
            state.epoch + 1,
            run.valid.examples.len()
        )
    });
    let summary = evaluate_model(
        model.valid(),
        &run.config,
        &run.tokenizer,
        &run.base_device,
        &run.valid,
        s.max_len,
        s.truncation,
    )?;
    log_metrics(
        &run.run_dir,
        serde_json::json!({"step": state.step, "epoch": state.epoch + 1, "split": "validation",
            "accuracy": summary.accuracy, "f1": summary.f1, "loss": summary.loss, "ece": summary.ece}),
    )?;
    bar.suspend(|| {
        eprintln!(
            "epoch {}: validation accuracy {:.4} loss {:.4}",
            state.epoch + 1,
            summary.accuracy,
            summary.loss
        )
    });
    if state.best_accuracy.is_none_or(|b| summary.accuracy > b) {
        state.best_accuracy = Some(summary.accuracy);
        state.best_step = Some(state.step);
        save_model_folder(&run.run_dir, "best", model, &run.config, &run.tokenizer, s)?;
    }
    state.epoch += 1;
    state.batch_in_epoch = 0;
    Ok(())
}

/// The error that stops a run whose step `state.step + 1` diverged.
fn stop_diverged<T>(run: &Run, state: &TrainState, diverged: Diverged) -> Result<T> {
    let lr = run.settings().lr;
    match diverged {
        Diverged::Loss(value) => {
            // The weights that gave this loss may be the ones just checkpointed: never
            // leave `latest.json` pointing at them.
            let kept = checkpoint::roll_back_from(&run.run_dir, state.step)?;
            bail!(
                "the loss became {value} at step {} (epoch {}) with --lr {lr}; training stopped. {} \
                 Start a new run with a lower --lr.",
                state.step + 1,
                state.epoch + 1,
                last_good(&run.run_dir, kept)
            )
        }
        Diverged::GradNorm(norm) => {
            let kept = checkpoint::latest(&run.run_dir)?.map(|(d, _)| {
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string()
            });
            bail!(
                "the gradient norm became {norm} at step {} (epoch {}) with --lr {lr}; training stopped \
                 before applying it. {} Start a new run with a lower --lr.",
                state.step + 1,
                state.epoch + 1,
                last_good(&run.run_dir, kept)
            )
        }
    }
}

/// Where the last checkpoint with finite weights is, for the message that stops a
/// diverged run.
fn last_good(run_dir: &Path, kept: Option<String>) -> String {
    match kept {
        Some(name) => format!(
            "The last good checkpoint is {} (its weights are finite).",
            run_dir.join("checkpoints").join(name).display()
        ),
        None => "No checkpoint with finite weights had been written yet.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::setup::open;
    use crate::train::testing::{self, checkpoint_names, latest_name, resume_args, tiny_run};

    fn finished(e: Ended) -> Progress {
        match e {
            Ended::Finished(p) => *p,
            Ended::Stopped => panic!("stopped before the end"),
        }
    }

    /// Checkpoints every 3 steps and at each epoch end (steps 4 and 8); the newest two
    /// are kept.
    #[test]
    fn checkpoints_follow_the_cadence_and_a_stopped_run_resumes_to_the_same_weights() {
        let _serial = testing::serial();
        let dir = tempfile::tempdir().unwrap();
        let never = AtomicBool::new(false);

        let straight = dir.path().join("straight");
        let (run, progress) = open(&tiny_run(&straight, &[])).unwrap();
        let expected = finished(train(&run, progress, &never, None).unwrap());
        assert_eq!(expected.state.step, 8);
        assert_eq!(expected.state.epoch, 2);
        assert_eq!(
            checkpoint_names(&straight),
            ["step-00000006", "step-00000008"]
        );
        assert_eq!(latest_name(&straight), "step-00000008");
        assert!(straight.join("best/model.bpk").is_file());
        let metrics = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.matches("\"validation\"").count(), 2, "{metrics}");

        // Stopped by --max-steps mid-epoch 2, at a step off the cadence.
        let stopped = dir.path().join("stopped");
        let (run, progress) = open(&tiny_run(&stopped, &[])).unwrap();
        assert!(matches!(
            train(&run, progress, &never, Some(5)).unwrap(),
            Ended::Stopped
        ));
        assert_eq!(
            checkpoint_names(&stopped),
            ["step-00000004", "step-00000005"]
        );
        assert_eq!(latest_name(&stopped), "step-00000005");

        // Resumed, then interrupted (Ctrl-C) after one more step.
        let ctrl_c = AtomicBool::new(true);
        let (run, progress) = open(&resume_args(&stopped)).unwrap();
        assert_eq!(progress.state.step, 5);
        let e = train(&run, progress, &ctrl_c, None).err().unwrap();
        assert!(e.is::<crate::Interrupted>(), "{e:#}");
        assert_eq!(latest_name(&stopped), "step-00000006");
        assert!(!stopped.join("final").exists());

        // Resumed to the end: the same weights and state as the uninterrupted run.
        let (run, progress) = open(&resume_args(&stopped)).unwrap();
        let resumed = finished(train(&run, progress, &never, None).unwrap());
        assert_eq!(resumed.state.step, expected.state.step);
        assert_eq!(resumed.state.best_accuracy, expected.state.best_accuracy);
        assert_eq!(resumed.state.best_step, expected.state.best_step);
        let d = testing::max_diff(
            &testing::weights(&expected.model),
            &testing::weights(&resumed.model),
        );
        assert_eq!(d, 0.0, "the resumed run's weights differ by up to {d}");
    }

    /// lr 1e12 makes the weights of step 1 overflow at step 2. With a checkpoint every
    /// step, the one of the weights that gave a non-finite loss must be rolled back.
    #[test]
    fn a_diverging_run_stops_and_keeps_no_checkpoint_of_the_weights_that_diverged() {
        let _serial = testing::serial();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("diverges");
        let changes = [("--lr", "1e12"), ("--checkpoint-every", "1")];
        let (run, progress) = open(&tiny_run(&out, &changes)).unwrap();
        let e = train(&run, progress, &AtomicBool::new(false), None)
            .err()
            .expect("lr 1e12 diverges within 8 steps")
            .to_string();
        assert!(
            e.contains("with --lr 1000000000000") && e.contains("lower --lr"),
            "{e}"
        );
        assert!(!out.join("final").exists());
        let step: usize = e
            .split("at step ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no step in: {e}"));
        assert!(step >= 2, "the pretrained weights cannot diverge: {e}");
        let kept = out
            .join("latest.json")
            .exists()
            .then(|| latest_name(&out)[5..13].parse::<usize>().unwrap());
        if e.contains("the loss became") {
            // Step `step` ran on the weights of step `step - 1`, checkpointed just before.
            assert!(kept.is_none_or(|k| k < step - 1), "kept step {kept:?}: {e}");
        } else {
            // A non-finite gradient is never applied: the last checkpoint is still good.
            assert!(e.contains("the gradient norm became"), "{e}");
            assert_eq!(kept, Some(step - 1), "{e}");
        }
        match kept {
            Some(k) => assert!(e.contains(&format!("step-{k:08}")), "{e}"),
            None => assert!(e.contains("No checkpoint with finite weights"), "{e}"),
        }
    }
}
