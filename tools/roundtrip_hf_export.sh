#!/usr/bin/env bash
# Export a run with `trainer export --format hf`, predict the tiny reviews with our model, and
# check that Hugging Face transformers loads the export unchanged and agrees within 1e-4.
#
#   tools/roundtrip_hf_export.sh RUN_DIR [TRAINER_BIN] [PYTHON]
#
# PYTHON defaults to the reference virtualenv (../shared/bench/pytorch_reference.py setup).
set -euo pipefail
run=${1:?usage: tools/roundtrip_hf_export.sh RUN_DIR [TRAINER_BIN] [PYTHON]}
trainer=${2:-target/debug/trainer}
python=${3:-$HOME/.cache/bert-bench/venv/bin/python}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
"$trainer" export --run "$run" --out "$out/hf" --format hf
max_len=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['max_len'])" "$out/hf/inference.json")
"$python" - "$trainer" "$out" "$max_len" "$root/model-core/tests/fixtures/tiny/reviews.jsonl" <<'PY'
import json, subprocess, sys
trainer, out, max_len, reviews = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
texts = [json.loads(l)["text"] for l in open(reviews)]
res = subprocess.run([trainer, "predict", "--model", f"{out}/hf", "--max-len", str(max_len), "--truncation", "head"] + texts,
                     capture_output=True, text=True, check=True)
probs = [[json.loads(l)["probabilities"][k] for k in ("negative", "positive")] for l in res.stdout.splitlines()]
json.dump({"texts": texts, "max_len": max_len, "probabilities": probs}, open(f"{out}/golden.json", "w"))
PY
"$python" "$root/tools/check_hf_export.py" "$out/hf" --golden "$out/golden.json"
