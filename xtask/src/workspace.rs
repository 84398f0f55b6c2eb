//! Where things are (the workspace root, the build cache, the built page) and running
//! a command from there.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root. `cargo run` sets `CARGO_MANIFEST_DIR` for the process: prefer it
/// to the compile-time value, which names whichever clone built the binary, and a
/// build cache shared between clones can hand this clone another clone's binary.
pub fn root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().unwrap_or(Path::new(".")).to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where the built page goes.
pub fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

/// Run a command from the workspace root; on failure, say which one and stop.
pub fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    run_in(&root(), program, args, envs)
}

/// [`run`] from `dir`. An empty value in `envs` removes that variable.
pub fn run_in(
    dir: &Path,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Result<(), String> {
    eprintln!("\n==> {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    for (key, value) in envs {
        match value.is_empty() {
            true => command.env_remove(key),
            false => command.env(key, value),
        };
    }
    let started = std::time::Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    eprintln!(
        "<== {program} {} ({:.0} s)",
        args.first().copied().unwrap_or(""),
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}
