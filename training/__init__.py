"""Training: bot definition -> Keras model -> snapshot. Imports TensorFlow lazily."""

from botyard.training.config import TrainConfig
from botyard.training.errors import TrainingError
from botyard.training.pipeline import TrainResult, train, train_to_store

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "train", "train_to_store"]
