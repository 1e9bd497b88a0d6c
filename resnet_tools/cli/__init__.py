"""The ``resnet`` command line: one module per command, sharing :mod:`.console` and :mod:`.args`."""

from resnet_tools.cli.main import main

__all__ = ["main"]
