"""The root error of :mod:`botyard.models`."""

from __future__ import annotations

from botyard.errors import BotyardError


class ModelError(BotyardError):
    """Root of errors about bot definitions, features and model runtimes."""

    code = "model_error"


class DefinitionError(ModelError):
    """A bot definition file is invalid: names the file, the field and what is wrong."""

    code = "invalid_definition"

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}", source=source, field=field, problem=problem)
        self.source, self.field, self.problem = source, field, problem
