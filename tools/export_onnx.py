#!/usr/bin/env python3
"""Turn a `trainer export --format hf` folder into a Transformers.js model folder (dev-only).

    python3 tools/export_onnx.py HF_DIR OUT_DIR [--max-len 256]

writes OUT_DIR/{config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx,
onnx/model_quantized.onnx}: the layout Transformers.js loads with `env.localModelPath`.
`model.onnx` is made by Hugging Face `optimum` (ONNX exporter, opset 17, dynamic batch and
sequence axes); `model_quantized.onnx` is what Transformers.js calls `q8`: ONNX Runtime's dynamic
int8 quantization of that file. `model_max_length` is set to --max-len so Transformers.js reads as
many tokens as this project's page does (it would otherwise read up to 512).

It then checks the ONNX model against `transformers` on a few texts (max |dp| printed; the fp32
file must agree within 1e-4) so the browser benchmark compares the same model.

Needs torch, transformers < 4.58 with optimum 2.1 + optimum-onnx 0.1 (their supported range), onnx
and onnxruntime; `tools/requirements-onnx.txt` lists them. The benchmark (`cargo xtask bench-web`)
calls this with PYTHONPATH pointing at such an environment.
"""
import argparse, json, os, shutil, sys, tempfile

TEXTS = [
    "This film was an absolute delight from start to finish. The acting was superb.",
    "What a dreadful waste of two hours. The plot made no sense and the acting was wooden.",
    "It was fine, I guess. Some parts worked, others dragged on far too long.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--max-len", type=int, default=256)
    a = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    os.makedirs(os.path.join(a.out_dir, "onnx"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        main_export(a.hf_dir, output=tmp, task="text-classification", opset=17, device="cpu")
        shutil.move(os.path.join(tmp, "model.onnx"), os.path.join(a.out_dir, "onnx", "model.onnx"))
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            if os.path.exists(os.path.join(tmp, name)):
                shutil.copy(os.path.join(tmp, name), os.path.join(a.out_dir, name))
    cfg_path = os.path.join(a.out_dir, "tokenizer_config.json")
    cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
    cfg["model_max_length"] = a.max_len
    json.dump(cfg, open(cfg_path, "w"), indent=2)

    fp32 = os.path.join(a.out_dir, "onnx", "model.onnx")
    q8 = os.path.join(a.out_dir, "onnx", "model_quantized.onnx")
    quantize_dynamic(fp32, q8, weight_type=QuantType.QInt8)

    tok = AutoTokenizer.from_pretrained(a.hf_dir)
    model = AutoModelForSequenceClassification.from_pretrained(a.hf_dir).eval()
    enc = tok(TEXTS, padding=True, truncation=True, max_length=a.max_len, return_tensors="np")
    with torch.no_grad():
        ref = torch.softmax(model(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits, -1).numpy()
    worst = {}
    for name, path in (("fp32", fp32), ("q8", q8)):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
        logits = sess.run(None, feed)[0]
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        worst[name] = float(np.abs(p - ref).max())
    print(json.dumps({"out": a.out_dir, "max_abs_dp_vs_transformers": worst,
                      "bytes": {n: os.path.getsize(p) for n, p in (("fp32", fp32), ("q8", q8))}}))
    if worst["fp32"] > 1e-4:
        sys.exit(f"the fp32 ONNX model disagrees with transformers: max |dp| {worst['fp32']}")


if __name__ == "__main__":
    main()
