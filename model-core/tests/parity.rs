//! Parity with PyTorch/`transformers` on the real all-MiniLM-L6-v2 checkpoint:
//! identical token ids, and `[CLS]` hidden state and pooler output within 1e-4 on
//! every backend. Golden values: `tools/make_golden.py` → `fixtures/minilm_golden.json`.

mod common;

use common::*;
use model_core::backend::{BackendKind, select_device};
use model_core::hub::resolve_model;
use model_core::loader::ModelFolder;
use model_core::model::BertModel;
use model_core::tokenizer::{Batch, Encoded, Truncation};
use model_core::{BertConfig, BertTokenizer};

const TOL: f32 = 1e-4;
const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

struct MiniLm {
    config: BertConfig,
    tokenizer: BertTokenizer,
    files: ModelFolder,
}

fn minilm() -> Option<MiniLm> {
    if !use_shared_hf_cache() {
        return None;
    }
    let dir = resolve_model(MODEL_ID).expect("MiniLM resolves offline from HF_HOME");
    let files = ModelFolder::in_dir(&dir).unwrap();
    Some(MiniLm {
        config: files.config().unwrap(),
        tokenizer: files.tokenizer().unwrap(),
        files,
    })
}

#[test]
fn token_ids_match_transformers() {
    let Some(m) = minilm() else { return };
    let golden = fixture("minilm_golden.json");
    for input in golden["inputs"].as_array().unwrap() {
        let text = input["text"].as_str().unwrap();
        let enc = m.tokenizer.encode(text, 512, Truncation::Head).unwrap();
        assert_eq!(
            enc.ids,
            ids(&input["input_ids"]),
            "input `{}`",
            input["name"]
        );
        assert_eq!(
            enc.content_tokens,
            input["num_content_tokens"].as_u64().unwrap() as usize
        );
    }
    for (len, case) in golden["head_tail_ids"].as_object().unwrap() {
        let Ok(max_len) = len.parse::<usize>() else {
            continue;
        };
        let long = golden["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "long")
            .unwrap();
        let enc = m
            .tokenizer
            .encode(
                long["text"].as_str().unwrap(),
                max_len,
                Truncation::HeadTail,
            )
            .unwrap();
        assert_eq!(enc.ids, ids(&case["ids"]), "head+tail at {max_len}");
        assert!(enc.truncated);
    }
}

/// Run every golden input alone and the first four as one padded batch; return the
/// worst `[CLS]`/pooler difference.
fn check_backend(kind: BackendKind) -> Option<f32> {
    let m = minilm()?;
    let selected = select_device(kind).unwrap();
    let device = selected.device;
    let mut ckpt = m.files.checkpoint().unwrap();
    let model = BertModel::load(&m.config, &mut ckpt, &device).unwrap();
    let golden = fixture("minilm_golden.json");
    let mut worst = 0.0f32;
    let run = |rows: &[&Encoded]| {
        let batch = Batch::collate(rows, m.tokenizer.pad_id());
        let out = model.forward(&batch.to_input(&device));
        let [b, _, h] = out.last_hidden_state.dims();
        let cls: Vec<f32> = out
            .last_hidden_state
            .narrow(1, 0, 1)
            .reshape([b, h])
            .into_data()
            .try_to_vec()
            .unwrap();
        let pooled: Vec<f32> = out.pooler_output.into_data().try_to_vec().unwrap();
        // The classifier's path (last layer for `[CLS]` only) gives the same pooler output.
        let fast: Vec<f32> = model
            .pooled(&batch.to_input(&device))
            .into_data()
            .try_to_vec()
            .unwrap();
        let d_fast = max_abs_diff(&fast, &pooled);
        assert!(d_fast < 1e-5, "{kind}: pooled() vs forward(): {d_fast}");
        (cls, pooled, h)
    };
    for input in golden["inputs"].as_array().unwrap() {
        let enc = m
            .tokenizer
            .encode(input["text"].as_str().unwrap(), 512, Truncation::Head)
            .unwrap();
        let (cls, pooled, _) = run(&[&enc]);
        let d_cls = max_abs_diff(&cls, &floats(&input["cls_hidden"]));
        let d_pool = max_abs_diff(&pooled, &floats(&input["pooler"]));
        eprintln!(
            "{kind} {:>16}: cls {d_cls:.2e} pooler {d_pool:.2e}",
            input["name"].as_str().unwrap()
        );
        assert!(
            d_cls < TOL && d_pool < TOL,
            "{kind}: input {} differs from transformers: cls {d_cls}, pooler {d_pool}",
            input["name"]
        );
        worst = worst.max(d_cls).max(d_pool);
    }
    let rows: Vec<Encoded> = golden["batch"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap();
            let text = golden["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["name"] == name)
                .unwrap()["text"]
                .as_str()
                .unwrap();
            m.tokenizer.encode(text, 512, Truncation::Head).unwrap()
        })
        .collect();
    let refs: Vec<&Encoded> = rows.iter().collect();
    let (cls, pooled, h) = run(&refs);
    for (i, r) in golden["batch"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let d_cls = max_abs_diff(&cls[i * h..(i + 1) * h], &floats(&r["cls_hidden"]));
        let d_pool = max_abs_diff(&pooled[i * h..(i + 1) * h], &floats(&r["pooler"]));
        assert!(
            d_cls < TOL && d_pool < TOL,
            "{kind}: padded batch row {i}: cls {d_cls}, pooler {d_pool}"
        );
        worst = worst.max(d_cls).max(d_pool);
    }
    eprintln!(
        "PARITY {kind}: max abs diff {worst:.3e} over {} inputs + padded batch",
        golden["inputs"].as_array().unwrap().len()
    );
    Some(worst)
}

#[test]
fn flex_matches_transformers() {
    check_backend(BackendKind::Flex);
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_matches_transformers() {
    check_backend(BackendKind::Ndarray);
}

/// Runs wherever wgpu finds an adapter (lavapipe in CI). `REQUIRE_WGPU=1` turns a
/// missing adapter into a failure so CI cannot skip it silently.
#[test]
fn wgpu_matches_transformers() {
    if model_core::backend::wgpu_for_tests("parity with transformers").is_some() {
        check_backend(BackendKind::Wgpu);
    }
}
