//! Checkpoints that survive Ctrl-C, SIGKILL and full disks.
//!
//! A checkpoint is a folder `checkpoints/step-NNNNNNNN/` with the model
//! (`model.bpk`), the optimizer state (`optimizer.bpk`) and `state.json`. It is
//! written under a temporary name, synced, then renamed into place, and only then
//! does `latest.json` (itself replaced by rename) point at it. A crash at any moment
//! leaves `latest.json` naming a complete checkpoint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use model_core::model::BertForSequenceClassification;
use serde::{Deserialize, Serialize};

/// Where training stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Next batch of the epoch's plan to run.
    pub batch_in_epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Best validation accuracy so far.
    pub best_accuracy: Option<f64>,
    /// Step at which it was reached.
    pub best_step: Option<usize>,
    /// Training seconds so far (across resumes).
    pub elapsed_s: f64,
}

/// Write `bytes` to `path` atomically: temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("{}: cannot sync", tmp.display()))?;
    }
    fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))?;
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Save a checkpoint of the model, optimizer and state.
pub fn save(
    run_dir: &Path,
    model: &BertForSequenceClassification,
    optim: &ModuleOptimizer,
    state: &TrainState,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    fs::create_dir_all(&root).with_context(|| format!("{}: cannot create", root.display()))?;
    let name = unused_name(&root, state.step);
    let tmp = root.join(format!(".{name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    let write = || -> Result<()> {
        fs::create_dir_all(&tmp)?;
        model.save_burnpack(&tmp.join("model.bpk"))?;
        optim.save(tmp.join("optimizer.bpk")).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot write the optimizer state: {e:?}",
                tmp.join("optimizer.bpk").display()
            )
        })?;
        write_atomic(&tmp.join("state.json"), &serde_json::to_vec_pretty(state)?)?;
        for f in ["model.bpk", "optimizer.bpk"] {
            fs::File::open(tmp.join(f))?.sync_all()?;
        }
        sync_dir(&tmp);
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e.context(format!(
            "{}: writing the checkpoint failed; the previous checkpoint is intact",
            tmp.display()
        )));
    }
    let dest = root.join(&name);
    fs::rename(&tmp, &dest)
        .with_context(|| format!("{}: cannot rename into place", dest.display()))?;
    sync_dir(&root);
    write_atomic(
        &run_dir.join("latest.json"),
        serde_json::json!({ "checkpoint": name })
            .to_string()
            .as_bytes(),
    )?;
    prune(&root, &name);
    Ok(dest)
}

/// `step-NNNNNNNN`, or `step-NNNNNNNN.K` when a checkpoint of that step already
/// exists (the mid-epoch and epoch-end checkpoints of the last step, or a step
/// redone after a resume): a checkpoint is never overwritten in place, so
/// `latest.json` always names a complete folder.
fn unused_name(root: &Path, step: usize) -> String {
    let base = format!("step-{step:08}");
    if !root.join(&base).exists() {
        return base;
    }
    (1..)
        .map(|k| format!("{base}.{k}"))
        .find(|n| !root.join(n).exists())
        .expect("an unused name exists")
}

/// Delete the checkpoint folder `name` without ever leaving a half-deleted
/// `step-*` folder behind: it is first renamed to a temporary name (atomic), which
/// a later prune removes if this deletion is interrupted.
fn discard(root: &Path, name: &str) {
    let dir = root.join(name);
    if !dir.exists() {
        return;
    }
    let trash = root.join(format!(".{name}.discarded.tmp"));
    let _ = fs::remove_dir_all(&trash);
    if fs::rename(&dir, &trash).is_ok() {
        let _ = fs::remove_dir_all(&trash);
    }
}

/// Keep the newest two checkpoints; drop older ones and stale temporaries.
fn prune(root: &Path, keep_latest: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let complete: Vec<&String> = names.iter().filter(|n| n.starts_with("step-")).collect();
    let keep: Vec<&String> = complete.iter().rev().take(2).copied().collect();
    for n in &names {
        let stale_tmp = n.starts_with('.') && n.ends_with(".tmp");
        let old = n.starts_with("step-") && !keep.contains(&n) && n != keep_latest;
        if stale_tmp {
            let _ = fs::remove_dir_all(root.join(n));
        } else if old {
            discard(root, n);
        }
    }
}

/// The checkpoint `latest.json` names, with its state.
pub fn latest(run_dir: &Path) -> Result<Option<(PathBuf, TrainState)>> {
    let pointer = run_dir.join("latest.json");
    if !pointer.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&pointer)
        .with_context(|| format!("{}: cannot read", pointer.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", pointer.display()))?;
    let name = value["checkpoint"]
        .as_str()
        .with_context(|| format!("{}: no \"checkpoint\" field", pointer.display()))?;
    let dir = run_dir.join("checkpoints").join(name);
    let state_path = dir.join("state.json");
    let state: TrainState = serde_json::from_str(
        &fs::read_to_string(&state_path)
            .with_context(|| format!("{}: cannot read", state_path.display()))?,
    )
    .with_context(|| format!("{}: not a training state", state_path.display()))?;
    Ok(Some((dir, state)))
}

/// Drop the checkpoint of `step` if `latest.json` names it, and point
/// `latest.json` back at the newest earlier complete checkpoint (or remove it when
/// there is none, so a resume starts from the pretrained model).
///
/// Used when the weights of `step` give a non-finite loss: they are not worth
/// resuming from. Returns the checkpoint `latest.json` names afterwards.
pub fn roll_back_from(run_dir: &Path, step: usize) -> Result<Option<String>> {
    let root = run_dir.join("checkpoints");
    let pointer = run_dir.join("latest.json");
    let name_of = |d: &Path| {
        d.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string()
    };
    let bad = match latest(run_dir)? {
        Some((dir, state)) if state.step == step => name_of(&dir),
        other => return Ok(other.map(|(dir, _)| name_of(&dir))),
    };
    let mut earlier: Vec<String> = fs::read_dir(&root)
        .with_context(|| format!("{}: cannot list", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            n.starts_with("step-")
                && n.as_str() < format!("step-{step:08}").as_str()
                && root.join(n).join("state.json").is_file()
        })
        .collect();
    earlier.sort();
    let previous = earlier.pop();
    match &previous {
        Some(name) => write_atomic(
            &pointer,
            serde_json::json!({ "checkpoint": name })
                .to_string()
                .as_bytes(),
        )?,
        None => fs::remove_file(&pointer)
            .with_context(|| format!("{}: cannot remove", pointer.display()))?,
    }
    sync_dir(run_dir);
    discard(&root, &bad);
    Ok(previous)
}

/// Bring `dest` back from `dest.old` when a kill fell between the two renames of
/// [`replace_dir`], so a run folder never loses its `best/` model.
pub fn recover_dir(dest: &Path) -> Result<()> {
    let old = dest.with_extension("old");
    if !dest.exists() && old.is_dir() {
        fs::rename(&old, dest).with_context(|| {
            format!("{}: cannot restore from {}", dest.display(), old.display())
        })?;
    }
    Ok(())
}

/// Replace the folder `dest` with the complete folder `fresh` (rename-based).
pub fn replace_dir(fresh: &Path, dest: &Path) -> Result<()> {
    recover_dir(dest)?;
    let old = dest.with_extension("old");
    let _ = fs::remove_dir_all(&old);
    if dest.exists() {
        fs::rename(dest, &old).with_context(|| format!("{}: cannot move aside", dest.display()))?;
    }
    fs::rename(fresh, dest)
        .with_context(|| format!("{}: cannot rename into place", dest.display()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}
