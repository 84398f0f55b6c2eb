//! Training that goes wrong: a diverging loss, a full disk while checkpointing, and
//! twenty SIGKILLs at random moments. Each must leave a readable run folder whose
//! last checkpoint a resume can continue from.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::*;

/// Every checkpoint folder in `run` is complete and `latest.json` names one of them.
/// Returns the step `latest.json` names, if any.
fn assert_checkpoints_readable(run: &Path) -> Option<u64> {
    let root = run.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            if !name.starts_with("step-") {
                continue; // a temporary folder the next save or prune removes
            }
            let dir = root.join(&name);
            let state: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join("state.json"))
                    .unwrap_or_else(|e| panic!("{name}: no state.json: {e}")),
            )
            .unwrap_or_else(|e| panic!("{name}: unreadable state.json: {e}"));
            assert!(
                name.starts_with(&format!("step-{:08}", state["step"].as_u64().unwrap())),
                "{name} holds the state of another step"
            );
            for f in ["model.bpk", "optimizer.bpk"] {
                let len = std::fs::metadata(dir.join(f))
                    .unwrap_or_else(|e| panic!("{name}/{f}: {e}"))
                    .len();
                assert!(len > 0, "{name}/{f} is empty");
            }
        }
    }
    let latest = std::fs::read_to_string(run.join("latest.json")).ok()?;
    let latest: serde_json::Value = serde_json::from_str(&latest)
        .unwrap_or_else(|e| panic!("latest.json is not JSON ({e}): {latest}"));
    let name = latest["checkpoint"].as_str().unwrap();
    assert!(
        root.join(name).join("state.json").is_file(),
        "latest.json names {name}, which is not a complete checkpoint"
    );
    name.get(5..13).and_then(|s| s.parse().ok())
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = repeated_reviews(dir.path());
    let run = dir.path().join("diverges");
    let model = tiny("backbone");
    let mut args = fine_tune_args(
        run.to_str().unwrap(),
        data.to_str().unwrap(),
        model.to_str().unwrap(),
    );
    // lr 1000 blows the weights up within the warmup.
    let lr = args.iter().position(|a| *a == "--lr").unwrap() + 1;
    args[lr] = "1000";
    let stderr = assert_clean_failure(
        &trainer(&args, None),
        &["the loss became", "--lr 1000", "lower --lr"],
    );
    let step: u64 = stderr
        .split("at step ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {stderr}"));
    let kept = assert_checkpoints_readable(&run).expect("no checkpoint left");
    // Step `step` ran on the weights of checkpoint step-1; those gave the bad loss
    // and must not be the one left to resume from.
    assert!(
        kept < step - 1,
        "kept step-{kept} although step {step} diverged"
    );
    assert!(
        stderr.contains(&format!("step-{kept:08}")),
        "the message should name the checkpoint kept: {stderr}"
    );
    assert!(!run.join("final").exists());
}

/// A tmpfs of a few MB in a private mount namespace (`unshare -rm`, no root
/// needed) is filled up while the run checkpoints; once space is freed, a resume
/// finishes the run as if nothing had happened.
#[test]
fn a_full_disk_while_checkpointing_keeps_the_previous_checkpoint() {
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: `unshare -rm` (user and mount namespaces) is not available here");
        return;
    }
    let t = StopAndResume::new("unused");
    let (dir, data, model, straight) = (&t.dir, &t.data, &t.model, &t.straight);
    let mnt = dir.path().join("small-disk");
    let save = dir.path().join("saved");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&save).unwrap();
    let run_in_mnt = mnt.join("run");
    let args = fine_tune_args(
        run_in_mnt.to_str().unwrap(),
        data.to_str().unwrap(),
        model.to_str().unwrap(),
    );
    let quoted = |s: &str| format!("'{s}'");
    let start = args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(" ");
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=16m tmpfs "$MNT"
"$TRAINER" {start} 2> "$SAVE/full.stderr" &
pid=$!
while [ ! -e "$MNT/run/latest.json" ]; do sleep 0.002; done
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
wait $pid; echo "$?" > "$SAVE/full.exit"
cp -r "$MNT/run" "$SAVE/after-full"
rm "$MNT/filler"
"$TRAINER" fine-tune --resume "$MNT/run" --backend flex > /dev/null 2> "$SAVE/resume.stderr"
echo "$?" > "$SAVE/resume.exit"
cp -r "$MNT/run/final" "$SAVE/final"
"#
    );
    let status = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env("MNT", &mnt)
        .env("SAVE", &save)
        .env("TRAINER", trainer_bin())
        .env("HF_HUB_OFFLINE", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the namespace script failed");
    let read = |f: &str| std::fs::read_to_string(save.join(f)).unwrap_or_default();

    let stderr = read("full.stderr");
    assert_ne!(
        read("full.exit").trim(),
        "0",
        "the run ignored the full disk"
    );
    assert_ne!(read("full.exit").trim(), "101", "panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The disk can fill up in a checkpoint or in the metrics log: either way the
    // message names the file and says why.
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains(&format!("{}/", run_in_mnt.display())),
        "the error should name the file and the cause: {stderr}"
    );
    assert!(
        assert_checkpoints_readable(&save.join("after-full")).is_some(),
        "no checkpoint survived the full disk"
    );

    assert_eq!(read("resume.exit").trim(), "0", "{}", read("resume.stderr"));
    let d = max_diff(
        &predict_probs(&straight.join("final")),
        &predict_probs(&save.join("final")),
    );
    assert!(
        d < 1e-5,
        "the resumed run differs from the uninterrupted one by {d}"
    );
}

/// xorshift64: kill moments that are random yet reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Twenty SIGKILLs at random moments of one run (while it loads, trains, validates
/// or writes a checkpoint), each followed by `--resume`: no checkpoint is ever
/// unreadable, and the finished run's `best/` and `final/` predict exactly what an
/// uninterrupted run's do.
#[test]
fn twenty_random_sigkills_each_resumed_end_like_an_uninterrupted_run() {
    let seed = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments from seed {seed} (KILL_TEST_SEED={seed} repeats them)");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let data = repeated_reviews(dir.path());
    let model = tiny("backbone");
    let straight = dir.path().join("straight");
    let mut start_args = fine_tune_args(
        straight.to_str().unwrap(),
        data.to_str().unwrap(),
        model.to_str().unwrap(),
    );
    let epochs = start_args.iter().position(|a| *a == "--epochs").unwrap() + 1;
    start_args[epochs] = "3";
    run_ok(&start_args);
    let expected_best = predict_probs(&straight.join("best"));
    let expected_final = predict_probs(&straight.join("final"));

    let run = dir.path().join("killed");
    let out = start_args.iter().position(|a| *a == "--out").unwrap() + 1;
    start_args[out] = run.to_str().unwrap();
    let resume_args = [
        "fine-tune",
        "--resume",
        run.to_str().unwrap(),
        "--backend",
        "flex",
    ];

    let (mut kills, mut before_start, mut mid_write, mut finished_early) = (0, 0, 0, 0);
    let finish = |run: &Path| {
        let d = max_diff(&expected_final, &predict_probs(&run.join("final")))
            .max(max_diff(&expected_best, &predict_probs(&run.join("best"))));
        assert!(d < 1e-5, "the killed and resumed run differs by {d}");
    };
    while kills < 20 {
        let resuming = run.join("run.json").exists();
        let args: Vec<&str> = if resuming {
            resume_args.to_vec()
        } else {
            start_args.clone()
        };
        let mut child = Command::new(trainer_bin())
            .args(&args)
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(rng.below(600));
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(status) = exited {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "{} failed: {}",
                if resuming { "resume" } else { "start" },
                String::from_utf8_lossy(&out.stderr)
            );
            // The run ended before this kill: check it and begin another one.
            finish(&run);
            finished_early += 1;
            std::fs::remove_dir_all(&run).unwrap();
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if !run.join("run.json").exists() {
            before_start += 1;
        }
        let tmp_left = std::fs::read_dir(run.join("checkpoints"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .unwrap_or(false);
        if tmp_left {
            mid_write += 1;
        }
        assert_checkpoints_readable(&run);
    }
    let args: Vec<&str> = if run.join("run.json").exists() {
        resume_args.to_vec()
    } else {
        start_args
    };
    run_ok(&args);
    finish(&run);
    eprintln!(
        "{kills} kills: {before_start} before run.json existed, {mid_write} while a checkpoint was being written; \
         {finished_early} run(s) finished between kills"
    );
}
