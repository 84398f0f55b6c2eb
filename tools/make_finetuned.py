#!/usr/bin/env python3
"""A tiny fine-tuned BertForSequenceClassification checkpoint, and its golden probabilities.

What it makes
    DIR/                      save_pretrained(): config.json + model.safetensors (keys `bert.*`, `classifier.*`)
                              + tokenizer files
    DIR/pytorch_bin/          the same weights as a legacy `pytorch_model.bin` (torch.save of the state dict,
                              zip format) + config.json + tokenizer files
    model-core/tests/fixtures/finetuned_golden.json
                              {texts, max_len, input_ids, logits, probabilities ([p_neg, p_pos]), id2label,
                               label2id, checkpoint: {sha256 of both weight files, first state-dict keys}, ...}
    The checkpoint is BertForSequenceClassification.from_pretrained(all-MiniLM-L6-v2, num_labels=2,
    id2label={0: negative, 1: positive}), seed 0, trained for 3 AdamW steps (lr 5e-5, full batch of 8
    self-written reviews, 4 positive / 4 negative), then evaluated (eval mode, float32, eager attention,
    each text alone, truncation=True, max_length=256). DIR is not meant to be committed (~90 MB).

How to run (from the repository root; needs no network):
    ~/.cache/bert-bench/venv/bin/python tools/make_finetuned.py [DIR]       # DIR default /tmp/bert-finetuned-fixture
    Options: --golden FILE (default model-core/tests/fixtures/finetuned_golden.json), --model-dir DIR
    (base checkpoint; default the HF cache snapshot, with HF_HOME=/work/shared/hf HF_HUB_OFFLINE=1 as defaults).
    Training runs with torch.use_deterministic_algorithms(True) and 1 thread, so reruns give the same weights
    on the same machine; on another machine check `checkpoint.model_safetensors_sha256` (tolerances in the
    Rust test absorb the small float differences a rebuild elsewhere may bring).

Made with (see tools/requirements.txt): Python 3.11, torch==2.15.0 (CPU), transformers==5.24.0,
tokenizers==0.23.3, safetensors==0.8.0. transformers 5 no longer has `save_pretrained(safe_serialization=False)`,
so the .bin variant is written with torch.save.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DIR = "/tmp/bert-finetuned-fixture"
DEFAULT_GOLDEN = os.path.join(ROOT, "model-core", "tests", "fixtures", "finetuned_golden.json")
MAX_LEN = 256
SEED = 0
STEPS = 3
LR = 5e-5

os.environ.setdefault("HF_HOME", "/work/shared/hf")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ID2LABEL = {0: "negative", 1: "positive"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}

# Self-written training reviews (label 1 = positive, 0 = negative).
TRAIN = [
    ("A warm, funny and beautifully acted film. I smiled all the way home.", 1),
    ("Brilliant direction and a gripping story; one of the best movies this year.", 1),
    ("The performances are superb and the ending moved me to tears.", 1),
    ("Charming, clever and gorgeous to look at. Highly recommended!", 1),
    ("A boring, clumsy mess with wooden acting and a plot full of holes.", 0),
    ("I walked out after an hour. Tedious, loud and completely pointless.", 0),
    ("Terrible script, awful dialogue and the jokes never land.", 0),
    ("A lazy sequel that wastes its cast. Avoid it.", 0),
]

LONG_SENTENCE = "Every scene looks lovely, yet the story wanders and I kept checking the clock. "
TEST_TEXTS = [
    "",
    "What a wonderful, heartfelt movie. The acting was fantastic!",
    "This was the worst film I have ever seen, a total waste of time.",
    "Café crème and déjà vu: ThIs MoVie 🎬🍿 was SOOO goood!!! 😍",
    "Great acting.<br /><br />The plot, however, was thin.<br />Still: 7/10.",
    (LONG_SENTENCE * 40).strip(),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    ap.add_argument("--golden", default=DEFAULT_GOLDEN)
    ap.add_argument("--model-dir", default=None, help="base checkpoint folder (default: HF cache snapshot)")
    args = ap.parse_args()

    import safetensors
    import tokenizers
    import torch
    import transformers
    from safetensors import safe_open
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)

    base = args.model_dir
    if base is None:
        from huggingface_hub import snapshot_download

        base = snapshot_download(MODEL_ID)

    tok = AutoTokenizer.from_pretrained(base)
    model = BertForSequenceClassification.from_pretrained(
        base,
        num_labels=2,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
        dtype=torch.float32,
        attn_implementation="eager",
    )

    # --- 3 AdamW steps on the full batch of 8 (dropout on: train mode).
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    enc = tok([t for t, _ in TRAIN], truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
    labels = torch.tensor([y for _, y in TRAIN])
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        out = model(**enc, labels=labels)
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.item()))
    model.eval()

    # --- Save: safetensors (main dir) and legacy pytorch_model.bin (DIR/pytorch_bin).
    out_dir = os.path.abspath(args.dir)
    bin_dir = os.path.join(out_dir, "pytorch_bin")
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    # The backend (Rust) tokenizer keeps whatever truncation/padding the last call set (the hub file even ships
    # truncation 128 + fixed padding 128), and save_pretrained writes that into tokenizer.json. Save it clean.
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    os.makedirs(bin_dir)
    model.config.save_pretrained(bin_dir)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(bin_dir, "pytorch_model.bin"))
    tok.save_pretrained(bin_dir)

    st_path = os.path.join(out_dir, "model.safetensors")
    bin_path = os.path.join(bin_dir, "pytorch_model.bin")
    with safe_open(st_path, framework="pt") as f:
        st_keys = sorted(f.keys())
    bin_keys = sorted(torch.load(bin_path, map_location="cpu", weights_only=True).keys())
    assert st_keys == bin_keys, (set(st_keys) ^ set(bin_keys))
    assert any(k.startswith("bert.") for k in st_keys) and "classifier.weight" in st_keys
    with open(os.path.join(out_dir, "tokenizer.json")) as f:
        tj = json.load(f)
    assert tj.get("truncation") is None and tj.get("padding") is None, (tj.get("truncation"), tj.get("padding"))

    # --- Golden probabilities: reload from disk (what a consumer sees), each text alone.
    reloaded = BertForSequenceClassification.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager")
    reloaded_bin = BertForSequenceClassification.from_pretrained(bin_dir, dtype=torch.float32, attn_implementation="eager")
    reloaded.eval()
    reloaded_bin.eval()
    rows = []
    with torch.no_grad():
        for text in TEST_TEXTS:
            e = tok(text, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            logits = reloaded(**e).logits[0]
            logits_live = model(**e).logits[0]
            logits_bin = reloaded_bin(**e).logits[0]
            assert torch.allclose(logits, logits_live, atol=1e-6), (logits, logits_live)
            assert torch.equal(logits, logits_bin), (logits, logits_bin)
            rows.append({
                "input_ids": e["input_ids"][0].tolist(),
                "logits": [float(x) for x in logits.tolist()],
                "probabilities": [float(x) for x in torch.softmax(logits, dim=-1).tolist()],
            })

    golden = {
        "model_base": MODEL_ID,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "python": sys.version.split()[0],
        },
        "notes": [
            f"BertForSequenceClassification from {MODEL_ID}, num_labels=2, seed {SEED}, {STEPS} AdamW steps "
            f"(lr {LR}, full batch of 8 self-written reviews, train mode/dropout on, 1 thread, deterministic).",
            "Evaluation: eval mode, float32, eager attention, each text alone (batch of 1, no padding), "
            f"truncation=True, max_length={MAX_LEN}, default [CLS] ... [SEP]; probabilities = softmax(logits), "
            "ordered [p_negative, p_positive].",
            "Regenerate the checkpoint with: ~/.cache/bert-bench/venv/bin/python tools/make_finetuned.py DIR "
            f"(default {DEFAULT_DIR}); this also rewrites this file.",
            "The long text is one self-written sentence repeated 40 times (joined by a space, stripped).",
        ],
        "id2label": {str(k): v for k, v in ID2LABEL.items()},
        "label2id": LABEL2ID,
        "max_len": MAX_LEN,
        "train_losses": losses,
        "texts": TEST_TEXTS,
        "input_ids": [r["input_ids"] for r in rows],
        "logits": [r["logits"] for r in rows],
        "probabilities": [r["probabilities"] for r in rows],
        "checkpoint": {
            "default_dir": DEFAULT_DIR,
            "model_safetensors_sha256": sha256(st_path),
            "pytorch_model_bin_sha256": sha256(bin_path),
            "num_tensors": len(st_keys),
            "keys_first10": st_keys[:10],
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.golden)), exist_ok=True)
    with open(args.golden, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")

    print("checkpoint dir:", out_dir)
    print("pytorch_model.bin dir:", bin_dir)
    print("files:", sorted(os.listdir(out_dir)))
    print("state-dict keys (first 10 of %d, sorted):" % len(st_keys))
    for k in st_keys[:10]:
        print("  ", k)
    print("model.state_dict() keys (first 10, module order):")
    for k in list(state)[:10]:
        print("  ", k)
    print("classifier keys:", [k for k in st_keys if not k.startswith("bert.")])
    print(json.dumps({
        "golden": args.golden,
        "bytes": os.path.getsize(args.golden),
        "train_losses": losses,
        "probabilities": golden["probabilities"],
        "token_counts": [len(r["input_ids"]) for r in rows],
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
