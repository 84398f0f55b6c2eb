#!/usr/bin/env python3
"""Golden values for the MiniLM encoder: writes model-core/tests/fixtures/minilm_golden.json.

What it makes
    For the real checkpoint `sentence-transformers/all-MiniLM-L6-v2` (loaded with
    `transformers.BertModel.from_pretrained(path)`, eval mode, float32, eager attention) and its fast
    tokenizer (`AutoTokenizer.from_pretrained(path)`), one record per input text with:
      text, tokens, input_ids, token_type_ids, attention_mask  (truncation=True, max_length=512,
                                                                 default [CLS] ... [SEP])
      num_content_tokens  (tokens without truncation and without special tokens)
      cls_hidden          last_hidden_state[0, 0, :]   (384 floats)
      pooler              pooler_output[0]              (384 floats)
      last_hidden_sum     sum of the whole last_hidden_state of that input (float64 accumulation)
    Every input is run alone (batch of 1, no padding).
    `batch`: the first 4 inputs run together as one padded batch (padding=True); per-row cls_hidden and
    pooler, asserted here to equal the single-input values within 1e-5.
    `head_tail_ids`: head+tail truncation of the long input for max_length 512 and 256 (formula in `notes`).
    Top level: model_id, config (config.json), versions, notes.

How to run (from the repository root; needs no network):
    HF_HOME=/work/shared/hf HF_HUB_OFFLINE=1 ~/.cache/bert-bench/venv/bin/python tools/make_golden.py
    (HF_HOME / HF_HUB_OFFLINE default to those values when unset; `--out FILE` and `--model-dir DIR`
    override the output path and the checkpoint folder.)

Made with (see tools/requirements.txt): Python 3.11, torch==2.15.0 (CPU), transformers==5.24.0,
tokenizers==0.23.3, safetensors==0.8.0.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_OUT = os.path.join(ROOT, "model-core", "tests", "fixtures", "minilm_golden.json")

os.environ.setdefault("HF_HOME", "/work/shared/hf")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A sentence written for this fixture (not from any dataset); repeated to go far past 512 tokens.
LONG_SENTENCE = (
    "The pacing drags a little in the middle, but the final act and the haunting score make it "
    "well worth the ticket. "
)
LONG_REPEATS = 120

INPUTS = [
    ("empty", ""),
    ("short_positive", "An absolute delight from start to finish; the cast is wonderful and I loved every minute."),
    ("short_negative", "Dull, predictable and far too long. I regret wasting two hours on this mess."),
    ("accents", "Café crème, naïve façade — déjà vu!"),
    ("emoji_casing", "ThIs MoVie 🎬🍿 was SOOO goood!!! 😍"),
    ("cjk", "这部电影非常好看。この映画は最高でした！"),
    ("long", (LONG_SENTENCE * LONG_REPEATS).strip()),
    ("whitespace_punct", "  \t...!!!???  ,,, ;;; --- ***\n\n ( ) [ ] { } \"' `~ @#$%^&*_+=|\\/<>  \u00a0 \r\n"),
    ("br_tags", "Great acting.<br /><br />The plot, however, was thin.<br />Still: 7/10."),
]
BATCH_N = 4
HEAD_TAIL_BASE_HEAD = 128
HEAD_TAIL_BASE_BUDGET = 510


def versions():
    import tokenizers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": sys.version.split()[0],
    }


def head_tail(content_ids, max_len, cls_id, sep_id):
    """[CLS] + head + tail + [SEP], budget = max_len - 2, head = round(128 * budget / 510)."""
    budget = max_len - 2
    head = round(HEAD_TAIL_BASE_HEAD * budget / HEAD_TAIL_BASE_BUDGET)
    tail = budget - head
    if len(content_ids) <= budget:
        kept = list(content_ids)
    else:
        kept = list(content_ids[:head]) + list(content_ids[len(content_ids) - tail:])
    return {"max_len": max_len, "head": head, "tail": tail, "ids": [cls_id] + kept + [sep_id]}


def floats(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def clean(text):
    """The project's one cleaning rule (model-core/src/input/clean.rs), which its tokenizer
    applies to every text: each `<br>`/`<br />` tag becomes as many spaces as it had bytes."""
    import re

    return re.sub(r"<br[ /]*>", lambda m: " " * len(m.group()), text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--model-dir", default=None, help="checkpoint folder (default: HF cache snapshot)")
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(0)
    path = args.model_dir
    if path is None:
        from huggingface_hub import snapshot_download

        path = snapshot_download(MODEL_ID)

    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast, f"expected a fast tokenizer, got {type(tok).__name__}"
    model = BertModel.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)

    records = []
    with torch.no_grad():
        for name, text in INPUTS:
            enc = tok(clean(text), truncation=True, max_length=512, return_tensors="pt")
            out = model(**enc)
            hs = out.last_hidden_state
            content = tok(clean(text), add_special_tokens=False, truncation=False)["input_ids"]
            records.append({
                "name": name,
                "text": text,
                "tokens": tok.convert_ids_to_tokens(enc["input_ids"][0].tolist()),
                "input_ids": enc["input_ids"][0].tolist(),
                "token_type_ids": enc["token_type_ids"][0].tolist(),
                "attention_mask": enc["attention_mask"][0].tolist(),
                "num_content_tokens": len(content),
                "cls_hidden": floats(hs[0, 0, :]),
                "pooler": floats(out.pooler_output[0]),
                "last_hidden_sum": float(hs[0].double().sum().item()),
            })

        # Padded batch of the first BATCH_N inputs.
        texts = [t for _, t in INPUTS[:BATCH_N]]
        enc = tok([clean(t) for t in texts], truncation=True, max_length=512, padding=True, return_tensors="pt")
        out = model(**enc)
        batch_rows = []
        max_diff = 0.0
        for i in range(BATCH_N):
            cls = out.last_hidden_state[i, 0, :]
            pool = out.pooler_output[i]
            ref = records[i]
            d = max(
                (cls - torch.tensor(ref["cls_hidden"])).abs().max().item(),
                (pool - torch.tensor(ref["pooler"])).abs().max().item(),
            )
            max_diff = max(max_diff, d)
            assert d < 1e-5, f"batch row {i} ({ref['name']}) differs from single run by {d}"
            batch_rows.append({
                "name": ref["name"],
                "input_ids": enc["input_ids"][i].tolist(),
                "attention_mask": enc["attention_mask"][i].tolist(),
                "cls_hidden": floats(cls),
                "pooler": floats(pool),
            })

    long_idx = next(i for i, (n, _) in enumerate(INPUTS) if n == "long")
    long_text = INPUTS[long_idx][1]
    content = tok(long_text, add_special_tokens=False, truncation=False)["input_ids"]
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    ht = {
        "input_index": long_idx,
        "num_content_tokens": len(content),
        "512": head_tail(content, 512, cls_id, sep_id),
        "256": head_tail(content, 256, cls_id, sep_id),
    }
    assert ht["512"]["head"] == 128 and ht["512"]["tail"] == 382 and len(ht["512"]["ids"]) == 512
    assert ht["256"]["head"] == 64 and ht["256"]["tail"] == 190 and len(ht["256"]["ids"]) == 256
    # Plain truncation keeps the head: must agree with the tokenizer's own truncation.
    assert records[long_idx]["input_ids"] == [cls_id] + content[:510] + [sep_id]

    fixture = {
        "model_id": MODEL_ID,
        "versions": versions(),
        "notes": [
            "Texts are tokenized after the project's cleaning rule (clean() here, model-core/src/input/clean.rs there): each <br /> tag becomes spaces; `text` is the raw input.",
            "Each entry of `inputs` is run alone: batch of 1, no padding, truncation=True, max_length=512, "
            "default special tokens [CLS] ... [SEP]; token_type_ids all 0.",
            "BertModel.from_pretrained(path, dtype=float32, attn_implementation='eager'), eval mode, CPU, no grad.",
            "cls_hidden = last_hidden_state[0, 0, :]; pooler = pooler_output[0] = tanh(W x_cls + b); "
            "last_hidden_sum = sum over all positions and features of last_hidden_state[0] (float64 accumulation).",
            "Floats are float32 values written as Python float repr (exact).",
            f"batch: the first {BATCH_N} inputs as one padded batch (padding=True, pad id 0, attention_mask 0 "
            f"on padding); every row's cls_hidden and pooler equal the single-input ones within 1e-5 "
            f"(max abs diff measured: {max_diff:.3g}).",
            "head_tail_ids: content = tokenizer(text, add_special_tokens=False, truncation=False).input_ids; "
            "budget = max_len - 2; head = round(128 * budget / 510); tail = budget - head; "
            "ids = [CLS] + content[:head] + content[-tail:] + [SEP] when len(content) > budget, else "
            "[CLS] + content + [SEP]. max_len 512 -> head 128, tail 382; max_len 256 -> head 64 "
            "(round(63.75)), tail 190.",
            f"The long input is one self-written sentence repeated {LONG_REPEATS} times (joined by a space, "
            "stripped); not dataset text.",
        ],
        "config": config,
        "inputs": records,
        "batch": {"size": BATCH_N, "max_abs_diff_vs_single": max_diff, "rows": batch_rows},
        "head_tail_ids": ht,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    summary = {
        "out": args.out,
        "bytes": os.path.getsize(args.out),
        "inputs": [(r["name"], len(r["input_ids"]), r["num_content_tokens"]) for r in records],
        "long_content_tokens": len(content),
        "batch_max_abs_diff": max_diff,
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
