"""The ``botyard`` command: one module per group of subcommands, shared helpers in
:mod:`botyard.ops.cli.common`."""

from botyard.ops.cli.main import main

__all__ = ["main"]
