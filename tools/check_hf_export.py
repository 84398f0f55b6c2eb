#!/usr/bin/env python3
"""Check that a folder loads in Hugging Face transformers and reproduces golden probabilities.

What it does
    Loads DIR with `BertForSequenceClassification.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)`
    (eval mode, float32), runs every text of the golden file alone (batch of 1, no padding,
    truncation=True, max_length=golden["max_len"], default [CLS] ... [SEP]), takes softmax of the logits and
    compares with golden["probabilities"]. Prints one JSON object (max_abs_diff, per-text diffs, ok, ...) on
    stdout; exits 1 when max abs diff >= --tol (default 1e-4) or the shapes do not match. Used to check the
    project's Rust exporter (a folder written by it must load and agree with the Rust model's own outputs).

    Golden file format: {"texts": [...], "max_len": N, "probabilities": [[p_0, p_1, ...], ...]}
    (model-core/tests/fixtures/finetuned_golden.json has this shape; other keys are ignored).

How to run (from the repository root; needs no network):
    ~/.cache/bert-bench/venv/bin/python tools/check_hf_export.py DIR --golden FILE [--tol 1e-4]
    e.g. ~/.cache/bert-bench/venv/bin/python tools/check_hf_export.py /tmp/bert-finetuned-fixture \\
             --golden model-core/tests/fixtures/finetuned_golden.json

Made with (see tools/requirements.txt): Python 3.11, torch==2.15.0 (CPU), transformers==5.24.0,
tokenizers==0.23.3, safetensors==0.8.0.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="folder with config.json, model.safetensors or pytorch_model.bin, tokenizer files")
    ap.add_argument("--golden", required=True, help="JSON with texts, max_len, probabilities")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed abs difference (default 1e-4)")
    args = ap.parse_args()

    with open(args.golden, encoding="utf-8") as f:
        golden = json.load(f)
    texts, max_len, want = golden["texts"], int(golden["max_len"]), golden["probabilities"]

    import torch
    import transformers
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(args.dir)
    model = BertForSequenceClassification.from_pretrained(args.dir, dtype=torch.float32)
    model.eval()

    result = {
        "dir": os.path.abspath(args.dir),
        "golden": os.path.abspath(args.golden),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "num_labels": model.config.num_labels,
        "id2label": {str(k): v for k, v in model.config.id2label.items()},
        "n": len(texts),
        "max_len": max_len,
        "tol": args.tol,
    }
    errors = []
    if len(want) != len(texts):
        errors.append(f"{len(texts)} texts but {len(want)} probability rows")

    got, diffs = [], []
    with torch.no_grad():
        for i, text in enumerate(texts):
            enc = tok(text, truncation=True, max_length=max_len, return_tensors="pt")
            probs = torch.softmax(model(**enc).logits[0].float(), dim=-1).tolist()
            got.append(probs)
            if i >= len(want):
                continue
            if len(want[i]) != len(probs):
                errors.append(f"text {i}: {len(probs)} labels, golden has {len(want[i])}")
                diffs.append(float("inf"))
                continue
            diffs.append(max(abs(a - b) for a, b in zip(probs, want[i])))

    max_diff = max(diffs) if diffs else float("inf")
    ok = not errors and max_diff < args.tol
    result.update({
        "max_abs_diff": max_diff,
        "per_text_max_abs_diff": diffs,
        "probabilities": got,
        "errors": errors,
        "ok": ok,
    })
    print(json.dumps(result, ensure_ascii=False))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
