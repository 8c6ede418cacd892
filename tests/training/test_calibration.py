"""The fallback threshold chosen on held-out examples."""

from botyard.training.pipeline import calibrate


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
