"""The action wire contract: the request botyard sends to a tenant's action, and the reply it
accepts, as pure functions (docs/actions.md is the same contract for any language).

An action is a NATS service of the tenant's: botyard sends a JSON request on
``botyard.action.<tenant>.<bot>.<action>`` (workers join any queue group, e.g.
``botyard-actions``, to share the calls) with the header ``Botyard-Idempotency-Key``
(the same on every retry of one call) and waits for one JSON reply:

request  ``{action, idempotency_key, attempt, tenant, bot, conversation_id, turn, turn_id,
           intent, confidence, entities, slots, text, form, sent_at}``
reply    ``{text?, response?, slots?, clear?, followup?, handoff?, later?}`` (every field
           optional; ``{}`` means "done, nothing to say") or ``{"error": {code, message}}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from botyard import protocol
from botyard.protocol import ProtocolError

ACTION_PREFIX = "botyard.action"
IDEMPOTENCY_HEADER = "Botyard-Idempotency-Key"
ACTION_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
"""An action's name: one subject token, a letter first."""
MAX_REPLY_BYTES = 64 * 1024
"""An action's reply may be at most this many bytes."""
MAX_TEXT = 4096
"""Characters of an action's ``text`` (and of a ``handoff`` reason)."""
REPLY_KEYS = frozenset({"text", "response", "slots", "clear", "followup", "handoff", "later", "error"})
JSON_HEADERS = {"Content-Type": protocol.JSON_CONTENT_TYPE}

# What a call came to (the ``status`` of the recorded ``ActionCalled`` event).
OK = "ok"
"""The action answered with a valid reply."""
LATER = "later"
"""The action answered that its result comes later (as a proactive message)."""
ERROR = "error"
"""The action answered with ``{"error": ...}``."""
TIMEOUT = "timeout"
"""No answer within the timeout, on every try."""
NO_RESPONDERS = "no_responders"
"""Nobody serves the action's subject (on every try)."""
REFUSED = "refused"
"""The action's reply was malformed, too large, or set a slot the action does not declare."""
FAILED = frozenset({ERROR, TIMEOUT, NO_RESPONDERS, REFUSED})


def action_subject(tenant: str, bot: str, action: str) -> str:
    return f"{ACTION_PREFIX}.{tenant}.{bot}.{action}"


def action_subscription(tenant: str, bot: str) -> str:
    """Every action of one bot (what a worker serving all of them subscribes to)."""
    return f"{ACTION_PREFIX}.{tenant}.{bot}.*"


def idempotency_key(conversation_id: str, turn: int, index: int, turn_id: str | None = None) -> str:
    """The same for every try of the ``index``-th call (0: the first; a follow-up counts on)
    of turn ``turn``: a node that takes the turn over after a crash derives the same key from
    the client's retry. With the turn's ``turn_id`` it ends ``:<turn_id>``, so a turn that was
    never recorded (its node died and nobody retried) and a new turn given its number do not
    share a key. Ids are written as subject tokens (:func:`protocol.conversation_token`), so
    the key is safe in a header: ``c-42:3:0:t-9f2``."""
    key = f"{protocol.conversation_token(conversation_id)}:{turn}:{index}"
    return f"{key}:{protocol.conversation_token(turn_id)}" if turn_id else key


@dataclass(frozen=True, slots=True)
class ActionReply:
    """A validated reply (see the module's docstring for the fields)."""

    text: str = ""
    response: str = ""
    slots: Mapping[str, Any] = field(default_factory=dict)
    clear: tuple[str, ...] = ()
    followup: str = ""
    handoff: str = ""
    """Empty: no handoff; else the reason (``true`` on the wire reads as ``action``)."""
    later: bool = False
    error: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The reply as recorded (only the fields it has)."""
        out: dict[str, Any] = {}
        if self.text:
            out["text"] = self.text
        if self.response:
            out["response"] = self.response
        if self.slots:
            out["slots"] = dict(self.slots)
        if self.clear:
            out["clear"] = list(self.clear)
        if self.followup:
            out["followup"] = self.followup
        if self.handoff:
            out["handoff"] = self.handoff
        if self.later:
            out["later"] = True
        if self.error is not None:
            out["error"] = dict(self.error)
        return out


def encode_request(
    *, action: str, key: str, attempt: int, tenant: str, bot: str, conversation_id: str, turn: int, turn_id: str | None,
    intent: str, confidence: float, entities: list[Mapping[str, Any]], slots: Mapping[str, Any], text: str,
    form: str | None, sent_at: float,
) -> bytes:
    body = {
        "action": action, "idempotency_key": key, "attempt": attempt, "tenant": tenant, "bot": bot,
        "conversation_id": conversation_id, "turn": turn, "turn_id": turn_id, "intent": intent,
        "confidence": round(float(confidence), 6), "entities": [_entity(e) for e in entities],
        "slots": {k: list(v) if isinstance(v, tuple) else v for k, v in slots.items()}, "text": text, "form": form,
        "sent_at": sent_at,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _entity(e: Mapping[str, Any]) -> dict[str, Any]:
    return {k: e[k] for k in ("entity", "value", "start", "end") if k in e}


def decode_request(data: bytes) -> dict[str, Any]:
    """A request as an action receives it (for SDKs and tests): the JSON object, checked."""
    body = protocol.decode_body(data, True, max_bytes=protocol.turn_body_limit(64 * 1024))
    if not isinstance(body, dict) or not isinstance(body.get("action"), str) or not isinstance(body.get("idempotency_key"), str):
        raise ProtocolError(protocol.INVALID_REQUEST, "an action request is a JSON object with 'action' and 'idempotency_key'")
    return body


def decode_reply(data: bytes) -> ActionReply:
    """An action's reply, validated; :class:`ProtocolError` (``invalid_request`` or ``malformed``)
    names what is wrong. Whether the slots it sets are the action's own is the dialogue's check."""
    if len(data) > MAX_REPLY_BYTES:
        raise ProtocolError(protocol.INVALID_REQUEST, f"action reply is {len(data)} bytes; the limit is {MAX_REPLY_BYTES}",
                            size=len(data), limit=MAX_REPLY_BYTES)
    if not data.strip():
        return ActionReply()
    body = protocol.decode_body(data, True)
    if not isinstance(body, dict):
        raise ProtocolError(protocol.INVALID_REQUEST, "action reply must be a JSON object")
    unknown = sorted(set(body) - REPLY_KEYS)
    if unknown:
        raise ProtocolError(protocol.INVALID_REQUEST, f"action reply has unknown fields {unknown}", field=unknown[0])
    error = body.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            raise ProtocolError(protocol.INVALID_REQUEST, "action reply's 'error' must be {code, message}", field="error")
        return ActionReply(error={"code": error["code"][:64], "message": str(error.get("message", ""))[:MAX_TEXT]})
    text = _str(body, "text", MAX_TEXT)
    response = _str(body, "response", 64)
    followup = _str(body, "followup", 64)
    if followup and not ACTION_NAME_RE.match(followup):
        raise ProtocolError(protocol.INVALID_REQUEST, f"'followup' {followup!r} is not an action name", field="followup")
    slots = body.get("slots", {})
    if slots is None:
        slots = {}
    if not isinstance(slots, dict) or not all(_slot_value(v) for v in slots.values()):
        raise ProtocolError(protocol.INVALID_REQUEST,
                            "'slots' must map slot names to a string, number, boolean or list of strings", field="slots")
    clear = body.get("clear", [])
    if clear is None:
        clear = []
    if not isinstance(clear, list) or not all(isinstance(c, str) for c in clear):
        raise ProtocolError(protocol.INVALID_REQUEST, "'clear' must be a list of slot names", field="clear")
    handoff = body.get("handoff", False)
    if handoff is True:
        handoff = "action"
    elif handoff is False or handoff is None:
        handoff = ""
    elif not isinstance(handoff, str) or len(handoff) > MAX_TEXT:
        raise ProtocolError(protocol.INVALID_REQUEST, "'handoff' must be true, false or a reason", field="handoff")
    later = body.get("later", False)
    if not isinstance(later, bool):
        raise ProtocolError(protocol.INVALID_REQUEST, "'later' must be true or false", field="later")
    return ActionReply(text, response, dict(slots), tuple(clear), followup, handoff, later)


def _str(body: Mapping[str, Any], key: str, limit: int) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(protocol.INVALID_REQUEST, f"'{key}' must be a string", field=key)
    if len(value) > limit:
        raise ProtocolError(protocol.INVALID_REQUEST, f"'{key}' is {len(value)} characters; the limit is {limit}", field=key)
    return value


def _slot_value(value: Any) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def encode_reply(reply: Mapping[str, Any]) -> bytes:
    """An action's reply on the wire (for SDKs and tests)."""
    return json.dumps(dict(reply), separators=(",", ":"), ensure_ascii=False).encode()
