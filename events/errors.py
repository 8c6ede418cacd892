"""The root error of :mod:`botyard.events`."""

from botyard.errors import BotyardError


class EventStoreError(BotyardError):
    code = "event_store_error"


class UnknownConversation(EventStoreError):
    code = "unknown_conversation"

    def __init__(self, ref: str) -> None:
        super().__init__(f"no conversation {ref!r} in the event store", conversation=ref)


class UnknownBot(EventStoreError):
    code = "unknown_bot"

    def __init__(self, tenant: str, bot: str) -> None:
        super().__init__(f"no bot {tenant}/{bot}: it has no snapshot and no aliases", tenant=tenant, bot=bot)


class AliasError(EventStoreError):
    """An alias move that cannot be made; ``code`` says which rule it breaks."""

    def __init__(self, code: str, message: str, **fields) -> None:
        super().__init__(message, **fields)
        self.code = code
