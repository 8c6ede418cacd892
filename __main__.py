"""``python -m botyard`` is the ``botyard`` command."""

import sys

from botyard.ops.cli import main

sys.exit(main())
