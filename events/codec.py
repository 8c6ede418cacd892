"""msgpack encoding of stored events: the ``eventsourcing`` library's Transcoder role.

The standard ``JSONTranscoder`` is replaced by :class:`MsgpackTranscoder`; UUIDs and
datetimes travel as msgpack extension types, everything else as native msgpack.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import Transcoder

from botyard.dialogue.state import DialogueState

EXT_UUID = 1
EXT_DATETIME = 2
EXT_DECIMAL = 3


def _default(obj: Any) -> Any:
    if isinstance(obj, UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, DialogueState):  # a Conversation's, in its aggregate snapshot: a plain map
        return obj.to_dict()
    raise TypeError(f"cannot encode {type(obj).__name__} in a stored event")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_UUID:
        return UUID(bytes=data)
    if code == EXT_DATETIME:
        return datetime.fromisoformat(data.decode())
    if code == EXT_DECIMAL:
        return Decimal(data.decode())
    return msgpack.ExtType(code, data)


class MsgpackTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return msgpack.packb(obj, default=_default, use_bin_type=True)

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
