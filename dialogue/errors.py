"""The root error of :mod:`botyard.dialogue`, and the one that reports every problem of a
bot file's ``dialogue`` section at once."""

from __future__ import annotations

from botyard.errors import BotyardError
from botyard.models.errors import DefinitionError


class DialogueError(BotyardError):
    """Root of errors about dialogue specs, state and events."""

    code = "dialogue_error"


class DialogueDefinitionError(DefinitionError, DialogueError):
    """A ``dialogue`` section is invalid. ``field`` and ``problem`` are the first problem's (as
    :class:`~botyard.models.errors.DefinitionError` has them); ``problems`` holds every
    ``(field, problem)`` pair found, and the message lists them all, one a line."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        super().__init__(source, *problems[0], *problems[1:])


class EventFormatError(DialogueError):
    """A recorded dialogue event cannot be read: unknown name, newer version, bad fields."""

    code = "invalid_dialogue_event"


class Problems:
    """Collects ``(field, problem)`` pairs while a section is parsed; :meth:`check` raises them
    together."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, problem: str) -> None:
        self.found.append((field, problem))

    def check(self) -> None:
        if self.found:
            raise DialogueDefinitionError(self.source, self.found)
