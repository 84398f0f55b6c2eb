//! The data readers through the CLI: a small archive in the official IMDb layout is
//! read directly (train and test splits, `unsup/` ignored), and every kind of bad
//! data file fails with a message naming the file (and line), never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use integration_tests::*;

/// Write `aclImdb_v1.tar.gz` with `n` reviews per class and split (+ an `unsup/` folder).
fn mini_archive(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("aclImdb_v1.tar.gz");
    let file = std::fs::File::create(&path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    let mut add = |name: String, text: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, text.as_bytes()).unwrap();
    };
    for split in ["train", "test"] {
        for i in 0..n {
            add(
                format!("aclImdb/{split}/pos/{i}_9.txt"),
                "A wonderful movie!<br /><br />The acting was great and I loved it.",
            );
            add(
                format!("aclImdb/{split}/neg/{i}_2.txt"),
                "Boring plot, bad acting and awful dialogue.<br />Avoid it!",
            );
        }
    }
    add(
        "aclImdb/train/unsup/0_0.txt".into(),
        "unlabeled text that must be ignored",
    );
    tar.into_inner().unwrap().finish().unwrap();
    path
}

fn evaluate(model: &Path, data: &Path) -> std::process::Output {
    trainer(
        &[
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--backend",
            "flex",
            "--max-len",
            "64",
        ],
        None,
    )
}

#[test]
fn imdb_archive_is_read_directly_with_both_splits() {
    let dir = tempfile::tempdir().unwrap();
    let archive = mini_archive(dir.path(), 6);
    let model = tiny("finetuned");
    for split in ["train", "test"] {
        let out = trainer(
            &[
                "evaluate",
                "--model",
                model.to_str().unwrap(),
                "--data",
                archive.to_str().unwrap(),
                "--split",
                split,
                "--backend",
                "flex",
                "--max-len",
                "64",
            ],
            None,
        );
        let summary = &json_lines(&out)[0];
        assert_eq!(summary["n"], 12, "{split}: 6 pos + 6 neg, unsup ignored");
        assert_eq!(
            summary["accuracy"], 1.0,
            "the tiny model gets these two reviews right: {summary}"
        );
    }
    // Fine-tuning on the archive evaluates the test split at the end.
    let run = dir.path().join("run");
    let out = trainer(
        &[
            "fine-tune",
            "--model",
            tiny("backbone").to_str().unwrap(),
            "--data",
            archive.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--backend",
            "flex",
            "--max-len",
            "64",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--valid-fraction",
            "0.34",
        ],
        None,
    );
    let results = &json_lines(&out)[0];
    assert_eq!(results["test"]["n"], 12, "{results}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("Test set (12 reviews)") && report.contains("Confusion matrix"),
        "{report}"
    );
    assert!(
        report.contains("fine-tune --model"),
        "the report names the command: {report}"
    );
}

#[test]
fn bad_data_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny("finetuned");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    };

    let not_archive = write("fake.tar.gz", b"this is not gzip");
    assert_clean_failure(&evaluate(&model, &not_archive), &["fake.tar.gz"]);

    let archive = mini_archive(dir.path(), 50);
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = write("truncated.tar.gz", &bytes[..bytes.len() / 2]);
    assert_clean_failure(
        &evaluate(&model, &truncated),
        &["truncated.tar.gz", "truncated"],
    );

    let non_utf8 = write(
        "latin1.jsonl",
        b"{\"text\": \"good\", \"label\": \"positive\"}\n{\"text\": \"caf\xe9\", \"label\": 0}\n",
    );
    assert_clean_failure(
        &evaluate(&model, &non_utf8),
        &["latin1.jsonl:2", "not UTF-8"],
    );

    let unknown = write(
        "neutral.jsonl",
        b"{\"text\": \"fine\", \"label\": \"neutral\"}\n",
    );
    assert_clean_failure(
        &evaluate(&model, &unknown),
        &["neutral.jsonl", "label `neutral`", "negative, positive"],
    );

    let missing = write(
        "nolabel.jsonl",
        b"{\"text\": \"good\", \"label\": 1}\n{\"text\": \"bad\"}\n",
    );
    assert_clean_failure(&evaluate(&model, &missing), &["nolabel.jsonl:2", "label"]);

    // Found by fuzzing: a huge numeric label once made the reader allocate a label
    // name per class index up to it.
    let huge = write("huge.csv", b"text,label\ngood,1\nbad,211307201005459865\n");
    assert_clean_failure(
        &evaluate(&model, &huge),
        &["huge.csv:3", "not a class index"],
    );

    let empty = write("empty.jsonl", b"\n\n");
    assert_clean_failure(
        &evaluate(&model, &empty),
        &["empty.jsonl", "no labeled examples"],
    );

    let bad_csv = write(
        "ragged.csv",
        b"text,label\n\"good\",positive\n\"bad\",negative,extra\n",
    );
    assert_clean_failure(&evaluate(&model, &bad_csv), &["ragged.csv:3"]);

    let unknown_format = write("reviews.parquet", b"PAR1");
    assert_clean_failure(
        &evaluate(&model, &unknown_format),
        &["reviews.parquet", "unknown data format"],
    );
}

#[test]
fn csv_with_custom_columns_and_numeric_labels() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    std::fs::write(
        &csv,
        "id,review_body,stars_positive\n1,\"A wonderful movie! The acting was great, and I loved it.\",1\n2,Boring plot and bad acting.,0\n",
    )
    .unwrap();
    let out = trainer(
        &[
            "evaluate",
            "--model",
            tiny("finetuned").to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
            "--text-column",
            "review_body",
            "--label-column",
            "stars_positive",
            "--backend",
            "flex",
            "--max-len",
            "64",
        ],
        None,
    );
    let summary = &json_lines(&out)[0];
    assert_eq!(summary["n"], 2);
    assert_eq!(summary["confusion"], serde_json::json!([[1, 0], [0, 1]]));
}
