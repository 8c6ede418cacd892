"""The root error of :mod:`botyard.models`, and the collector that gathers every problem of a
bot file before one :class:`DefinitionError` reports them all."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from botyard.errors import BotyardError


class ModelError(BotyardError):
    """Root of errors about bot definitions, features and model runtimes."""

    code = "model_error"


class DefinitionError(ModelError):
    """A bot definition file is invalid: names the file, the field and what is wrong.

    ``field`` and ``problem`` are the first problem's; ``problems`` holds every ``(field,
    problem)`` pair found (the wire carries them as ``problems: [{field, problem}, ...]``), and
    the message lists them all, one a line."""

    code = "invalid_definition"

    def __init__(self, source: str, field: str, problem: str, *more: tuple[str, str]) -> None:
        problems = ((field, problem), *more)
        lines = [f"{source}: {f}: {p}" for f, p in problems]
        message = lines[0] if len(lines) == 1 else f"{source}: {len(lines)} problems\n" + "\n".join(lines)
        super().__init__(
            message, source=source, field=field, problem=problem,
            problems=[{"field": f, "problem": p} for f, p in problems],
        )
        self.source, self.field, self.problem = source, field, problem
        self.problems: tuple[tuple[str, str], ...] = problems


class Problems:
    """A bot file's errors and warnings, each a ``(field, text)`` pair, gathered while it is
    parsed; :meth:`check` raises the errors together."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []

    def add(self, field: str, problem: str) -> None:
        self.errors.append((field, problem))

    def warn(self, field: str, text: str) -> None:
        self.warnings.append((field, text))

    def fail(self, field: str, problem: str) -> DefinitionError:
        """The error for helpers that stop at their first problem (they raise it)."""
        return DefinitionError(self.source, field, problem)

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Runs a block that raises :class:`DefinitionError` at its first problem: its problems
        join these, and parsing goes on after the block."""
        try:
            yield
        except DefinitionError as exc:
            self.errors.extend(exc.problems)

    def check(self) -> None:
        if self.errors:
            raise DefinitionError(self.source, *self.errors[0], *self.errors[1:])
