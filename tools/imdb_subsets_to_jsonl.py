#!/usr/bin/env python3
"""Write the same-budget IMDb subsets (../shared/bench/subsets.json) as JSONL for `trainer`.

    python3 tools/imdb_subsets_to_jsonl.py OUT_DIR

writes OUT_DIR/train_4000.jsonl (in the reference's training order) and OUT_DIR/test_2000.jsonl,
lines {"text": ..., "label": "positive"|"negative"}, read straight from the archive. The files
hold dataset text: write them outside the repository (e.g. /tmp), never commit them.
Standard library only.
"""
import json, os, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SHARED_DIR", os.path.join(HERE, "..", "..", "shared"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/imdb-subsets"
    os.makedirs(out, exist_ok=True)
    subsets = json.load(open(os.path.join(SHARED, "bench", "subsets.json")))
    wanted = {f for f, _ in subsets["train_4000_order"]} | {f for f, _ in subsets["test_2000"]}
    texts = {}
    with tarfile.open(os.path.join(SHARED, "datasets", "aclImdb_v1-labeled.tar.gz"), "r:gz") as tf:
        for m in tf:
            rel = "/".join(m.name.split("/")[1:])
            if m.isfile() and rel in wanted:
                texts[rel] = tf.extractfile(m).read().decode("utf-8")
    for name, key in (("train_4000.jsonl", "train_4000_order"), ("test_2000.jsonl", "test_2000")):
        with open(os.path.join(out, name), "w") as f:
            for rel, label in subsets[key]:
                f.write(json.dumps({"text": texts[rel], "label": "positive" if label == 1 else "negative"}) + "\n")
        print(os.path.join(out, name), len(subsets[key]))


if __name__ == "__main__":
    main()
