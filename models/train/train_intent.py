#!/usr/bin/env python3
"""Trains voxbridge's intent classifier and writes it as an ONNX model.

    python models/train/train_intent.py [--data fixtures/intents] [--out fixtures/models] [--check]

Input: every `*.tsv` directly in --data (one file per language, named by its
language code: en.tsv, zh.tsv; lines `intent<TAB>utterance`, `#` comments),
and the held-out files `heldout/<lang>.tsv`, which are only ever evaluated.

Output (in --out):
  intent.onnx          features[N,16384] -> L2 normalise -> MatMul -> Add -> Softmax
                       -> probabilities[N,C]; labels, featurizer version and the
                       held-out accuracies are in the model metadata
  intent.golden.jsonl  text -> sparse features -> probabilities, for the Rust
                       featurizer test (featurize.py is the reference)

The model is a multinomial logistic regression trained by full-batch gradient
descent with momentum from zero weights, single-threaded, weights rounded to
float16: the same data gives the same bytes on every run (--check verifies
that the committed files match a fresh run). Needs the pinned packages in
requirements.txt (scripts/install-models-deps.sh makes the venv).
"""

import os

# Single-threaded numpy: thread-count-dependent summation order would change bytes.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import featurize as fz  # noqa: E402

TRAINER_VERSION = "1"
EPOCHS = 400
LEARNING_RATE = 4.0
MOMENTUM = 0.9
L2 = 1e-5
GOLDEN_PER_INTENT = 2

ROOT = Path(__file__).resolve().parents[2]


def read_tsv(path):
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1].strip():
            raise SystemExit(f"{path}:{n}: expected `intent<TAB>utterance`")
        rows.append((parts[0], parts[1]))
    return rows


def load(data_dir):
    train, heldout = [], []
    for path in sorted(data_dir.glob("*.tsv")):
        lang = path.stem
        train += [(lang, lab, txt) for lab, txt in read_tsv(path)]
        hp = data_dir / "heldout" / path.name
        if hp.exists():
            heldout += [(lang, lab, txt) for lab, txt in read_tsv(hp)]
    if not train:
        raise SystemExit(f"no training files in {data_dir}")
    return train, heldout


def sparse_rows(texts):
    """CSR-like arrays of L2-normalised features."""
    rows, cols, vals = [], [], []
    for i, t in enumerate(texts):
        feats = fz.featurize(t)
        norm = np.sqrt(sum(float(v) * v for _, v in feats)) or 1.0
        for b, v in feats:
            rows.append(i)
            cols.append(b)
            vals.append(v / norm)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(vals, dtype=np.float64)


def logits(rows, cols, vals, n, W, b):
    out = np.zeros((n, W.shape[1]), dtype=np.float64)
    np.add.at(out, rows, vals[:, None] * W[cols])
    return out + b


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(texts, y, n_classes):
    n = len(texts)
    rows, cols, vals = sparse_rows(texts)
    W = np.zeros((fz.BUCKETS, n_classes), dtype=np.float64)
    b = np.zeros(n_classes, dtype=np.float64)
    vW = np.zeros_like(W)
    vb = np.zeros_like(b)
    Y = np.zeros((n, n_classes), dtype=np.float64)
    Y[np.arange(n), y] = 1.0
    for _ in range(EPOCHS):
        P = softmax(logits(rows, cols, vals, n, W, b))
        G = (P - Y) / n
        gW = np.zeros_like(W)
        np.add.at(gW, cols, vals[:, None] * G[rows])
        gW += L2 * W
        gb = G.sum(axis=0)
        vW = MOMENTUM * vW - LEARNING_RATE * gW
        vb = MOMENTUM * vb - LEARNING_RATE * gb
        W += vW
        b += vb
    return W.astype(np.float16), b.astype(np.float16)


def build_model(W16, b16, labels, meta):
    n_classes = len(labels)
    nodes = [
        helper.make_node("ReduceSumSquare", ["features"], ["sumsq"], axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["sumsq"], ["norm"]),
        helper.make_node("Max", ["norm", "eps"], ["denom"]),
        helper.make_node("Div", ["features", "denom"], ["unit"]),
        helper.make_node("Cast", ["weights_f16"], ["weights"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["bias_f16"], ["bias"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["unit", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    inits = [
        numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "eps"),
        numpy_helper.from_array(W16, "weights_f16"),
        numpy_helper.from_array(b16, "bias_f16"),
    ]
    graph = helper.make_graph(
        nodes,
        "voxbridge_intent",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", fz.BUCKETS])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_classes])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="voxbridge-train-intent",
        producer_version=TRAINER_VERSION,
        doc_string="voxbridge intent classifier: hashed features -> linear -> softmax",
    )
    model.ir_version = 8
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key = k
        p.value = v
    onnx.checker.check_model(model)
    return model


def run_onnx(model_bytes, texts):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    X = np.zeros((len(texts), fz.BUCKETS), dtype=np.float32)
    for i, t in enumerate(texts):
        for b, v in fz.featurize(t):
            X[i, b] = v
    return sess.run(["probabilities"], {"features": X})[0]


def accuracy_by_lang(rows, pred, labels):
    out = {}
    for lang in sorted({r[0] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r[0] == lang]
        ok = sum(1 for i in idx if labels[pred[i]] == rows[i][1])
        out[lang] = (ok, len(idx))
    return out


def golden_texts(heldout, labels):
    texts = []
    for lang in sorted({r[0] for r in heldout}):
        for lab in labels:
            texts += [t for l, la, t in heldout if l == lang and la == lab][:GOLDEN_PER_INTENT]
    # Edge cases for the featurizer: empty, punctuation only, case, full-width,
    # apostrophes, accents, mixed scripts, digits, kana, long words.
    texts += [
        "",
        "?!... ,",
        "HELLO There",
        "Ｗｈｅｒｅ　ｉｓ　ｍｙ　ｏｒｄｅｒ？",
        "'don't' won’t",
        "Crème brûlée ÀÉÎ ß × ÷",
        "订单ABC-123还没到！",
        "我的订单号是 45678",
        "カタカナ ひらがな",
        "supercalifragilisticexpialidocious",
        "a",
        "丨",
        "\t tabs\tand\nnewlines ",
    ]
    return texts


def write_outputs(out_dir, data_dir):
    train_rows, heldout_rows = load(data_dir)
    labels = sorted({r[1] for r in train_rows})
    index = {l: i for i, l in enumerate(labels)}
    for lang, lab, _ in heldout_rows:
        if lab not in index:
            raise SystemExit(f"held-out intent {lab!r} ({lang}) not in the training data")
    y = np.array([index[r[1]] for r in train_rows], dtype=np.int64)
    W16, b16 = train([r[2] for r in train_rows], y, len(labels))

    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*.tsv")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())

    # Held-out accuracy with the model exactly as shipped (float16 weights, ONNX Runtime).
    meta = {
        "voxbridge.labels": json.dumps(labels, ensure_ascii=False),
        "voxbridge.featurizer": fz.VERSION,
        "voxbridge.buckets": str(fz.BUCKETS),
        "voxbridge.languages": ",".join(sorted({r[0] for r in train_rows})),
        "voxbridge.training_sha256": digest.hexdigest(),
        "voxbridge.trainer_version": TRAINER_VERSION,
    }
    model = build_model(W16, b16, labels, meta)
    probe = model.SerializeToString()
    report = {}
    if heldout_rows:
        probs = run_onnx(probe, [r[2] for r in heldout_rows])
        report = accuracy_by_lang(heldout_rows, probs.argmax(axis=1), labels)
        for lang, (ok, n) in report.items():
            model.metadata_props.add(key=f"voxbridge.heldout_accuracy.{lang}", value=f"{ok}/{n}")
    tp = run_onnx(probe, [r[2] for r in train_rows])
    train_acc = accuracy_by_lang(train_rows, tp.argmax(axis=1), labels)
    model_bytes = model.SerializeToString()

    texts = golden_texts(heldout_rows, labels)
    probs = run_onnx(model_bytes, texts)
    golden = []
    for t, p in zip(texts, probs):
        golden.append(
            json.dumps(
                {
                    "text": t,
                    "features": [[b, v] for b, v in fz.featurize(t)],
                    "probabilities": [float(f"{float(x):.6g}") for x in p],
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
        )
    header = json.dumps({"featurizer": fz.VERSION, "buckets": fz.BUCKETS, "labels": labels}, ensure_ascii=False)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "intent.onnx").write_bytes(model_bytes)
    (out_dir / "intent.golden.jsonl").write_text(header + "\n" + "\n".join(golden) + "\n", encoding="utf-8")

    print(f"labels ({len(labels)}): {' '.join(labels)}")
    print(f"training examples: {len(train_rows)}, held-out: {len(heldout_rows)}")
    for lang, (ok, n) in train_acc.items():
        print(f"train accuracy {lang}: {ok}/{n} = {ok / n:.3f}")
    for lang, (ok, n) in report.items():
        print(f"held-out accuracy {lang}: {ok}/{n} = {ok / n:.3f}")
    print(f"model: {out_dir / 'intent.onnx'} ({len(model_bytes)} bytes, sha256 {hashlib.sha256(model_bytes).hexdigest()})")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "fixtures" / "intents")
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures" / "models")
    ap.add_argument("--check", action="store_true", help="train into a temporary directory and compare with --out")
    args = ap.parse_args()
    if not args.check:
        write_outputs(args.out, args.data)
        return
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(Path(tmp), args.data)
        bad = [
            name
            for name in ("intent.onnx", "intent.golden.jsonl")
            if (Path(tmp) / name).read_bytes() != (args.out / name).read_bytes()
        ]
    if bad:
        raise SystemExit(f"not reproducible: {', '.join(bad)} differ from {args.out}")
    print("check: fresh training matches the committed files byte for byte")


if __name__ == "__main__":
    main()
