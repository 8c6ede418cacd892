"""The root error of :mod:`botyard.ops`."""

from typing import Mapping

from botyard.errors import BotyardError


class OpsError(BotyardError):
    code = "ops_error"


class ConfigError(OpsError):
    """Configuration that cannot be used: ``variable`` names the (first) variable at fault,
    ``problems`` maps every variable at fault to what is wrong with it."""

    code = "invalid_config"

    def __init__(self, variable: str, problem: str, **more: str) -> None:
        problems = {variable: problem, **more}
        super().__init__("; ".join(f"{v}: {p}" for v, p in problems.items()), variable=variable, problems=problems)

    @classmethod
    def of(cls, problems: Mapping[str, str]) -> "ConfigError":
        """One error for several variables' problems (``{"BOTYARD_COPIES": "must be ..."}``)."""
        (variable, problem), *more = problems.items()
        return cls(variable, problem, **dict(more))


class NatsServerError(OpsError):
    code = "nats_server_failed"


class AdminError(OpsError):
    """An admin request that cannot be done; ``code`` says why."""

    def __init__(self, code: str, message: str, **fields) -> None:
        super().__init__(message, **fields)
        self.code = code
