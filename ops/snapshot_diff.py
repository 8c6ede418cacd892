"""What changed between two snapshots (``botyard snapshots diff``, the admin verb ``diff``):
metrics, data, definition, training settings, threshold and calibration."""

from __future__ import annotations

from typing import Any, Mapping


def manifest_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """What changed between two snapshots: metrics, data, definition, training settings."""
    ma, mb = a.get("metrics", {}), b.get("metrics", {})
    metrics = {
        k: {"a": ma.get(k), "b": mb.get(k), **({"delta": mb[k] - ma[k]} if _numbers(ma.get(k), mb.get(k)) else {})}
        for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)
    }
    ia, ib = intents_of(a.get("definition")), intents_of(b.get("definition"))
    changed = sorted(k for k in set(ia) & set(ib) if ia[k] != ib[k])
    ta, tb = a.get("training", {}), b.get("training", {})
    return {
        "same_definition": a.get("definition_hash") == b.get("definition_hash"),
        "same_data": a.get("data_hash") == b.get("data_hash"),
        "metrics": metrics,
        "intents": {"added": sorted(set(ib) - set(ia)), "removed": sorted(set(ia) - set(ib)), "changed": changed},
        "training": {k: {"a": ta.get(k), "b": tb.get(k)} for k in sorted(set(ta) | set(tb)) if ta.get(k) != tb.get(k)},
        "threshold": {"a": (a.get("model") or {}).get("threshold"), "b": (b.get("model") or {}).get("threshold")},
        "calibration": {"a": calibration_summary(a), "b": calibration_summary(b)},
        "created_at": {"a": a.get("created_at"), "b": b.get("created_at")},
        "parent": {"a": a.get("parent"), "b": b.get("parent")},
    }


def calibration_summary(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """How a snapshot's fallback rule was calibrated (``model.calibration``): the method, folds,
    held-out answers, whether the model was trained again on every example, and per rule (the
    in-scope ``score``'s, the ``confidence``'s) its threshold, the spread of the folds' own and
    the prior's weight. None for a snapshot from before issue 26."""
    model = manifest.get("model") or {}
    calibration = model.get("calibration")
    if not calibration:
        return None
    out = {k: calibration.get(k) for k in ("method", "folds", "held_out", "final_fit")}
    for rule in ("score", "confidence"):
        if calibration.get(rule):
            out[rule] = {k: calibration[rule].get(k) for k in ("threshold", "spread", "prior_weight")}
    return out


def intents_of(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    return {i["name"]: i for i in (definition or {}).get("intents") or []}


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


__all__ = ["calibration_summary", "intents_of", "manifest_diff"]
