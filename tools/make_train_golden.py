#!/usr/bin/env python3
"""Golden values for the training step: writes model-core/tests/fixtures/tiny/train_golden.json.

What it makes
    PyTorch's fine-tuning recipe, the one `model_core::training` implements, run for a few steps on the tiny
    fine-tuned checkpoint (model-core/tests/fixtures/tiny/finetuned/, made by make_tiny_fixtures.py) with
    dropout off, so that the native trainer and the browser (flex-wasm, WebGPU) can be held to it:
      - AdamW (betas 0.9/0.999, eps 1e-8, weight decay WEIGHT_DECAY; none on biases and LayerNorm weights),
      - the learning rate of `Schedule::new(LR, WARMUP, TOTAL)`: linear warmup, then linear decay to zero,
      - clip_grad_norm_(CLIP) on the whole model (global L2 norm),
      - one batch per step, the same every step: the BATCH reviews of reviews.jsonl taken alternately
        (positive 0, negative 0, positive 1, ...), with the labels at batch positions FLIPPED swapped, so
        that the model has something to learn and the gradients are large enough for clipping to act.
    Recorded: the batch (texts, labels, input_ids with max_length 64, [CLS] ... [SEP]); per step the mean
    cross-entropy before the update, the global gradient norm before clipping and the learning rate; after
    the last step the eval-mode probabilities ([p_negative, p_positive]) of every text of the batch, run
    alone, and the classifier's weight and bias.

How to run (from the repository root; needs no network, takes a few seconds):
    python3 tools/make_train_golden.py [--out FILE]
Deterministic (1 thread, torch.use_deterministic_algorithms): a rerun writes the same file.

Made with (see tools/requirements.txt): Python 3.11, torch==2.15.0 (CPU), transformers==5.24.0,
tokenizers==0.23.3.
"""
import argparse
import json
import os

import torch
import transformers
from transformers import BertForSequenceClassification, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TINY = os.path.join(ROOT, "model-core", "tests", "fixtures", "tiny")
DEFAULT_OUT = os.path.join(TINY, "train_golden.json")

MAX_LEN = 64
BATCH = 8
STEPS = 3
LR = 5e-3
WARMUP = 0.25
TOTAL = 4
CLIP = 1.0
WEIGHT_DECAY = 0.01
# Batch positions whose label is swapped: the tiny model gets these right, so learning them back
# the other way is a change every step has to make.
FLIPPED = [1, 2]


def learning_rate(step):
    """`model_core::training::learning_rate` for Schedule::new(LR, WARMUP, TOTAL)."""
    warmup = round(WARMUP * TOTAL)
    if step < warmup:
        return LR * (step + 1) / warmup
    return LR * max(TOTAL - step, 0) / max(TOTAL - warmup, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    folder = os.path.join(TINY, "finetuned")
    model = BertForSequenceClassification.from_pretrained(
        folder, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager"
    )
    tok = BertTokenizerFast.from_pretrained(folder)
    label2id = model.config.label2id

    reviews = [json.loads(l) for l in open(os.path.join(TINY, "reviews.jsonl"))]
    assert len(reviews) == 20, "reviews.jsonl: 10 positive, then 10 negative"
    picked = [reviews[i // 2 if i % 2 == 0 else 10 + i // 2] for i in range(BATCH)]
    texts = [r["text"] for r in picked]
    labels = [label2id[r["label"]] for r in picked]
    for i in FLIPPED:
        labels[i] = 1 - labels[i]
    enc = tok(texts, truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
    input_ids = [tok(t, truncation=True, max_length=MAX_LEN)["input_ids"] for t in texts]

    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=(0.9, 0.999), eps=1e-8,
    )
    target = torch.tensor(labels)
    steps = []
    model.train()
    for step in range(STEPS):
        lr = learning_rate(step)
        for g in optim.param_groups:
            g["lr"] = lr
        optim.zero_grad()
        logits = model(**enc).logits
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optim.step()
        steps.append({"loss": loss.item(), "grad_norm": norm.item(), "lr": lr})
        print(f"step {step}: loss {loss.item():.6f}, grad norm {norm.item():.6f}, lr {lr}")

    model.eval()
    probabilities = []
    with torch.no_grad():
        for t in texts:
            one = tok(t, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            probabilities.append(torch.softmax(model(**one).logits[0], -1).tolist())
    out = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "notes": [
            "Made by tools/make_train_golden.py from finetuned/ with dropout 0: "
            f"{STEPS} steps of AdamW (eps 1e-8, weight decay {WEIGHT_DECAY}, none on biases and LayerNorm), "
            f"Schedule::new({LR}, {WARMUP}, {TOTAL}), global-norm clipping {CLIP}, all {BATCH} texts as one batch "
            f"every step, labels of batch positions {FLIPPED} flipped.",
            "probabilities: eval mode after the last step, each text alone, [p_negative, p_positive].",
        ],
        "max_len": MAX_LEN,
        "lr": LR, "warmup": WARMUP, "total": TOTAL, "clip": CLIP, "weight_decay": WEIGHT_DECAY,
        "texts": texts,
        "labels": labels,
        "input_ids": input_ids,
        "steps": steps,
        "probabilities": probabilities,
        "classifier_weight": model.classifier.weight.detach().flatten().tolist(),
        "classifier_bias": model.classifier.bias.detach().tolist(),
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
