#!/usr/bin/env bash
# Streaming `trainer predict --data` on IMDb's 50,000 reviews TIMES over (default 5:
# 250,000), written to a temporary file that is deleted afterwards, between two runs of
# `trainer bench --what infer` at the same settings: peak RSS and throughput of each, as
# JSON lines on stdout (the figures in docs/PERFORMANCE.md).
#
#   IMDB_ARCHIVE=aclImdb_v1.tar.gz tools/stream_bench.sh [MAX_LEN] [TIMES]
#
# TRAINER (default target/release/trainer) and MODEL (default static/model) override the
# binary and the model folder. Needs python3 and GNU time.
set -euo pipefail
archive=${IMDB_ARCHIVE:?set IMDB_ARCHIVE to the IMDb archive, aclImdb_v1.tar.gz}
max_len=${1:-256}
times=${2:-5}
trainer=${TRAINER:-target/release/trainer}
model=${MODEL:-static/model}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$archive" "$times" >"$tmp/reviews.jsonl" <<'EOF'
import json, sys, tarfile
archive, times = sys.argv[1], int(sys.argv[2])
reviews = []
with tarfile.open(archive, "r:gz") as tf:
    for m in tf:
        parts = m.name.split("/")
        if m.isfile() and len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in ("pos", "neg"):
            reviews.append(("/".join(parts[1:]), tf.extractfile(m).read().decode("utf-8")))
for k in range(times):
    for rel, text in reviews:
        print(json.dumps({"id": f"{rel}#{k}", "text": text}))
EOF
n=$(wc -l <"$tmp/reviews.jsonl")
settings=(--max-len "$max_len" --truncation head --backend flex)

bench() {
  /usr/bin/time -f '%M' -o "$tmp/rss" "$trainer" bench --what infer --model "$model" \
    --data "$archive" "${settings[@]}" --batch 32 --batches 4 --passes 5 >"$tmp/bench.json"
  python3 -c "import json,sys; b=json.load(open('$tmp/bench.json')); print(json.dumps({'what':'bench_infer','max_len':$max_len,'reviews_per_s':b['median'],'peak_rss_mb':int(open('$tmp/rss').read())/1024,'env':b['env']}))"
}

bench
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$tmp/rss" "$trainer" predict --model "$model" "${settings[@]}" \
  --batch-size 32 --data "$tmp/reviews.jsonl" --out "$tmp/out.jsonl" 2>"$tmp/predict.log"
end=$(date +%s.%N)
rows=$(wc -l <"$tmp/out.jsonl")
python3 -c "print('{\"what\":\"predict_stream\",\"max_len\":$max_len,\"inputs\":$n,\"rows\":$rows,\"seconds\":%.1f,\"reviews_per_s\":%.2f,\"peak_rss_mb\":%.0f}' % ($end-$start, $rows/($end-$start), int(open('$tmp/rss').read())/1024))"
bench
