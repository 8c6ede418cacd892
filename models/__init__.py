"""Bot definitions, features and the TensorFlow-free serving runtime.

The Keras architecture lives in :mod:`botyard.training.network`, imported only by training.
"""

from botyard.models.definition import BotDefinition, Fallback, Intent, load_bot, parse_bot
from botyard.models.errors import DefinitionError, ModelError
from botyard.models.featurizer import FeatureConfig, Featurizer
from botyard.models.prediction import Prediction
from botyard.models.runtime import Predictor

__all__ = [
    "BotDefinition",
    "DefinitionError",
    "Fallback",
    "FeatureConfig",
    "Featurizer",
    "Intent",
    "ModelError",
    "Prediction",
    "Predictor",
    "load_bot",
    "parse_bot",
]
