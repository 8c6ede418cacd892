"""A candidate tier for issue 3: MiniLM fine-tuned for intents and slots, alone and blended with the bag model.

    python bench/finetune.py                    # SNIPS, 5 epochs (about 25 minutes on 2 cores)
    python bench/finetune.py --data hwu64 --epochs 3
    python bench/finetune.py --limit 500 --epochs 1   # a quick look that it runs

Not a botyard model kind yet: this measures whether one is worth building. It trains, in
one run, botyard's bag model (``bench/accuracy.py``'s settings) and all-MiniLM-L6-v2 with
all six layers fine-tuned (the installed encoder's weights; input embeddings frozen) and two
linear heads: the intent on the mean of the last layer, a tag per word on its first piece
(AdamW 1e-4 with linear decay, heads Adam 1e-3, dropout 0.1, batch 32). Tags are decoded
with the bag model's BIO tag prior (``models/decoding.py``). The blend averages the two
models' probabilities, ``(1 - w) * bag + w * tuned``; ``w`` is the best of a grid on the
valid split (intent accuracy plus slot F1), and test is scored once with it. Train split
only for training; valid for choosing; test for the figures.

It also runs the fine-tuned model in numpy, in a process that never imports TensorFlow (the
encoder of ``models/encoder.py`` with the tuned layers swapped in, on the utterances' piece
ids), checks it against TensorFlow (max |Δp|) and times both at batch 1 (the first 200 test
utterances).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from accuracy import CONFIGS, load, span_f1  # noqa: E402

from botyard.models import encoder as encoder_module  # noqa: E402
from botyard.models.runtime import Predictor  # noqa: E402
from botyard.models.text import tag_spans  # noqa: E402
from botyard.training.dataset import make_dataset  # noqa: E402
from botyard.training.pipeline import fit  # noqa: E402

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
NUMPY_CODE = """
import json, sys, time
from pathlib import Path
import numpy as np
from botyard.models import encoder as encoder_module
tmp = Path(sys.argv[1])
encoder = encoder_module.available()
w = np.load(tmp / "tuned.npz")
encoder.layers = []
for i in range(encoder_module.LAYERS):
    a = [w[f"layer{i}/{j}"] for j in range(12)]
    encoder.layers.append((a[0], a[1], a[2], a[3], (a[4], a[5]), a[6], a[7], a[8], a[9], (a[10], a[11])))
wi, bi, wt, bt = (w[f"head/{j}"] for j in range(4))
def softmax(v):
    v = np.exp(v - v.max(-1, keepdims=True))
    return v / v.sum(-1, keepdims=True)
def forward(ids, firsts):
    x = encoder.hidden(np.array([ids]), np.ones((1, len(ids)), np.float32))[1][0]
    return softmax(x.mean(axis=0) @ wi + bi), softmax(x[firsts] @ wt + bt)
utts = json.loads((tmp / "utts.json").read_text())  # [piece ids, first piece of each word] each
for u in utts[:20]:
    forward(*u)
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    out = [forward(*u) for u in utts]
    best = min(best, (time.perf_counter() - started) / len(utts))
np.savez(tmp / "out.npz", **{f"intent{i}": a for i, (a, _) in enumerate(out)}, **{f"tags{i}": b for i, (_, b) in enumerate(out)})
assert "tensorflow" not in sys.modules
print(best)
"""


def scores(labels, tags, decode, examples, outputs) -> tuple[float, float | None]:
    """Intent accuracy and slot F1 (None without slots) of per-example (intent probs, tag probs)."""
    correct = tp = n_pred = n_gold = 0
    for e, (intent, tag_probs) in zip(examples, outputs):
        correct += labels[int(intent.argmax())] == e.intent
        if tag_probs is not None:
            gold = set(tag_spans(list(e.tags)))
            pred = set(tag_spans([tags[i] for i in decode(tag_probs)]))
            tp, n_pred, n_gold = tp + len(gold & pred), n_pred + len(pred), n_gold + len(gold)
    return correct / len(examples), span_f1(tp, n_pred, n_gold)


class Tuned:
    """MiniLM with trainable layers and two linear heads, in TensorFlow."""

    def __init__(self, encoder, labels: int, tags: int, seed: int) -> None:
        import tensorflow as tf

        self.tf, self.encoder = tf, encoder
        tf.random.set_seed(seed)
        self.word, self.position = tf.constant(encoder.word), tf.constant(encoder.position)
        self.type0, self.norm0 = tf.constant(encoder.type0), [tf.constant(a) for a in encoder.norm0]
        self.layers = []
        for qkv, qkv_b, out, out_b, n1, up, up_b, down, down_b, n2 in encoder.layers:
            arrays = (qkv, qkv_b, out, out_b, *n1, up, up_b, down, down_b, *n2)
            self.layers.append([tf.Variable(np.array(a, np.float32)) for a in arrays])
        init = tf.keras.initializers.GlorotUniform(seed=seed)
        self.heads = [tf.Variable(init((encoder.dim, labels))), tf.Variable(tf.zeros(labels)),
                      tf.Variable(init((encoder.dim, max(tags, 1)))), tf.Variable(tf.zeros(max(tags, 1)))]
        self.body = [v for layer in self.layers for v in layer]

    def _norm(self, x, gain, bias):
        tf = self.tf
        x = x - tf.reduce_mean(x, -1, keepdims=True)
        return x / tf.sqrt(tf.reduce_mean(x * x, -1, keepdims=True) + 1e-12) * gain + bias

    def __call__(self, ids, mask, first, training: bool):
        """Intent logits ``[batch, labels]`` and tag logits ``[batch, words, tags]``."""
        tf, dim = self.tf, self.encoder.dim
        heads, width = encoder_module.HEADS, dim // encoder_module.HEADS
        drop = (lambda t: tf.nn.dropout(t, 0.1)) if training else (lambda t: t)
        b, n = tf.shape(ids)[0], tf.shape(ids)[1]
        x = self._norm(tf.gather(self.word, ids) + self.position[:n] + self.type0, *self.norm0)
        masked = ((1.0 - mask) * -1e9)[:, None, None, :]
        for qkv, qkv_b, out, out_b, g1, b1, up, up_b, down, down_b, g2, b2 in self.layers:
            h = tf.transpose(tf.reshape(x @ qkv + qkv_b, (b, n, 3, heads, width)), (2, 0, 3, 1, 4))
            s = tf.nn.softmax(h[0] @ tf.transpose(h[1], (0, 1, 3, 2)) / math.sqrt(width) + masked, -1)
            context = tf.reshape(tf.transpose(s @ h[2], (0, 2, 1, 3)), (b, n, dim))
            x = self._norm(x + drop(context @ out + out_b), g1, b1)
            u = x @ up + up_b
            u = 0.5 * u * (1.0 + tf.math.erf(u / math.sqrt(2.0)))
            x = self._norm(x + drop(u @ down + down_b), g2, b2)
        pooled = tf.reduce_sum(x * mask[..., None], 1) / tf.reduce_sum(mask, 1, keepdims=True)
        wi, bi, wt, bt = self.heads
        return drop(pooled) @ wi + bi, tf.gather(drop(x), first, batch_dims=1) @ wt + bt


def batches(rows, size: int, rng: np.random.Generator | None):
    """Padded batches of (ids, first piece of each word, label, tags); shuffled and length-bucketed with ``rng``."""
    order = np.arange(len(rows))
    if rng is not None:
        rng.shuffle(order)
        chunks = [order[i : i + size * 50] for i in range(0, len(order), size * 50)]
        order = np.concatenate([c[np.argsort([len(rows[j][0]) for j in c], kind="stable")] for c in chunks])
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        rng.shuffle(groups)
    else:
        order = order[np.argsort([len(r[0]) for r in rows], kind="stable")]
        groups = [order[i : i + size] for i in range(0, len(order), size)]
    for idx in groups:
        n, w = max(len(rows[j][0]) for j in idx), max(max(len(rows[j][1]) for j in idx), 1)
        ids, mask = np.zeros((len(idx), n), np.int64), np.zeros((len(idx), n), np.float32)
        first, word_mask = np.zeros((len(idx), w), np.int64), np.zeros((len(idx), w), np.float32)
        tags, labels = np.zeros((len(idx), w), np.int64), np.zeros(len(idx), np.int64)
        for r, j in enumerate(idx):
            piece_ids, firsts, label, tag_ids = rows[j]
            ids[r, : len(piece_ids)], mask[r, : len(piece_ids)] = piece_ids, 1.0
            first[r, : len(firsts)], word_mask[r, : len(firsts)] = firsts, 1.0
            tags[r, : len(tag_ids)], labels[r] = tag_ids, label
        yield idx, ids, mask, first, word_mask, tags, labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="snips", choices=("snips", "hwu64"), help="a data set with a valid split")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1e-4, help="the encoder's peak learning rate")
    parser.add_argument("--limit", type=int, help="train on the first N training examples only (a quick look)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train, valid, test = load(args.data)
    train = train[: args.limit] if args.limit else train

    print(f"training the bag model on {len(train)} {args.data} examples ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    dataset = replace(make_dataset(train + valid + test), examples=tuple(train))
    result = fit(dataset, train, valid, replace(CONFIGS[args.data], seed=args.seed))
    bag_s = time.perf_counter() - started
    bag = Predictor(result.manifest, result.arrays)
    labels, tags = bag.labels, bag.tags
    has_tags = len(tags) > 1
    decode = bag.decode if has_tags else None
    bag_out = {name: [bag.forward(list(e.tokens)) for e in split] for name, split in (("valid", valid), ("test", test))}

    import tensorflow as tf

    encoder = encoder_module.available()
    if encoder is None:
        raise SystemExit("the sentence encoder is not installed: bash training/install-vectors.sh")
    label_ids, tag_ids = {name: i for i, name in enumerate(labels)}, {name: i for i, name in enumerate(tags)}

    def rows(split):
        out = []
        for e in split:
            ids, counts = encoder._pieces(e.tokens)
            firsts, at = [], 1
            for count in counts:  # a word past the encoder's pieces reads the last piece before [SEP]
                firsts.append(min(at, len(ids) - 2))
                at += count
            out.append((ids, firsts, label_ids[e.intent], [tag_ids.get(t, 0) for t in e.tags]))
        return out

    data = {"train": rows(train), "valid": rows(valid), "test": rows(test)}
    model = Tuned(encoder, len(labels), len(tags), args.seed)
    steps = args.epochs * math.ceil(len(train) / 32)
    decay = tf.keras.optimizers.schedules.PolynomialDecay
    body_opt = tf.keras.optimizers.AdamW(decay(args.rate, steps, 0.0), weight_decay=0.01)
    head_opt = tf.keras.optimizers.Adam(decay(1e-3, steps, 0.0))

    @tf.function(reduce_retracing=True)
    def step(ids, mask, first, word_mask, tag_gold, label_gold):
        with tf.GradientTape() as tape:
            intent, tag = model(ids, mask, first, True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(label_gold, intent))
            if has_tags:
                per_word = tf.nn.sparse_softmax_cross_entropy_with_logits(tag_gold, tag)
                loss += tf.reduce_sum(per_word * word_mask) / tf.reduce_sum(word_mask)
        grads = tape.gradient(loss, model.body + model.heads)
        body_opt.apply_gradients(zip(grads[: len(model.body)], model.body))
        head_opt.apply_gradients(zip(grads[len(model.body) :], model.heads))
        return loss

    @tf.function(reduce_retracing=True)
    def infer(ids, mask, first):
        intent, tag = model(ids, mask, first, False)
        return tf.nn.softmax(intent), tf.nn.softmax(tag)

    def outputs(name):
        out = [None] * len(data[name])
        for idx, ids, mask, first, *_ in batches(data[name], 64, None):
            intent, tag = (t.numpy() for t in infer(ids, mask, first))
            for r, j in enumerate(idx):
                out[j] = (intent[r], tag[r, : len(data[name][j][1])] if has_tags else None)
        return out

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total = n = 0
        for k, (_, *batch) in enumerate(batches(data["train"], 32, rng), 1):
            total, n = total + float(step(*batch)), n + 1
            if k % 50 == 0:
                print(f"  epoch {epoch}/{args.epochs} step {k} loss {total / n:.4f} {time.perf_counter() - started:.0f} s",
                      file=sys.stderr, flush=True)
        acc, f1 = scores(labels, tags, decode, valid, outputs("valid"))
        slot = f" slot F1 {100 * f1:.2f}" if f1 is not None else ""
        print(f"  epoch {epoch}/{args.epochs} loss {total / n:.4f} valid accuracy {100 * acc:.2f}{slot}",
              file=sys.stderr, flush=True)
    tuned_s = time.perf_counter() - started
    tuned_out = {"valid": outputs("valid"), "test": outputs("test")}

    def blend(name, w):
        return [((1 - w) * b[0] + w * t[0], None if b[1] is None else (1 - w) * b[1] + w * t[1])
                for b, t in zip(bag_out[name], tuned_out[name])]

    def merit(s):
        return s[0] + (s[1] or 0.0)

    valid_by_w = {w: scores(labels, tags, decode, valid, blend("valid", w)) for w in GRID}
    best = max(GRID, key=lambda w: (merit(valid_by_w[w]), -abs(w - 0.5)))

    # The fine-tuned model in numpy, in a process without TensorFlow (as a node would serve it).
    sample = test[:200]
    with tempfile.TemporaryDirectory() as tmp:
        weights = {f"layer{i}/{j}": v.numpy() for i, layer in enumerate(model.layers) for j, v in enumerate(layer)}
        weights.update({f"head/{j}": v.numpy() for j, v in enumerate(model.heads)})
        np.savez(Path(tmp) / "tuned.npz", **weights)
        (Path(tmp) / "utts.json").write_text(json.dumps([row[:2] for row in data["test"][: len(sample)]]))
        numpy_s = float(subprocess.run([sys.executable, "-c", NUMPY_CODE, tmp], capture_output=True, text=True,
                                       check=True).stdout.split()[-1])
        with np.load(Path(tmp) / "out.npz") as out:
            numpy_out = [(out[f"intent{i}"], out[f"tags{i}"]) for i in range(len(sample))]
    tf_s = time.perf_counter()
    for row in data["test"][: len(sample)]:
        _, ids, mask, first, *_ = next(batches([row], 1, None))
        infer(ids, mask, first)
    tf_s = (time.perf_counter() - tf_s) / len(sample)
    diff = max(
        max(float(np.abs(a[0] - b[0]).max()), float(np.abs(a[1] - b[1]).max()) if has_tags else 0.0)
        for a, b in zip(numpy_out, tuned_out["test"][: len(sample)])
    )

    def cell(s):
        return f"{100 * s[0]:.2f}" + (f" / {100 * s[1]:.2f}" if s[1] is not None else "")

    print()
    print(f"{args.data}: intent accuracy{' / slot F1' if has_tags else ''}, train split only; "
          f"bag model {bag_s:.0f} s, fine-tuning {tuned_s:.0f} s ({args.epochs} epochs)")
    print("| model | valid | test |")
    print("|---|---|---|")
    for title, w in (("bag model", 0.0), ("fine-tuned MiniLM", 1.0), (f"blend, w = {best} (chosen on valid)", best)):
        print(f"| {title} | {cell(valid_by_w[w])} | {cell(scores(labels, tags, decode, test, blend('test', w)))} |")
    print("valid by w: " + ", ".join(f"{w}: {cell(s)}" for w, s in valid_by_w.items()))
    print(f"fine-tuned model, batch 1: numpy {1e3 * numpy_s:.1f} ms, TensorFlow {1e3 * tf_s:.1f} ms per utterance; "
          f"max |Δp| numpy vs TensorFlow {diff:.1e} (first {len(sample)} test utterances)")


if __name__ == "__main__":
    main()
