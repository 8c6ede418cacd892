"""``python -m botyard`` is the ``botyard`` command."""

import sys

from botyard.ops.cli import main

if __name__ == "__main__":  # guarded: Horovod's launcher re-imports the main module in spawned processes
    sys.exit(main())
