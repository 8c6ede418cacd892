"""Domain events, aggregates and the event store (``eventsourcing``, msgpack-encoded)."""

from botyard.events.codec import MsgpackTranscoder
from botyard.events.conversation import Conversation, conversation_uuid
from botyard.events.errors import EventStoreError, UnknownConversation
from botyard.events.store import EventStore, IntegrityError

__all__ = [
    "Conversation",
    "EventStore",
    "EventStoreError",
    "IntegrityError",
    "MsgpackTranscoder",
    "UnknownConversation",
    "conversation_uuid",
]
