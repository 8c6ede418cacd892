"""The names a bot file gives things, and the valid name nearest an invalid one.

Intents, entities and slots are identifiers (:data:`IDENTIFIER_RE`: they appear in
placeholders and conditions); tenants and bots are NATS subject tokens
(``botyard.protocol.NAME_RE``). A refused name comes with a suggestion: exported labels
such as ``100_NIGHT_TRIAL_OFFER`` or ``order-status`` are common, and the fix is mechanical.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any, Collection

IDENTIFIER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_LENGTH = 64


def suggest_identifier(name: Any, kind: str, taken: Collection[str] = ()) -> str | None:
    """The identifier nearest ``name``: accents dropped, each run of other characters one
    ``_``, ``<kind>_`` in front when it does not start with a letter (``100_NIGHT`` ->
    ``intent_100_NIGHT``), cut to 64 characters, and not one of ``taken``; None when nothing is left."""
    text = _ascii(name)
    text = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not text:
        return None
    if not text[0].isalpha():
        text = f"{kind}_{text}"
    return _free(text, "_", taken)


def suggest_token(name: Any, taken: Collection[str] = ()) -> str | None:
    """The tenant or bot name nearest ``name``: accents dropped, each run of other characters one
    ``-``, cut to 64 characters; None when nothing is left."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", _ascii(name)).strip("-_")
    return _free(text, "-", taken) if text else None


def did_you_mean(key: Any, expected: Collection[str]) -> str:
    """`` (did you mean 'intents'?)`` for a misspelt key, or empty."""
    close = difflib.get_close_matches(str(key), sorted(expected), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def identifier_problem(name: Any, kind: str, taken: Collection[str] = ()) -> str:
    """The refusal of an invalid ``kind`` name, with the suggestion when there is one."""
    problem = f"{kind} names are identifiers: a letter, then letters, digits or '_' (at most {MAX_LENGTH})"
    suggestion = suggest_identifier(name, kind, taken)
    return problem + (f"; use '{suggestion}'?" if suggestion else "")


def token_problem(name: Any) -> str:
    problem = "required: 1-64 letters, digits, '-' or '_', starting with a letter or digit"
    suggestion = suggest_token(name) if name is not None and name != "" else None
    return problem + (f"; use '{suggestion}'?" if suggestion else "")


def _ascii(name: Any) -> str:
    return unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()


def _free(text: str, joiner: str, taken: Collection[str]) -> str:
    """``text`` cut to the longest name, with ``<joiner>2``, ``<joiner>3``, ... when it is taken."""
    base = text[:MAX_LENGTH].rstrip("_-")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"{joiner}{n}"
        candidate = base[: MAX_LENGTH - len(suffix)] + suffix
    return candidate
