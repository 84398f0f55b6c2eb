#!/usr/bin/env python3
"""PyTorch + transformers on the GPU: the peer figures for the GPU issue's table.

Same model folder (an HF BertForSequenceClassification folder, e.g. what
`trainer export --format hf` writes), same reviews (a JSONL of {"text": ...}, e.g.
tools/bench_texts.py's), same shapes as `trainer bench` (dynamic padding of each
batch, truncation at --max-len, alternating labels, AdamW with the no-decay group).
Prints one JSON object per figure. Run by tools/gpu_bench.sh beside our own figures.

  python3 tools/gpu_bench.py --model DIR --texts T.jsonl train --batch 16 --precision bf16
  python3 tools/gpu_bench.py --model DIR --texts T.jsonl infer --batch 64 --precision fp16
"""
import argparse
import json
import statistics
import time


def texts(path, n):
    rows = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no reviews")
    # Repeat the sample when more are needed than it holds (the shapes are what matter).
    return [rows[i % len(rows)] for i in range(n)]


def batches(tok, torch, device, reviews, batch, max_len):
    out = []
    for i in range(0, len(reviews), batch):
        enc = tok(reviews[i:i + batch], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        out.append({k: v.to(device) for k, v in enc.items()})
    return out


def sync(torch):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def summary(rates):
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "n": len(rates)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("what", choices=["train", "infer"])
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps (after 3 warm-up steps)")
    ap.add_argument("--batches", type=int, default=8, help="batches per inference pass")
    ap.add_argument("--passes", type=int, default=5, help="timed inference passes (after one warm-up)")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(a.model)
    model = BertForSequenceClassification.from_pretrained(a.model, num_labels=2).to(device)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[a.precision]
    env = {
        "torch": torch.__version__, "transformers": transformers.__version__, "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "precision": a.precision,
    }

    if a.what == "infer":
        model.eval()
        if a.precision == "fp16":
            model.half()
        data = batches(tok, torch, device, texts(a.texts, a.batch * a.batches), a.batch, a.max_len)
        rates = []
        with torch.inference_mode():
            for p in range(a.passes + 1):
                sync(torch)
                t = time.perf_counter()
                for b in data:
                    model(**b).logits.float().softmax(-1).cpu()
                sync(torch)
                if p > 0:
                    rates.append(a.batch * a.batches / (time.perf_counter() - t))
        print(json.dumps({"what": "infer_reviews_per_s", "side": "pytorch", "max_len": a.max_len,
                          "batch": a.batch, **summary(rates), "env": env}))
        return

    model.train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=5e-5, betas=(0.9, 0.999), eps=1e-8)
    steps = a.steps + 3
    data = batches(tok, torch, device, texts(a.texts, a.batch * steps), a.batch, a.max_len)
    rates = []
    for s, b in enumerate(data):
        labels = (torch.arange(b["input_ids"].shape[0], device=device) % 2)
        sync(torch)
        t = time.perf_counter()
        with torch.autocast(device_type=device, dtype=amp, enabled=amp is not None):
            loss = model(**b, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        sync(torch)
        if s >= 3:
            rates.append(b["input_ids"].shape[0] / (time.perf_counter() - t))
    print(json.dumps({"what": "train_samples_per_s", "side": "pytorch", "max_len": a.max_len,
                      "batch": a.batch, **summary(rates), "env": env}))


if __name__ == "__main__":
    main()
