"""botyard: host thousands of tenants' chatbots over NATS, every turn an event.

This module only re-exports; it must stay free of TensorFlow and of anything slow to
import, because every node imports it.
"""

from botyard.client import Client, Reply
from botyard.errors import BotyardError, TurnError

__all__ = ["BotyardError", "Client", "Reply", "TurnError"]
__version__ = "0.1.0"
