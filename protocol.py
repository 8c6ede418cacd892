"""The wire protocol: subjects, payload codecs and error codes, as pure functions.

Nothing here touches a socket, so every rule is testable on bytes alone. The README's
protocol section documents the same rules for clients in other languages.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

import msgpack

from botyard.errors import BotyardError

TURN_PREFIX = "botyard.turn"
ADMIN_PREFIX = "botyard.admin"
ALIAS_PREFIX = "botyard.alias"
ALIAS_HEADER = "Botyard-Alias"
DEFAULT_ALIAS = "production"
JSON_CONTENT_TYPE = "application/json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
"""Tenants, bots and aliases. ``\\Z``, not ``$``: ``$`` also matches before a final newline."""
MAX_CONVERSATION_ID = 128
MAX_TURN_ID = 128

# Decoding limits of every request body (docs/protocol.md, "Decoding limits"), checked in
# :func:`decode_body` before any other code sees the body.
MAX_DEPTH = 32
"""Maps and lists nested at most this deep (the body itself is level 1)."""
MAX_INT = 2**53
"""Integers must lie in [-MAX_INT, MAX_INT] (what a JSON number holds exactly everywhere)."""
MAX_ADMIN_BODY = 64 * 1024
"""Bytes of a ``botyard.admin.<verb>`` request body, at most."""


def turn_body_limit(max_text_bytes: int) -> int:
    """Bytes of a turn request body, at most: room for a ``text`` of ``max_text_bytes`` however
    it is escaped (JSON's ``\\u0001`` is 6 bytes for 1), plus 64 KiB for the other fields."""
    return 6 * max_text_bytes + 64 * 1024

# Subjects between nodes (documented in docs/protocol.md, "Between nodes").
TURN_SUBSCRIPTION = f"{TURN_PREFIX}.*.*"
ADMIN_SUBSCRIPTION = f"{ADMIN_PREFIX}.>"
ALIAS_SUBSCRIPTION = f"{ALIAS_PREFIX}.*.*"
HEARTBEAT_SUBJECT = "botyard.cluster.heartbeat"
DIRECT_PREFIX = "botyard.node"
"""``botyard.node.<node>.turn.<tenant>.<bot>``: a turn forwarded to the node that owns its conversation."""
QUEUE_GROUP = "botyard-nodes"
"""Every node takes turn and admin requests in this queue group: each request reaches one node."""


def direct_turn_subject(node: str, tenant: str, bot: str, kind: str = "turn") -> str:
    """``kind``: ``turn``, or ``agent`` for an agent's message."""
    return f"{DIRECT_PREFIX}.{node}.{kind}.{tenant}.{bot}"

# Stable error codes, documented in the README's protocol section.
MALFORMED = "malformed"
INVALID_REQUEST = "invalid_request"
TEXT_TOO_LONG = "text_too_long"
UNKNOWN_TENANT = "unknown_tenant"
UNKNOWN_BOT = "unknown_bot"
UNKNOWN_ALIAS = "unknown_alias"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"
ERROR_CODES = (
    MALFORMED, INVALID_REQUEST, TEXT_TOO_LONG, UNKNOWN_TENANT, UNKNOWN_BOT, UNKNOWN_ALIAS, UNAVAILABLE, INTERNAL,
)
REPLY_TOO_LARGE = "reply_too_large"
"""A reply that would exceed the NATS server's ``max_payload`` (``size``, ``max_payload``)."""
NOT_HANDED_OFF = "not_handed_off"
"""An agent's message to a conversation that is not handed off to a person."""
RATE_LIMITED = "rate_limited"
"""The tenant is over its turns per second on this node; ``retry_after``: seconds until a turn would pass."""
QUOTA_EXCEEDED = "quota_exceeded"
"""The tenant is at one of its quotas (bots, snapshot bytes): ``quota``, ``limit``, ``used``."""
ERROR_CODES += (REPLY_TOO_LARGE, NOT_HANDED_OFF, RATE_LIMITED, QUOTA_EXCEEDED)

# Human handoff (docs/protocol.md, "Handoff"): a handed-off conversation's user turns are
# published on ``botyard.handoff.<tenant>.<bot>``; an agent answers on ``botyard.agent.<tenant>.<bot>``.
MESSAGE_PREFIX = "botyard.message"
"""``botyard.message.<tenant>.<bot>``: a tenant's system sends the user a message of the bot's (proactive)."""
MESSAGE_SUBSCRIPTION = f"{MESSAGE_PREFIX}.*.*"
OUT_PREFIX = "botyard.out"
"""``botyard.out.<tenant>.<bot>.<conversation>``: the bot's messages to a conversation, as they are recorded."""
MAX_MESSAGE_ID = 128
MAX_SOURCE = 64
SUBJECT_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
HANDOFF_PREFIX = "botyard.handoff"
AGENT_PREFIX = "botyard.agent"
AGENT_SUBSCRIPTION = f"{AGENT_PREFIX}.*.*"
MAX_AGENT_NAME = 64


class ProtocolError(BotyardError):
    """A request that breaks the protocol; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.code = code


@dataclass(frozen=True, slots=True)
class AgentMessage:
    """What a person answering a handed-off conversation sends: ``text`` for the user (may
    be empty when only handing back), whether to ``hand_back`` to the bot, who (``agent``)."""

    text: str
    hand_back: bool = False
    agent: str = ""


@dataclass(frozen=True, slots=True)
class ProactiveMessage:
    """A message for the user that no user turn asked for: ``text``, the sender's
    ``message_id`` (the same id again is the same message: recorded once), and who sent it."""

    text: str
    message_id: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class TurnRequest:
    tenant: str
    bot: str
    conversation_id: str
    text: str
    as_json: bool
    turn_id: str | None = None
    alias: str = DEFAULT_ALIAS
    agent: AgentMessage | None = None
    """Set for an agent's message (``botyard.agent.<tenant>.<bot>``): no classification, no user turn."""
    message: ProactiveMessage | None = None
    """Set for a proactive message (``botyard.message.<tenant>.<bot>``): no classification, no user turn."""


def turn_subject(tenant: str, bot: str) -> str:
    return f"{TURN_PREFIX}.{tenant}.{bot}"


def agent_subject(tenant: str, bot: str) -> str:
    return f"{AGENT_PREFIX}.{tenant}.{bot}"


def handoff_subject(tenant: str, bot: str) -> str:
    return f"{HANDOFF_PREFIX}.{tenant}.{bot}"


def message_subject(tenant: str, bot: str) -> str:
    return f"{MESSAGE_PREFIX}.{tenant}.{bot}"


def conversation_token(conversation_id: str) -> str:
    """A conversation id as one subject token: itself when it is letters, digits, ``-`` and
    ``_`` only, else ``~`` and its UTF-8 bytes in unpadded base64url (``.``, ``*``, ``>``
    and spaces cannot be in a token)."""
    if SUBJECT_TOKEN_RE.match(conversation_id):
        return conversation_id
    return "~" + base64.urlsafe_b64encode(conversation_id.encode("utf-8")).decode().rstrip("=")


def out_subject(tenant: str, bot: str, conversation_id: str) -> str:
    return f"{OUT_PREFIX}.{tenant}.{bot}.{conversation_token(conversation_id)}"


def alias_subject(tenant: str, bot: str) -> str:
    return f"{ALIAS_PREFIX}.{tenant}.{bot}"


def admin_subject(verb: str, tenant: str | None = None) -> str:
    """``botyard.admin.<verb>`` (any tenant: the operator's), or with ``tenant``
    ``botyard.admin.<tenant>.<verb>`` (that tenant's own: the tenant is the subject's)."""
    return f"{ADMIN_PREFIX}.{tenant}.{verb}" if tenant else f"{ADMIN_PREFIX}.{verb}"


def check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ProtocolError(
            INVALID_REQUEST,
            f"{kind} must be 1-64 characters of letters, digits, '-' or '_', starting with a letter or digit",
            field=kind,
        )
    return value


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name``, matched case-insensitively as in HTTP (``botyard-alias``
    is ``Botyard-Alias``); None if absent."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.casefold()
    return next((v for k, v in headers.items() if isinstance(k, str) and k.casefold() == wanted), None)


def wants_json(headers: Mapping[str, str] | None) -> bool:
    value = header(headers, "Content-Type")
    return isinstance(value, str) and value.split(";")[0].strip().lower() == JSON_CONTENT_TYPE


def decode_body(data: bytes, as_json: bool, *, max_bytes: int | None = None) -> Any:
    """Decode a request body, within the decoding limits; raise :class:`ProtocolError` otherwise.

    In this order: over ``max_bytes`` bytes is ``invalid_request`` (``size``, ``limit``); bytes
    that do not decode are ``malformed``; a body that decodes but breaks a limit (nesting
    deeper than :data:`MAX_DEPTH`, an integer outside +-:data:`MAX_INT`, a float that is not
    finite, a map key that is not a string, a string that is not valid Unicode, such as a
    JSON ``"\\ud800"``) is ``invalid_request``, with ``field`` naming the top-level key whose
    value breaks it. So whatever reaches the code past this point is plain data: any string
    encodes to UTF-8, and no walk over it can recurse deeply.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ProtocolError(
            INVALID_REQUEST, f"request body is {len(data)} bytes; the limit is {max_bytes}", size=len(data), limit=max_bytes
        )
    try:
        if as_json:
            body = json.loads(data)
        else:
            body = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (RecursionError, msgpack.StackError):  # nested far deeper than MAX_DEPTH
        raise ProtocolError(INVALID_REQUEST, f"request body is nested deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # ValueError, msgpack's ExtraData/FormatError, TypeError (an unhashable key), ...
        kind = "JSON" if as_json else "msgpack"
        detail = str(exc) or type(exc).__name__
        raise ProtocolError(MALFORMED, f"request body is not valid {kind}: {ascii(detail)[1:-1][:200]}") from None
    _check_body(body, as_json)
    return body


class _Refused(Exception):
    """A value breaks a decoding limit (raised by :func:`_check`, which knows no field names)."""


def _valid_str(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(value: Any, depth: int, strings: bool) -> None:
    """Check ``value``, found inside ``depth`` maps and lists, against the decoding limits.
    ``strings``: check that strings are valid Unicode (only JSON can carry a lone surrogate:
    msgpack's strings are decoded from strict UTF-8)."""
    t = type(value)
    if t is str:
        if strings and not _valid_str(value):
            raise _Refused("is not valid Unicode (a lone surrogate?)")
    elif t is int:
        if not -MAX_INT <= value <= MAX_INT:
            raise _Refused("holds an integer outside the range -2**53..2**53")
    elif t is float:
        if not math.isfinite(value):
            raise _Refused("holds a float that is not finite")
    elif t is dict or t is list:
        if depth >= MAX_DEPTH:
            raise _Refused(f"is nested deeper than {MAX_DEPTH} levels")
        if t is dict:
            for k, v in value.items():
                if type(k) is not str:
                    raise _Refused("has a map key that is not a string")
                if strings and not _valid_str(k):
                    raise _Refused("has a map key that is not valid Unicode")
                _check(v, depth + 1, strings)
        else:
            for v in value:
                _check(v, depth + 1, strings)
    # None, bool, bytes (msgpack bin) and msgpack extension types are leaves: the field checks
    # refuse them where a string or a number is expected.


def _check_body(body: Any, strings: bool) -> None:
    if type(body) is not dict:
        try:
            _check(body, 0, strings)
        except _Refused as exc:
            raise ProtocolError(INVALID_REQUEST, f"request body {exc}") from None
        return
    for k, v in body.items():
        if type(k) is not str:
            raise ProtocolError(INVALID_REQUEST, "request body has a map key that is not a string")
        if strings and not _valid_str(k):
            raise ProtocolError(INVALID_REQUEST, "request body has a map key that is not valid Unicode")
        if type(v) is str and (not strings or v.isascii()):
            continue  # the common case, at once
        try:
            _check(v, 1, strings)
        except _Refused as exc:
            raise ProtocolError(INVALID_REQUEST, f"field {k[:64]!r} {exc}", field=k) from None


def encode_body(payload: Mapping[str, Any], as_json: bool) -> bytes:
    if as_json:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return msgpack.packb(payload, use_bin_type=True)


def error_body(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **fields}}


def _string_field(body: Mapping[str, Any], field: str, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if value is None:
        raise ProtocolError(INVALID_REQUEST, f"field '{field}' is required", field=field)
    if not isinstance(value, str):
        raise ProtocolError(
            INVALID_REQUEST, f"field '{field}' must be a string, not {type(value).__name__}", field=field
        )
    return value


def parse_turn(
    subject: str, data: bytes, headers: Mapping[str, str] | None, *, max_text_bytes: int, max_body_bytes: int | None = None
) -> TurnRequest:
    """Validate one turn request; raise :class:`ProtocolError` with a stable code.

    The body is at most ``max_body_bytes`` (default :func:`turn_body_limit`) and within the
    decoding limits (:func:`decode_body`)."""
    tenant, bot, as_json, body = _request(TURN_PREFIX, "turn", subject, data, headers, max_text_bytes, max_body_bytes)
    conversation_id = _conversation_id(body)
    text = _text(body, max_text_bytes)
    if not text.strip():
        raise ProtocolError(INVALID_REQUEST, "field 'text' must not be empty", field="text")
    turn_id = _string_field(body, "turn_id", required=False)
    if turn_id is not None and not 0 < len(turn_id) <= MAX_TURN_ID:
        raise ProtocolError(INVALID_REQUEST, f"turn_id must be 1-{MAX_TURN_ID} characters", field="turn_id")
    for name, value in (("conversation_id", conversation_id), ("turn_id", turn_id)):
        if value is not None and "\x00" in value:  # an id is a key in the stores (PostgreSQL text has no NUL)
            raise ProtocolError(INVALID_REQUEST, f"{name} must not contain NUL (U+0000)", field=name)
    return TurnRequest(tenant, bot, conversation_id, text, as_json, turn_id, _alias(body, headers))


def parse_agent(subject: str, data: bytes, headers: Mapping[str, str] | None, *, max_text_bytes: int) -> TurnRequest:
    """Validate an agent's message (``botyard.agent.<tenant>.<bot>``): ``conversation_id``,
    ``text`` (may be empty only with ``hand_back``), ``hand_back`` (bool), ``agent`` (a name)."""
    tenant, bot, as_json, body = _request(AGENT_PREFIX, "agent", subject, data, headers, max_text_bytes, None)
    conversation_id = _conversation_id(body)
    text = _text(body, max_text_bytes, required=False) or ""
    hand_back = body.get("hand_back", False)
    if not isinstance(hand_back, bool):
        raise ProtocolError(INVALID_REQUEST, "field 'hand_back' must be true or false", field="hand_back")
    if not text.strip() and not hand_back:
        raise ProtocolError(INVALID_REQUEST, "an agent's message needs a 'text', or 'hand_back': true", field="text")
    agent = _string_field(body, "agent", required=False) or ""
    if len(agent) > MAX_AGENT_NAME:
        raise ProtocolError(INVALID_REQUEST, f"agent must be at most {MAX_AGENT_NAME} characters", field="agent")
    return TurnRequest(tenant, bot, conversation_id, text, as_json, None, _alias(body, headers),
                       AgentMessage(text, hand_back, agent))


def parse_message(subject: str, data: bytes, headers: Mapping[str, str] | None, *, max_text_bytes: int) -> TurnRequest:
    """Validate a proactive message (``botyard.message.<tenant>.<bot>``): ``conversation_id``,
    ``text``, optional ``message_id`` (default: a new one) and ``source``."""
    tenant, bot, as_json, body = _request(MESSAGE_PREFIX, "message", subject, data, headers, max_text_bytes, None)
    conversation_id = _conversation_id(body)
    text = _text(body, max_text_bytes) or ""
    if not text.strip():
        raise ProtocolError(INVALID_REQUEST, "field 'text' must not be empty", field="text")
    message_id = _string_field(body, "message_id", required=False)
    if message_id is None:
        message_id = uuid.uuid4().hex
    elif not 0 < len(message_id) <= MAX_MESSAGE_ID or "\x00" in message_id:
        raise ProtocolError(INVALID_REQUEST, f"message_id must be 1-{MAX_MESSAGE_ID} characters, no NUL", field="message_id")
    source = _string_field(body, "source", required=False) or ""
    if len(source) > MAX_SOURCE:
        raise ProtocolError(INVALID_REQUEST, f"source must be at most {MAX_SOURCE} characters", field="source")
    return TurnRequest(tenant, bot, conversation_id, text, as_json, None, _alias(body, headers),
                       message=ProactiveMessage(text, message_id, source))


def _request(prefix: str, kind: str, subject: str, data: bytes, headers: Mapping[str, str] | None, max_text_bytes: int,
             max_body_bytes: int | None) -> tuple[str, str, bool, dict]:
    parts = subject.split(".")
    if len(parts) != 4 or ".".join(parts[:2]) != prefix:
        raise ProtocolError(INVALID_REQUEST, f"not a {kind} subject: {subject!r}", field="subject")
    tenant, bot = check_name("tenant", parts[2]), check_name("bot", parts[3])
    as_json = wants_json(headers)
    limit = turn_body_limit(max_text_bytes) if max_body_bytes is None else max_body_bytes
    body = decode_body(data, as_json, max_bytes=limit)
    if not isinstance(body, dict):
        raise ProtocolError(INVALID_REQUEST, f"request body must be a map, not {type(body).__name__}")
    return tenant, bot, as_json, body


def _conversation_id(body: Mapping[str, Any]) -> str:
    conversation_id = _string_field(body, "conversation_id")
    if not 0 < len(conversation_id) <= MAX_CONVERSATION_ID:
        raise ProtocolError(
            INVALID_REQUEST,
            f"conversation_id must be 1-{MAX_CONVERSATION_ID} characters",
            field="conversation_id",
        )
    if "\x00" in conversation_id:  # an id is a key in the stores (PostgreSQL text has no NUL)
        raise ProtocolError(INVALID_REQUEST, "conversation_id must not contain NUL (U+0000)", field="conversation_id")
    return conversation_id


def _text(body: Mapping[str, Any], max_text_bytes: int, *, required: bool = True) -> str | None:
    text = _string_field(body, "text", required=required)
    if text is None:
        return None
    size = len(text.encode("utf-8"))  # decode_body let no lone surrogate through
    if size > max_text_bytes:
        raise ProtocolError(
            TEXT_TOO_LONG, f"text is {size} bytes; the limit is {max_text_bytes}", size=size, limit=max_text_bytes
        )
    return text


def _alias(body: Mapping[str, Any], headers: Mapping[str, str] | None) -> str:
    alias = header(headers, ALIAS_HEADER) or _string_field(body, "alias", required=False)
    return DEFAULT_ALIAS if alias is None else check_name("alias", alias)
