"""Errors of the tools, beside the spec's own (:mod:`resnet_spec.errors`). The CLI prints any
``ResNetError`` as one line and exits 2."""

from __future__ import annotations

from resnet_spec.errors import ResNetError


class OutputError(ResNetError):
    """An output file or folder cannot be written (missing folder, taken name, no permission)."""


class UsageError(ResNetError):
    """A command-line value is out of range or names nothing known."""


class InputError(ResNetError):
    """An input the user gave (image, labels file) cannot be used."""
