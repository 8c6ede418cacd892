"""Tag decoding: the BIO rules, and the tag prior's pruned search against an exhaustive one."""

import itertools

import numpy as np

from botyard.models.decoding import TagDecoder, bio_constraints, tag_prior

TAGS = ["O", "B-city", "I-city", "B-date", "I-date"]


def exhaustive(probs, start, move):
    best, best_path = -np.inf, None
    for path in itertools.product(range(probs.shape[1]), repeat=len(probs)):
        score = start[path[0]] + sum(move[a, b] for a, b in zip(path, path[1:])) + np.log(probs[range(len(path)), path]).sum()
        if score > best:
            best, best_path = score, list(path)
    return best_path


def test_the_bio_rules_hold_without_a_prior():
    decoder = TagDecoder(TAGS)
    probs = np.array([[0.1, 0.1, 0.6, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1, 0.6], [0.6, 0.1, 0.1, 0.1, 0.1]], np.float32)
    path = decoder.decode(probs)
    start, move = bio_constraints(TAGS)
    assert path == exhaustive(probs, start, move)
    assert TAGS[path[0]] != "I-city"
    assert decoder.decode(np.eye(5, dtype=np.float32)[[1, 2, 0]] * 0.9 + 0.02) == [1, 2, 0]


def test_the_prior_search_equals_an_exhaustive_one():
    rng = np.random.default_rng(7)
    sequences = [list(rng.integers(0, len(TAGS), rng.integers(1, 8))) for _ in range(50)]
    prior = tag_prior(sequences, len(TAGS), 0.7)
    decoder = TagDecoder(TAGS, prior)
    start, move = bio_constraints(TAGS)
    start, move = start + prior["decode/start"], move + prior["decode/move"]
    for _ in range(200):
        n = int(rng.integers(1, 6))
        probs = rng.dirichlet(np.full(len(TAGS), 0.3), n).astype(np.float32) + np.float32(1e-6)
        expected = exhaustive(probs, start, move)
        assert decoder.decode(probs) == expected
