#!/usr/bin/env python3
"""Write the exact reviews ../shared/bench/pytorch_reference.py benchmarks with, as JSONL.

    python3 tools/bench_texts.py N SEED OUT.jsonl      # infer: N = batch * batches, SEED 7; train-step: SEED 11

The reference samples `random.Random(seed).sample(sorted(test keys), n)` from the archive; this
does the same, so `trainer bench --texts OUT.jsonl` measures the same reviews in the same order.
OUT holds dataset text: keep it outside the repository. Standard library only.
"""
import json, os, random, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SHARED_DIR", os.path.join(HERE, "..", "..", "shared"))


def main():
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    reviews = {}
    with tarfile.open(os.path.join(SHARED, "datasets", "aclImdb_v1-labeled.tar.gz"), "r:gz") as tf:
        for m in tf:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[1] == "test" and parts[2] in ("pos", "neg"):
                reviews["/".join(parts[1:])] = (tf.extractfile(m).read().decode("utf-8"), parts[2])
    keys = random.Random(seed).sample(sorted(reviews), n)
    with open(out, "w") as f:
        for k in keys:
            text, label = reviews[k]
            f.write(json.dumps({"text": text, "label": "positive" if label == "pos" else "negative"}) + "\n")
    print(out, n)


if __name__ == "__main__":
    main()
