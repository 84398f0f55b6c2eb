//! `trainer predict` over inputs of any size: chunked streaming in input order,
//! resuming after Ctrl-C and SIGKILL, bad lines, and shards that concatenate to the
//! single run, byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{assert_clean_failure, tiny, tiny_texts, trainer, trainer_bin};

/// The tiny reviews as JSONL with ids, `times` over (`r1`, `r2`, ...).
fn reviews(dir: &Path, times: usize) -> PathBuf {
    let texts = tiny_texts();
    let mut out = String::new();
    for i in 0..texts.len() * times {
        let row = serde_json::json!({"id": format!("r{}", i + 1), "text": texts[i % texts.len()]});
        out.push_str(&format!("{row}\n"));
    }
    let path = dir.join(format!("reviews{}.jsonl", texts.len() * times));
    std::fs::write(&path, out).unwrap();
    path
}

/// `predict` arguments for the tiny model on `data`.
fn args<'a>(data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "predict",
        "--model",
        tiny_model(),
        "--backend",
        "flex",
        "--max-len",
        "64",
        "--data",
        data.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    a
}

fn tiny_model() -> &'static str {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| tiny("finetuned").to_str().unwrap().to_string())
}

fn stdout_of(args: &[&str]) -> String {
    let out = trainer(args, None);
    assert!(
        out.status.success(),
        "trainer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
}

#[test]
fn chunks_keep_input_order_ids_and_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let data = reviews(dir.path(), 10);
    let streamed = stdout_of(&args(&data, &["--chunk-size", "7"]));
    let whole = stdout_of(&args(&data, &["--chunk-size", "100000"]));
    let (streamed, whole): (Vec<_>, Vec<_>) = (
        streamed.lines().map(json).collect(),
        whole.lines().map(json).collect(),
    );
    assert_eq!(streamed.len(), 200);
    for (i, (s, w)) in streamed.iter().zip(&whole).enumerate() {
        assert_eq!(s["line"], i + 1);
        assert_eq!(s["id"], format!("r{}", i + 1));
        assert_eq!(
            (&s["line"], &s["id"], &s["label"]),
            (&w["line"], &w["id"], &w["label"])
        );
        let (a, b) = (
            s["probabilities"]["positive"].as_f64().unwrap(),
            w["probabilities"]["positive"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "line {}: {a} vs {b}", i + 1);
    }
    // The same texts repeat every 20 lines: so do their predictions.
    assert_eq!(streamed[3]["probabilities"], streamed[23]["probabilities"]);
}

#[test]
fn shards_concatenate_to_the_single_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = reviews(dir.path(), 10);
    for format in ["jsonl", "csv"] {
        let single = stdout_of(&args(&data, &["--chunk-size", "16", "--format", format]));
        for n in [1, 3, 7] {
            let mut joined = String::new();
            for i in 0..n {
                let shard = format!("{i}/{n}");
                joined += &stdout_of(&args(
                    &data,
                    &["--chunk-size", "16", "--format", format, "--shard", &shard],
                ));
            }
            assert!(joined == single, "{format}, {n} shards differ from one run");
        }
        if format == "csv" {
            assert!(
                single.starts_with(
                    "line,id,label,confidence,p_negative,p_positive,tokens,truncated\n1,r1,"
                ),
                "{}",
                &single[..200]
            );
        }
    }
    let err = trainer(&args(&data, &["--shard", "3/3"]), None);
    assert_clean_failure(&err, &["--shard", "3/3"]);
}

/// Bad lines: invalid JSON, no text field, invalid UTF-8.
fn with_bad_lines(dir: &Path) -> (PathBuf, [usize; 3]) {
    let good = std::fs::read(reviews(dir, 5)).unwrap();
    let mut lines: Vec<Vec<u8>> = good.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    lines.pop();
    lines[29] = b"{\"text\": \"unterminated".to_vec();
    lines[49] = b"{\"body\": \"no text field\"}".to_vec();
    lines[69] = b"{\"text\": \"caf\xe9\"}".to_vec();
    let path = dir.join("bad.jsonl");
    let mut bytes = lines.join(&b'\n');
    bytes.push(b'\n');
    std::fs::write(&path, bytes).unwrap();
    (path, [30, 50, 70])
}

#[test]
fn a_bad_line_is_named_after_the_rows_before_it_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (data, bad) = with_bad_lines(dir.path());
    let out = dir.path().join("out.jsonl");
    let run = trainer(
        &args(
            &data,
            &["--chunk-size", "8", "--out", out.to_str().unwrap()],
        ),
        None,
    );
    assert_clean_failure(&run, &["bad.jsonl:30", "malformed JSON", "--on-error skip"]);
    let written: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    let lines: Vec<u64> = written
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        (1..30).collect::<Vec<_>>(),
        "every row before line 30"
    );

    let skipped = trainer(
        &args(&data, &["--chunk-size", "8", "--on-error", "skip"]),
        None,
    );
    assert!(skipped.status.success());
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    for (line, why) in bad
        .iter()
        .zip(["malformed JSON", "no string field", "not UTF-8"])
    {
        assert!(
            stderr.contains(&format!("skipped {}:{line}: {why}", data.display())),
            "{stderr}"
        );
    }
    let lines: Vec<u64> = String::from_utf8_lossy(&skipped.stdout)
        .lines()
        .map(|l| json(l)["line"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=100)
        .filter(|l| !bad.contains(&(*l as usize)))
        .collect();
    assert_eq!(lines, expected, "exactly the bad lines are skipped");
}

#[test]
fn an_existing_output_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = reviews(dir.path(), 1);
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "hours of work\n").unwrap();
    let run = trainer(&args(&data, &["--out", out.to_str().unwrap()]), None);
    assert_clean_failure(&run, &["out.jsonl", "already exists", "--resume"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hours of work\n");
}

/// Start `predict --out`, and once `min_rows` rows are written, stop it with `signal`.
/// Returns whether it was stopped (false: it finished first).
fn stop_midway(args: &[&str], out: &Path, min_rows: usize, signal: &str) -> bool {
    let mut child = Command::new(trainer_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let count = || std::fs::read(out).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    // A resumed run starts from an earlier run's rows: wait for one of its own, so the
    // signal reaches a process that is running (its Ctrl-C handler installed).
    let before = count();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the run failed before it was stopped");
            return false;
        }
        let rows = count();
        if rows >= min_rows && rows > before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no rows after 120 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    if signal == "-INT" {
        assert_eq!(done.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("--resume"), "{stderr}");
    }
    true
}

#[test]
fn ctrl_c_and_sigkill_then_resume_write_exactly_the_uninterrupted_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = reviews(dir.path(), 400);
    let chunk = ["--chunk-size", "64"];
    let reference = stdout_of(&args(&data, &chunk));
    assert_eq!(reference.lines().count(), 8000);
    for (signal, at_rows) in [
        ("-INT", 100),
        ("-KILL", 300),
        ("-KILL", 1500),
        ("-KILL", 2900),
    ] {
        let out = dir.path().join(format!("out{signal}{at_rows}.jsonl"));
        let out_s = out.to_str().unwrap();
        let mut start = args(&data, &chunk);
        start.extend(["--out", out_s]);
        let mut resume = start.clone();
        resume.push("--resume");
        let mut stops = 0;
        let mut run = start.clone();
        // Stop it, resume it and stop the resumed run again, then let it finish.
        while stops < 2 && stop_midway(&run, &out, at_rows * (stops + 1), signal) {
            stops += 1;
            run = resume.clone();
        }
        if stops > 0 {
            let resumed = trainer(&resume, None);
            assert!(
                resumed.status.success(),
                "{}",
                String::from_utf8_lossy(&resumed.stderr)
            );
        }
        assert!(
            stops > 0,
            "the run ended before it could be stopped at {at_rows} rows"
        );
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(
            written == reference,
            "{signal} after {at_rows} rows ({stops} stops), then --resume: the output differs \
             ({} rows vs {})",
            written.lines().count(),
            reference.lines().count()
        );
    }
}
