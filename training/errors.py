"""The root error of :mod:`botyard.training`."""

from botyard.errors import BotyardError


class TrainingError(BotyardError):
    code = "training_failed"
