"""The root error of :mod:`botyard.ops`."""

from botyard.errors import BotyardError


class OpsError(BotyardError):
    code = "ops_error"


class ConfigError(OpsError):
    code = "invalid_config"

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}", variable=variable)


class NatsServerError(OpsError):
    code = "nats_server_failed"


class AdminError(OpsError):
    """An admin request that cannot be done; ``code`` says why."""

    def __init__(self, code: str, message: str, **fields) -> None:
        super().__init__(message, **fields)
        self.code = code
