#!/usr/bin/env bash
# The GPU issue's table on a machine with an NVIDIA GPU, in one run of a few minutes:
# MiniLM (the release model, as f32) fine-tuning samples/s at max length 256, batch 16
# and 64, and inference reviews/s at batch 64, ours (`trainer bench`, wgpu on Vulkan,
# and CUDA when the binary has it) against PyTorch + transformers (tools/gpu_bench.py:
# fp32, bf16 autocast for training, fp16 for inference) on the same GPU, same reviews.
#
# Prepare on a build machine (the GPU machine needs no Rust), into gpu-kit/ (git-ignored):
#   cargo build --release -p trainer [--features cuda]   # CUDARC_CUDA_VERSION=12080 without nvcc
#   mkdir -p gpu-kit && cp "$CARGO_TARGET_DIR/release/trainer" gpu-kit/ && strip gpu-kit/trainer
#   python3 tools/bench_texts.py 1500 7 gpu-kit/texts.jsonl        # SHARED_DIR: the dataset (batch 64 x 22 steps)
#   cp /usr/lib/x86_64-linux-gnu/libvulkan.so.1 gpu-kit/           # wgpu's Vulkan loader
# Then, on the GPU machine, from the repository root:
#   OUT=/some/dir tools/gpu_bench.sh        # JSON lines in $OUT/gpu-bench.jsonl, a table on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${KIT:-gpu-kit}
OUT=${OUT:-$KIT/out}
TRAINER=${TRAINER:-$KIT/trainer}
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-20}
mkdir -p "$OUT"
for f in "$TRAINER" "$KIT/texts.jsonl"; do
  [ -e "$f" ] || { echo "missing $f: see the top of $0" >&2; exit 2; }
done

# wgpu finds the NVIDIA driver through the Vulkan loader and the driver's ICD file.
export LD_LIBRARY_PATH="$PWD/$KIT${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json >/dev/null 2>&1; then
  glx=$(ldconfig -p | awk '/libGLX_nvidia.so.0/{print $NF; exit}')
  if [ -n "$glx" ]; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$OUT/nvidia_icd.json"
    export VK_ICD_FILENAMES="$OUT/nvidia_icd.json"
  fi
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true

# The release model as an f32 Hugging Face folder, for PyTorch (ours loads static/model).
[ -e "$OUT/hf/config.json" ] || "$TRAINER" export --run static/model --out "$OUT/hf" --format hf >/dev/null

log="$OUT/gpu-bench.jsonl"
: >"$log"
ours() { # backend, bench args...
  local backend=$1
  shift
  if "$TRAINER" bench --backend "$backend" --model static/model --texts "$KIT/texts.jsonl" --max-len 256 "$@" >"$OUT/last.json" 2>"$OUT/last.err"; then
    jq -c --arg side "ours $backend" '. + {side: $side}' "$OUT/last.json" 2>/dev/null >>"$log" ||
      sed "s/^{/{\"side\":\"ours $backend\",/" "$OUT/last.json" >>"$log"
  else
    echo "{\"side\":\"ours $backend\",\"args\":\"$*\",\"error\":$(tail -c 400 "$OUT/last.err" | "$PYTHON" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$log"
  fi
}
torch() {
  "$PYTHON" tools/gpu_bench.py --model "$OUT/hf" --texts "$KIT/texts.jsonl" --max-len 256 "$@" >>"$log" ||
    echo "{\"side\":\"pytorch\",\"args\":\"$*\",\"error\":\"failed\"}" >>"$log"
}

backends=(wgpu)
"$TRAINER" bench --help | grep -q cuda && "$TRAINER" bench --backend cuda --what tokenize --texts "$KIT/texts.jsonl" --passes 1 >/dev/null 2>&1 && backends+=(cuda)
for batch in 16 64; do
  for b in "${backends[@]}"; do ours "$b" --what train-step --batch "$batch" --steps "$STEPS"; done
  torch train --batch "$batch" --precision fp32 --steps "$STEPS"
  torch train --batch "$batch" --precision bf16 --steps "$STEPS"
done
for b in "${backends[@]}"; do ours "$b" --what infer --batch 64 --batches 8 --passes 5; done
torch infer --batch 64 --precision fp32
torch infer --batch 64 --precision fp16

# The table: medians, and ours over PyTorch fp32 for each shape.
"$PYTHON" - "$log" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    prec = r.get("env", {}).get("precision", "fp32") if r.get("side") == "pytorch" else "fp32"
    return (r.get("what"), r.get("batch"), r.get("side"), prec)
print(f"{'what':24} {'batch':>5}  {'side':14} {'precision':9} {'median':>10}")
for r in rows:
    if "error" in r:
        print(f"{'':24} {'':5}  {r.get('side',''):14} error: {r['error'][:120]}")
        continue
    what, batch, side, prec = key(r)
    print(f"{what:24} {batch:>5}  {side:14} {prec:9} {r['median']:>10.1f}")
EOF
