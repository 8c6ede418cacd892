"""The fallback threshold chosen on held-out examples."""

from botyard.training.calibration import calibrate


def test_with_out_of_scope_examples_the_threshold_separates_them():
    # (correct, is_out_of_scope, predicted_out_of_scope, confidence)
    scored = [(True, False, False, c) for c in (0.95, 0.9, 0.85, 0.8, 0.7)]
    scored += [(False, True, False, c) for c in (0.3, 0.35, 0.4)]  # OOS guessed as an intent, unsure
    t = calibrate(scored, 0.95)
    assert 0.4 < t <= 0.7
    right = sum((ok and c >= t) if not oos else (p or c < t) for ok, oos, p, c in scored)
    assert right == len(scored)


def test_without_out_of_scope_examples_it_keeps_the_recall_target():
    confidences = [0.2 + 0.8 * i / 99 for i in range(100)]
    scored = [(True, False, False, c) for c in confidences]
    t = calibrate(scored, 0.95)
    kept = sum(c >= t for c in confidences)
    assert kept == 95


def test_bounds_and_no_data():
    assert calibrate([], 0.95) == 0.5
    assert calibrate([(True, False, False, 0.999)] * 10, 0.95) == 0.9
    assert calibrate([(True, False, False, 0.01)] * 10, 0.95) == 0.1


# -- the in-scope score's threshold, the prior, the folds (issue 26) ----------------------------

from botyard.models.definition import OUT_OF_SCOPE  # noqa: E402
from botyard.training.calibration import PRIOR_WEIGHT, Scored, calibrate_score, toward_prior  # noqa: E402
from botyard.training.dataset import Example, folds, make_dataset  # noqa: E402


def test_the_score_threshold_keeps_the_recall_target_of_correct_answers_only():
    scored = [Scored(True, False, False, 0.9, 1.0 + i / 100) for i in range(100)]
    scored += [Scored(False, False, False, 0.9, 0.1)] * 30  # wrong answers do not move it
    scored += [Scored(False, True, True, 0.9, 0.2)] * 30  # nor the bot's out-of-scope examples
    scored += [Scored(True, False, False, 0.9, 0.3, knows_a_word=False)] * 30  # nor answers that fall back anyway
    t = calibrate_score(scored, 0.95)
    assert sum(s.score >= t for s in scored[:100]) == 95
    assert calibrate_score([], 0.95) is None
    assert calibrate_score([Scored(True, False, False, 0.9, None)], 0.95) is None


def test_a_threshold_measured_on_few_answers_is_drawn_towards_the_prior():
    assert toward_prior(None, 0, 0.9) == (0.9, 1.0)
    few, w_few = toward_prior(0.5, 4, 0.9)
    many, w_many = toward_prior(0.5, 4000, 0.9)
    assert w_few == round(PRIOR_WEIGHT / (4 + PRIOR_WEIGHT), 4) and 0.8 < few < 0.9
    assert w_many < 0.01 and abs(many - 0.5) < 0.01


def test_folds_hold_every_example_of_an_intent_with_five_or_more_out_once():
    examples = [Example((f"a{i}",), "a", ("O",)) for i in range(12)]
    examples += [Example((f"b{i}",), "b", ("O",)) for i in range(4)]  # too few: never held out
    examples += [Example((f"o{i}",), OUT_OF_SCOPE, ("O",)) for i in range(6)]
    dataset = make_dataset(examples)
    pairs = folds(dataset, 5, seed=3)
    held = [e for _, val in pairs for e in val]
    assert len(pairs) == 5 and sorted(held, key=str) == sorted([e for e in examples if e.intent != "b"], key=str)
    sizes = [len(val) for _, val in pairs]
    assert max(sizes) - min(sizes) <= 1
    for train, val in pairs:
        assert not set(train) & set(val) and len(train) + len(val) == len(examples)
        assert {e.intent for e in train} == {"a", "b", OUT_OF_SCOPE}
    assert folds(dataset, 5, seed=3) == pairs  # the same seed, the same folds
    ((train, val),) = folds(dataset, 1, seed=3, share=0.25)  # one fold: a held-out share
    assert len(val) == 3 + 1 and len(train) == len(examples) - 4
