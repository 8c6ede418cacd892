"""The in-scope score (issue 26): nearness to the bot's own examples in the sentence layer's space."""

import numpy as np

from botyard.models import scope


def clusters(seed=0, n=30, width=16):
    """Two intents whose sentence vectors sit around two directions, plus noise."""
    rng = np.random.default_rng(seed)
    centres = np.eye(width, dtype=np.float32)[:2] * 5
    hidden = np.concatenate([c + rng.normal(0, 0.5, (n, width)) for c in centres]).astype(np.float32)
    return np.maximum(hidden, 0), np.repeat([0, 1], n)


def test_an_utterance_near_its_intents_examples_scores_higher_than_one_far_from_all():
    hidden, labels = clusters()
    spec, arrays = scope.build(hidden, labels, 3, dim=8)  # label 2: out of scope, no examples
    s = scope.Scope(spec, arrays)
    assert spec["method"] == scope.METHOD and spec["dim"] == 8 and spec["threshold"] is None
    assert 2 <= spec["examples"] <= len(hidden) and arrays["scope/bank"].shape == (spec["examples"], 8)
    assert arrays["scope/reference"][2] == 1.0 and 0 < arrays["scope/reference"][0] <= 1.0
    near = hidden[0] + 0.1
    far = np.zeros(16, np.float32)
    far[7] = 5.0  # a direction no example has
    assert s.score(near, 0, 0.9) > s.score(far, 0, 0.9)
    # the confidence's share: WEIGHT per unit of confidence
    assert np.isclose(s.score(near, 0, 1.0) - s.score(near, 0, 0.0), scope.WEIGHT, atol=1e-6)


def test_the_batched_scores_equal_one_at_a_time():
    hidden, labels = clusters(1)
    s = scope.Scope(*scope.build(hidden, labels, 2, dim=8))
    queries = np.abs(np.random.default_rng(2).normal(size=(7, 16))).astype(np.float32)
    best = np.array([0, 1, 0, 1, 1, 0, 0])
    conf = np.linspace(0.2, 1.0, 7).astype(np.float32)
    batched = s.scores(queries, best, conf)
    alone = [s.score(q, int(b), float(c)) for q, b, c in zip(queries, best, conf)]
    assert np.allclose(batched, alone, atol=1e-5)


def test_condense_keeps_one_of_near_copies_and_every_label():
    z = scope.unit(np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 1, 0.02], [0, 0, 1]], np.float32))
    labels = np.array([0, 0, 0, 0, 1])
    kept = scope.condense(z, labels, 0.95)
    assert kept.tolist() == [0, 2, 4]


def test_nearest_others_leaves_each_row_itself_out():
    z = scope.unit(np.array([[1, 0], [1, 0], [0, 1]], np.float32))
    near = scope.nearest_others(z, chunk=2)
    assert np.allclose(near, [1.0, 1.0, 0.0])
    assert scope.nearest_others(z[:1]).tolist() == [-1.0]


def test_an_utterance_is_compared_with_the_examples_of_the_intent_it_gets():
    hidden, labels = clusters(3)
    spec, arrays = scope.build(hidden, labels, 2, dim=8)
    s = scope.Scope(spec, arrays)
    starts = arrays["scope/starts"].tolist()
    assert starts[0] == 0 and starts[-1] == spec["examples"] and starts[0] < starts[1] < starts[2]
    like_second = hidden[-1]
    assert s.score(like_second, 1, 0.5) > s.score(like_second, 0, 0.5)  # unlike every example of intent 0
    # a snapshot of the first form (one bank for every intent, no starts) is still served
    old = scope.Scope(spec, {k: v for k, v in arrays.items() if k != "scope/starts"})
    assert old.starts is None and old.score(like_second, 0, 0.5) > s.score(like_second, 0, 0.5)  # any intent's nearest
