"""The root error of :mod:`botyard.events`."""

from botyard.errors import BotyardError


class EventStoreError(BotyardError):
    code = "event_store_error"


class UnknownConversation(EventStoreError):
    code = "unknown_conversation"

    def __init__(self, ref: str) -> None:
        super().__init__(f"no conversation {ref!r} in the event store", conversation=ref)
