"""The replay gate: whether a candidate snapshot may take an alias, judged on a what-if report
over the bot's recent turns (:meth:`botyard.ops.replay.Replay.gate`), and its one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GateLimits:
    """The replay gate's settings (``BOTYARD_GATE_*``)."""

    turns: int = 1000
    max_changed: float = 0.10
    max_fallback_rise: float = 0.05


def judge(report: dict[str, Any], *, max_changed: float, max_fallback_rise: float) -> dict[str, Any]:
    """The gate's verdict on a what-if report over the bot's recent turns.

    With labelled turns among them, the share of those the candidate gets wrong (its intent
    is not the label) must stay within ``max_changed``; with none, the share of turns whose
    intent changes from what was served. The fallback rate may rise by ``max_fallback_rise``.
    """
    n = report["turns"]
    lab = report["labelled"]
    if lab["turns"]:
        basis, changed = "labels", 1.0 - lab["right_after"] / lab["turns"]
    else:
        basis, changed = "served", report["changed_intent_share"]
    rise = report["fallback_rate"]["after"] - report["fallback_rate"]["before"]
    reasons = []
    if n and changed > max_changed:
        what = (f"{changed:.1%} of {lab['turns']} labelled turns would get an intent other than their label"
                if basis == "labels" else f"{changed:.1%} of {n} recent turns would change intent (no labelled turns)")
        reasons.append(f"{what}; the limit is {max_changed:.1%}")
    if n and rise > max_fallback_rise:
        fr = report["fallback_rate"]
        reasons.append(
            f"the fallback rate would rise from {fr['before']:.1%} to {fr['after']:.1%} "
            f"(+{rise:.1%}; the limit is +{max_fallback_rise:.1%})"
        )
    summary = {k: report[k] for k in ("against", "turns", "changed_intent", "changed_intent_share", "changed_dialogue",
                                      "fallback_rate", "labelled")}
    return {
        "passed": not reasons, "reasons": reasons, "basis": basis, "changed_share": round(changed, 6),
        "fallback_rise": round(rise, 6), "limits": {"max_changed": max_changed, "max_fallback_rise": max_fallback_rise},
        "report": summary, "examples": report["changes"][:10],
    }


def gate_summary(verdict: dict[str, Any]) -> str:
    """One line for the alias move's reason and the CLI."""
    r = verdict["report"]
    if not r["turns"]:
        return "gate: passed (no recorded turns to replay)"
    head = "passed" if verdict["passed"] else "refused"
    what = (f"{verdict['changed_share']:.1%} of {r['labelled']['turns']} labelled turns wrong"
            if verdict["basis"] == "labels" else f"{verdict['changed_share']:.1%} of {r['turns']} turns changed")
    return f"gate: {head} on {r['turns']} turns ({what}, fallback {verdict['fallback_rise']:+.1%})"


__all__ = ["GateLimits", "gate_summary", "judge"]
