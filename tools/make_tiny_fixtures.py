#!/usr/bin/env python3
"""Tiny, committable BERT checkpoints (random init, self-written vocabulary) and their golden outputs.

Nothing here comes from a downloaded model: the vocabulary, the training sentences and the weights
(seed 0, 12 AdamW steps) are all made by this script. Everything goes under
model-core/tests/fixtures/tiny/ (well under 1 MB in total):

    vocab.txt                 the vocabulary (5 BERT specials, ~160 lowercase review words, a few `##`
                              suffixes, punctuation)
    finetuned/                BertForSequenceClassification.save_pretrained(): config.json + model.safetensors
                              (keys `bert.*` + `classifier.*`) + tokenizer.json, tokenizer_config.json, vocab.txt
    finetuned-bin/            the same weights as `pytorch_model.bin` (torch.save of the state dict, keys `bert.*`
                              + `classifier.*`) + config.json + tokenizer files; no model.safetensors
    legacy/                   the same weights as model.safetensors in the old Google/TF-port naming: no `bert.`
                              prefix, `LayerNorm.gamma`/`LayerNorm.beta`, plus an unused `cls.predictions.bias`
                              (zeros, [vocab]) and an int64 `embeddings.position_ids` [1, 64] buffer;
                              config.json + vocab.txt + tokenizer_config.json (do_lower_case) only, no tokenizer.json
                              (tests the vocab.txt fallback)
    backbone/                 BertModel.save_pretrained() of the same encoder + pooler (no `bert.` prefix, no
                              classifier); its config has no id2label/label2id (a plain pre-trained backbone), so a
                              loader has to initialise a fresh 2-label head + tokenizer files
    reviews.jsonl             20 self-written reviews, {"text", "label": "positive"|"negative"}, 10 each (CLI tests)
    golden.json               texts (3 positive, 3 negative, "", one >64-token text), max_len 64; for `finetuned`:
                              input_ids, logits, probabilities ([p_neg, p_pos]) per text run alone, and
                              batch_probabilities (all 8 in one padded batch); for `backbone`: cls_hidden
                              (last_hidden_state[0, 0]) and pooler (pooler_output[0]) per text run alone;
                              also `reviews` (finetuned's predictions/probabilities for reviews.jsonl) and sha256s

Model: BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
intermediate_size=64, max_position_embeddings=64, id2label={0: negative, 1: positive}); torch.manual_seed(0);
12 AdamW steps (lr 5e-3, full batch of 12 self-written sentences, train mode/dropout 0.1 on); then eval mode.
Evaluation: float32, eager attention, truncation=True, max_length=64, [CLS] ... [SEP].

How to run (from the repository root; needs no network, takes a few seconds):
    ~/.cache/bert-bench/venv/bin/python tools/make_tiny_fixtures.py [--out DIR]
    (DIR default model-core/tests/fixtures/tiny; it is deleted and rewritten.)
Runs with torch.use_deterministic_algorithms(True) and 1 thread: rerunning gives byte-identical files on the
same machine (the script prints sha256 sums to compare).

Made with (see tools/requirements.txt): Python 3.11, torch==2.15.0 (CPU), transformers==5.24.0,
tokenizers==0.23.3, safetensors==0.8.0. In transformers 5 `BertTokenizer` is the fast (tokenizers-backed) class
(`BertTokenizerFast` is an alias); it takes `vocab=` (a dict or path) and silently ignores `vocab_file=`, so the
vocabulary is passed as a dict. save_pretrained() always writes safetensors, so pytorch_model.bin is written with
torch.save.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "model-core", "tests", "fixtures", "tiny")
MAX_LEN = 64
SEED = 0
# 5 steps at lr 1e-2 barely move a random BERT (loss 0.693 -> 0.673, 8/12 train sentences right); 10+ steps at
# 1e-2 saturate (p ~ 0.99 for everything). 12 steps at 5e-3 get 12/12 and leave probabilities in ~0.18-0.82,
# so the goldens test real numbers rather than a saturated softmax.
STEPS = 12
LR = 5e-3
SIZE_LIMIT = 1_000_000

ID2LABEL = {0: "negative", 1: "positive"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Self-chosen lowercase words common in movie reviews (order is arbitrary but fixed).
WORDS = """
the a an and or but of to in on at for with it this that its is was are were be been
i you he she they we my me his her their our not no never very so too really just
movie film films movies story plot acting actor actors actress cast script scene scenes ending
director music score character characters dialogue performance performances time minutes hour
good great bad terrible awful boring loved love hated hate best worst fun funny dull wonderful
brilliant beautiful amazing excellent fantastic perfect poor weak stupid slow mess waste
enjoy enjoyed liked like recommend recommended avoid again watch watched see saw
sad happy moving smart clever silly long short beautifully well badly
all every one two ten much more most some nothing everything
from by as if than then also even still only
have had has do did does made make felt feel thought think
what who how why when
lovely strong charming predictable pointless wooden gripping touching year would happens seen
""".split()
SUFFIXES = ["##s", "##ed", "##ing", "##ly", "##er", "##y"]
PUNCT = [".", ",", "!", "?", "'", "-"]

# Training sentences (label 1 = positive, 0 = negative); every word is in the vocabulary.
TRAIN = [
    ("a great movie with wonderful acting .", 1),
    ("i loved this film , the story was brilliant !", 1),
    ("the best film of the year , funny and moving .", 1),
    ("beautiful music and a gripping plot .", 1),
    ("excellent cast , i really enjoyed it .", 1),
    ("a fantastic , charming and clever movie !", 1),
    ("a terrible movie with awful acting .", 0),
    ("i hated this film , the story was boring .", 0),
    ("the worst film of the year , dull and slow .", 0),
    ("bad music and a predictable plot .", 0),
    ("weak cast , what a waste of time .", 0),
    ("a stupid , pointless and silly mess !", 0),
]

POS_TEXTS = [
    "A wonderful movie! The acting was great and I loved it.",
    "I loved the story and the music, a brilliant film with smart endings.",  # ending ##s
    "Funny, clever and beautifully made. Highly recommended!",  # "highly" -> UNK
]
NEG_TEXTS = [
    "Sadly this was the worst film I have ever seen, two long hours.",  # sad ##ly, hour ##s, "ever" -> UNK
    "Boring plot, bad acting and awful dialogue.",
    "A dull, slow and pointless mess. Avoid it!",
]
LONG_TEXT = " ".join(["the movie was good and the plot was bad ."] * 12)  # 12 * 10 words = 120 tokens
TEST_TEXTS = POS_TEXTS + NEG_TEXTS + ["", LONG_TEXT]

REVIEWS = [
    ("Great film, I loved every minute of it.", "positive"),
    ("The cast was excellent and the story was moving.", "positive"),
    ("A funny and charming movie. I would watch it again!", "positive"),
    ("Beautiful music, smart dialogue, a wonderful ending.", "positive"),
    ("One of the best movies I have seen, really gripping.", "positive"),
    ("The actors were fantastic and the script was clever.", "positive"),
    ("I enjoyed it so much, a perfect film.", "positive"),
    ("Touching and lovely. I recommend it to all.", "positive"),
    ("A brilliant director and an amazing performance.", "positive"),
    ("Good fun, happy ending, strong acting.", "positive"),
    ("A boring movie, I hated every minute of it.", "negative"),
    ("The cast was weak and the story was slow.", "negative"),
    ("Not funny at all. What a waste of two hours.", "negative"),
    ("Awful music, stupid dialogue, a predictable ending.", "negative"),
    ("One of the worst movies I have seen, really dull.", "negative"),
    ("The actors were wooden and the script was terrible.", "negative"),
    ("I did not enjoy it, a poor film.", "negative"),
    ("Pointless and silly. Avoid it.", "negative"),
    ("A bad director and a weak performance.", "negative"),
    ("Too long, too slow, nothing happens.", "negative"),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_vocab():
    vocab = SPECIALS + WORDS + SUFFIXES + PUNCT
    assert len(vocab) == len(set(vocab)), [w for w in vocab if vocab.count(w) > 1]
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return vocab


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def to_legacy_key(k):
    if k.startswith("bert."):
        k = k[len("bert."):]
    if k.endswith("LayerNorm.weight"):
        k = k[: -len("weight")] + "gamma"
    elif k.endswith("LayerNorm.bias"):
        k = k[: -len("bias")] + "beta"
    return k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (deleted and rewritten)")
    args = ap.parse_args()

    import safetensors
    import tokenizers
    import torch
    import transformers
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)

    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    dirs = {name: os.path.join(out, name) for name in ("finetuned", "finetuned-bin", "legacy", "backbone")}
    for d in dirs.values():
        os.makedirs(d)

    # --- Vocabulary and tokenizer.
    vocab = build_vocab()
    vocab_path = os.path.join(out, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(vocab) + "\n")
    # transformers 5: BertTokenizer(Fast) takes `vocab` (dict or path); a `vocab_file=` kwarg is silently ignored
    # (it would give a 5-token vocabulary), so pass the dict explicitly.
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=MAX_LEN)
    assert tok.pad_token_id == 0 and tok.unk_token_id == 1 and tok.cls_token_id == 2 and tok.sep_token_id == 3
    assert tok.mask_token_id == 4 and len(tok) == len(vocab)
    for text, _ in TRAIN:
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids, (text, tok.convert_ids_to_tokens(ids))

    # --- Model: random init, STEPS AdamW steps on the 12 training sentences.
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    config._attn_implementation = "eager"
    model = BertForSequenceClassification(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    enc = tok([t for t, _ in TRAIN], truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
    labels = torch.tensor([y for _, y in TRAIN])
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        o = model(**enc, labels=labels)
        o.loss.backward()
        opt.step()
        losses.append(float(o.loss.item()))
    model.eval()
    with torch.no_grad():
        train_pred = model(**enc).logits.argmax(-1)
    train_acc = float((train_pred == labels).float().mean())
    assert train_acc >= 0.9, (train_acc, losses)

    # The backend tokenizer keeps the truncation/padding of the last call; save it clean.
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()

    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    # 2. finetuned/: save_pretrained (safetensors) + tokenizer.
    model.save_pretrained(dirs["finetuned"])
    tok.save_pretrained(dirs["finetuned"])
    shutil.copy(vocab_path, os.path.join(dirs["finetuned"], "vocab.txt"))

    # 3. finetuned-bin/: pytorch_model.bin + config + tokenizer.
    model.config.save_pretrained(dirs["finetuned-bin"])
    torch.save(state, os.path.join(dirs["finetuned-bin"], "pytorch_model.bin"))
    tok.save_pretrained(dirs["finetuned-bin"])
    shutil.copy(vocab_path, os.path.join(dirs["finetuned-bin"], "vocab.txt"))

    # 4. legacy/: old naming, extra tensors, vocab.txt only.
    legacy = {to_legacy_key(k): v for k, v in state.items()}
    assert len(legacy) == len(state)
    legacy["cls.predictions.bias"] = torch.zeros(len(vocab), dtype=torch.float32)
    legacy["embeddings.position_ids"] = torch.arange(MAX_LEN, dtype=torch.int64).unsqueeze(0)
    save_file(legacy, os.path.join(dirs["legacy"], "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(dirs["legacy"])
    shutil.copy(vocab_path, os.path.join(dirs["legacy"], "vocab.txt"))
    write_json(os.path.join(dirs["legacy"], "tokenizer_config.json"), {
        "do_lower_case": True,
        "model_max_length": MAX_LEN,
        "tokenizer_class": "BertTokenizer",
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]",
    })

    # 5. backbone/: bare BertModel (encoder + pooler), config without the label maps.
    bb_config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN,
    )
    bb_config._attn_implementation = "eager"
    backbone = BertModel(bb_config)
    missing = backbone.load_state_dict(model.bert.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    backbone.eval()
    backbone.save_pretrained(dirs["backbone"])
    tok.save_pretrained(dirs["backbone"])
    shutil.copy(vocab_path, os.path.join(dirs["backbone"], "vocab.txt"))

    # 7. reviews.jsonl
    with open(os.path.join(out, "reviews.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for text, label in REVIEWS:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    assert sum(1 for _, l in REVIEWS if l == "positive") == 10 and len(REVIEWS) == 20

    # --- Checks on what was written.
    def st_keys(path):
        with safe_open(path, framework="pt") as f:
            return list(f.keys())

    keys = {
        "finetuned": st_keys(os.path.join(dirs["finetuned"], "model.safetensors")),
        "finetuned-bin": list(torch.load(os.path.join(dirs["finetuned-bin"], "pytorch_model.bin"),
                                         map_location="cpu", weights_only=True).keys()),
        "legacy": st_keys(os.path.join(dirs["legacy"], "model.safetensors")),
        "backbone": st_keys(os.path.join(dirs["backbone"], "model.safetensors")),
    }
    assert sorted(keys["finetuned"]) == sorted(keys["finetuned-bin"])
    assert all(k.startswith("bert.") or k.startswith("classifier.") for k in keys["finetuned"])
    assert "classifier.weight" in keys["finetuned"]
    assert not any(k.startswith("bert.") or k.startswith("classifier.") for k in keys["backbone"])
    assert any("LayerNorm.gamma" in k for k in keys["legacy"])
    assert not any(k.endswith("LayerNorm.weight") for k in keys["legacy"])
    assert not os.path.exists(os.path.join(dirs["finetuned-bin"], "model.safetensors"))
    assert not os.path.exists(os.path.join(dirs["legacy"], "tokenizer.json"))
    for name in ("finetuned", "finetuned-bin", "backbone"):
        with open(os.path.join(dirs[name], "tokenizer.json")) as f:
            tj = json.load(f)
        assert tj.get("truncation") is None and tj.get("padding") is None, name
        with open(os.path.join(dirs[name], "tokenizer_config.json")) as f:
            assert json.load(f).get("do_lower_case", True) is True, name

    # --- Golden outputs from the reloaded checkpoints (what a consumer sees).
    def load_tok(d):
        return transformers.AutoTokenizer.from_pretrained(d)

    ft = BertForSequenceClassification.from_pretrained(dirs["finetuned"], dtype=torch.float32,
                                                       attn_implementation="eager").eval()
    ft_bin = BertForSequenceClassification.from_pretrained(dirs["finetuned-bin"], dtype=torch.float32,
                                                           attn_implementation="eager").eval()
    bb = BertModel.from_pretrained(dirs["backbone"], dtype=torch.float32, attn_implementation="eager").eval()
    tok_ft = load_tok(dirs["finetuned"])
    tok_legacy = load_tok(dirs["legacy"])  # built from vocab.txt
    tok_bb = load_tok(dirs["backbone"])

    rows = []
    with torch.no_grad():
        for text in TEST_TEXTS:
            e = tok_ft(text, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            ids = e["input_ids"][0].tolist()
            assert tok_legacy(text, truncation=True, max_length=MAX_LEN)["input_ids"] == ids, text
            assert tok_bb(text, truncation=True, max_length=MAX_LEN)["input_ids"] == ids, text
            assert tok(text, truncation=True, max_length=MAX_LEN)["input_ids"] == ids, text
            logits = ft(**e).logits[0]
            assert torch.equal(logits, ft_bin(**e).logits[0])
            assert torch.allclose(logits, model(**e).logits[0], atol=1e-6)
            bo = bb(**e)
            cls_live = model.bert(**e).last_hidden_state[0, 0]
            assert torch.allclose(bo.last_hidden_state[0, 0], cls_live, atol=1e-6)
            rows.append({
                "input_ids": ids,
                "logits": [float(x) for x in logits.tolist()],
                "probabilities": [float(x) for x in torch.softmax(logits, dim=-1).tolist()],
                "cls_hidden": [float(x) for x in bo.last_hidden_state[0, 0].tolist()],
                "pooler": [float(x) for x in bo.pooler_output[0].tolist()],
            })
        eb = tok_ft(TEST_TEXTS, truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
        batch_probs = torch.softmax(ft(**eb).logits, dim=-1)
        er = tok_ft([t for t, _ in REVIEWS], truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
        review_probs = torch.softmax(ft(**er).logits, dim=-1)
    review_pred = [ID2LABEL[int(i)] for i in review_probs.argmax(-1)]
    review_acc = sum(p == l for p, (_, l) in zip(review_pred, REVIEWS)) / len(REVIEWS)
    single = torch.tensor([r["probabilities"] for r in rows])
    max_diff = float((batch_probs - single).abs().max())
    assert max_diff <= 1e-5, max_diff
    assert len(rows[-1]["input_ids"]) == MAX_LEN and rows[-2]["input_ids"] == [2, 3]
    pred = [ID2LABEL[int(torch.tensor(r["logits"]).argmax())] for r in rows[:6]]
    expected = ["positive"] * 3 + ["negative"] * 3
    n_right = sum(p == e for p, e in zip(pred, expected))

    golden = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "python": sys.version.split()[0],
        },
        "notes": [
            "Random-init BERT (hidden 32, 2 layers, 4 heads, intermediate 64, max positions 64) with a "
            f"self-written vocabulary of {len(vocab)} tokens; seed {SEED}, {STEPS} AdamW steps (lr {LR}, full "
            "batch of 12 self-written sentences, dropout on, 1 thread, deterministic).",
            "Evaluation: eval mode, float32, eager attention, each text alone (batch of 1, no padding), "
            f"truncation=True, max_length={MAX_LEN}; probabilities = softmax(logits), ordered "
            "[p_negative, p_positive]. Same numbers for finetuned/, finetuned-bin/ and legacy/ (same weights).",
            "cls_hidden = BertModel(backbone/).last_hidden_state[0, 0], pooler = pooler_output[0]; the backbone "
            "is the same encoder as finetuned/ (bert.*), so cls_hidden is also finetuned's [CLS] hidden state.",
            "batch_probabilities: all texts in one batch, padding=True (to the longest, 64), truncation=True, "
            f"max_length={MAX_LEN}; max |batch - single| = {max_diff:.3g}.",
            "Texts 0-2 are positive, 3-5 negative, 6 is empty, 7 is one sentence repeated 12 times (120 "
            "tokens before truncation). Some words (e.g. 'highly', 'ever') are not in the vocabulary ([UNK]); 'endings', 'sadly', 'hours' split into word + ##suffix.",
            "Regenerate with: ~/.cache/bert-bench/venv/bin/python tools/make_tiny_fixtures.py",
        ],
        "id2label": {str(k): v for k, v in ID2LABEL.items()},
        "label2id": LABEL2ID,
        "vocab_size": len(vocab),
        "max_len": MAX_LEN,
        "train_losses": losses,
        "train_accuracy": train_acc,
        "texts": TEST_TEXTS,
        "expected_labels": expected + [None, None],
        "input_ids": [r["input_ids"] for r in rows],
        "logits": [r["logits"] for r in rows],
        "probabilities": [r["probabilities"] for r in rows],
        "batch_probabilities": [[float(x) for x in row] for row in batch_probs.tolist()],
        "cls_hidden": [r["cls_hidden"] for r in rows],
        "pooler": [r["pooler"] for r in rows],
        "reviews": {
            "note": "reviews.jsonl scored by finetuned/ (one padded batch, truncation, max_length 64)",
            "predicted": review_pred,
            "probabilities": [[float(x) for x in row] for row in review_probs.tolist()],
            "accuracy": review_acc,
        },
        "checkpoint_sha256": {
            "finetuned/model.safetensors": sha256(os.path.join(dirs["finetuned"], "model.safetensors")),
            "finetuned-bin/pytorch_model.bin": sha256(os.path.join(dirs["finetuned-bin"], "pytorch_model.bin")),
            "legacy/model.safetensors": sha256(os.path.join(dirs["legacy"], "model.safetensors")),
            "backbone/model.safetensors": sha256(os.path.join(dirs["backbone"], "model.safetensors")),
        },
        "keys_first5": {name: ks[:5] for name, ks in keys.items()},
    }
    write_json(os.path.join(out, "golden.json"), golden)

    # --- Report.
    total = 0
    print("files (bytes):")
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            n = os.path.getsize(p)
            total += n
            print(f"  {n:>8}  {os.path.relpath(p, out)}")
    print(f"  {total:>8}  TOTAL")
    assert total < SIZE_LIMIT, total
    for name, ks in keys.items():
        print(f"{name}: {len(ks)} tensors, first 5 (file order): {ks[:5]}")
    print("vocab size:", len(vocab), " train losses:", [round(x, 4) for x in losses], " train acc:", train_acc)
    print(f"test predictions right: {n_right}/6 {pred}")
    print(f"reviews.jsonl accuracy: {review_acc:.2f}")
    print("token counts:", [len(r["input_ids"]) for r in rows], " max |batch - single|:", max_diff)
    for text, r in zip(TEST_TEXTS, rows):
        print(f"  {r['probabilities'][0]:.6f} {r['probabilities'][1]:.6f}  {text[:60]!r}")
    for name, h in golden["checkpoint_sha256"].items():
        print("sha256", h, name)
    print("sha256", sha256(os.path.join(out, "golden.json")), "golden.json")


if __name__ == "__main__":
    main()
