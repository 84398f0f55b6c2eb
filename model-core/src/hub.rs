//! Finding a model: a local folder, or a Hugging Face hub id resolved through the
//! standard hub client and its cache (`HF_HOME`, default `~/.cache/huggingface`).
//!
//! The cache is consulted first and the network only on a miss, so a model that is
//! already cached (or laid out by hand in `HF_HOME`) loads offline.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::open::WEIGHT_FILES;

/// Resolve `spec` (a folder, or a hub id like `sentence-transformers/all-MiniLM-L6-v2`)
/// to a local folder holding `config.json`, the weights and the tokenizer.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.exists() {
        return Err(Error::InvalidArgument(format!(
            "{spec}: is a file; --model takes a model folder (with config.json) or a hub id"
        )));
    }
    let looks_like_id = !spec.is_empty()
        && spec.split('/').count() <= 2
        && !spec.starts_with('.')
        && !spec.starts_with('/')
        && !spec.contains('\\');
    if !looks_like_id {
        return Err(Error::InvalidArgument(format!(
            "{spec}: no such model folder"
        )));
    }
    resolve_hub(spec)
}

fn resolve_hub(model_id: &str) -> Result<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(model_id.to_string());
    if let Some(config) = cached.get("config.json") {
        let has_weights = WEIGHT_FILES.iter().any(|f| cached.get(f).is_some());
        if has_weights {
            return Ok(config
                .parent()
                .expect("cache file has a folder")
                .to_path_buf());
        }
    }
    download(model_id, cache.path()).map_err(|message| Error::Hub {
        model_id: model_id.into(),
        message: format!(
            "not in the Hugging Face cache at {} and the download failed ({message}). \
             Point --model at a local folder holding config.json, tokenizer.json (or vocab.txt) \
             and model.safetensors (or pytorch_model.bin), or set HF_HOME to a cache that has it.",
            cache.path().display()
        ),
    })
}

fn download(model_id: &str, cache_dir: &Path) -> std::result::Result<PathBuf, String> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_cache_dir(cache_dir.to_path_buf())
        .with_progress(true)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.model(model_id.to_string());
    let config = repo.get("config.json").map_err(|e| e.to_string())?;
    if repo.get("tokenizer.json").is_err() {
        repo.get("vocab.txt")
            .map_err(|e| format!("no tokenizer.json or vocab.txt: {e}"))?;
    }
    let weights_ok = ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .any(|f| repo.get(f).is_ok());
    if !weights_ok {
        return Err("the repository has neither model.safetensors nor pytorch_model.bin".into());
    }
    Ok(config
        .parent()
        .expect("cache file has a folder")
        .to_path_buf())
}
