//! Loading errors are clear: each names the file or tensor, exits non-zero, never panics.

use integration_tests::*;

fn predict(model: &std::path::Path) -> std::process::Output {
    trainer(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            "64",
            "good",
        ],
        None,
    )
}

#[test]
fn missing_config_json() {
    let dir = copy_dir(&tiny("finetuned"));
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert_clean_failure(
        &predict(dir.path()),
        &["config.json", &dir.path().display().to_string()],
    );
}

#[test]
fn config_that_does_not_match_the_weights() {
    let dir = copy_dir(&tiny("finetuned"));
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = 128.into();
    std::fs::write(&path, config.to_string()).unwrap();
    assert_clean_failure(
        &predict(dir.path()),
        &[
            "bert.encoder.layer.0.intermediate.dense.weight",
            "[64, 32]",
            "[128, 32]",
            "model.safetensors",
        ],
    );
}

#[test]
fn tensor_missing_from_the_checkpoint() {
    let dir = copy_dir(&tiny("finetuned"));
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "bert.encoder.layer.1.attention.self.value.weight")
        .collect();
    let out = safetensors::serialize(kept, None).unwrap();
    std::fs::write(&path, out).unwrap();
    assert_clean_failure(
        &predict(dir.path()),
        &[
            "bert.encoder.layer.1.attention.self.value.weight",
            "missing",
            "model.safetensors",
        ],
    );
}

#[test]
fn truncated_safetensors() {
    let dir = copy_dir(&tiny("finetuned"));
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_clean_failure(&predict(dir.path()), &["model.safetensors", "truncated"]);
}

#[test]
fn unsupported_dtype() {
    let dir = copy_dir(&tiny("finetuned"));
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "bert.pooler.dense.bias";
    let ints: Vec<u8> = vec![0u8; 32 * 4];
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    tensors.push((
        name.to_string(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::I32, vec![32], &ints).unwrap(),
    ));
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    assert_clean_failure(&predict(dir.path()), &[name, "I32", "unsupported dtype"]);
}

#[test]
fn hub_id_neither_cached_nor_downloadable() {
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(trainer_bin())
        .args(["predict", "--model", "no-such-org/no-such-model", "good"])
        .env("HF_HOME", cache.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_clean_failure(
        &out,
        &[
            "no-such-org/no-such-model",
            "Point --model at a local folder",
            "HF_HOME",
        ],
    );
}

#[test]
fn bad_cli_values_are_rejected() {
    let model = tiny("finetuned");
    let m = model.to_str().unwrap();
    assert_clean_failure(
        &trainer(&["predict", "--model", m, "--batch-size", "0", "x"], None),
        &["batch size"],
    );
    assert_clean_failure(
        &trainer(&["predict", "--model", m, "--max-len", "1000", "x"], None),
        &["max length 1000", "max_position_embeddings 64"],
    );
    assert_clean_failure(
        &trainer(&["predict", "--model", m, "--backend", "tpu", "x"], None),
        &["unknown backend `tpu`"],
    );
    assert_clean_failure(
        &trainer(
            &["predict", "--model", m, "--truncation", "middle", "x"],
            None,
        ),
        &["unknown truncation `middle`"],
    );
}
