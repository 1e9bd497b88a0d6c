"""Each framework's execution paths for ``resnet bench``: ``paths/<backend>.py`` gives ``cpu_paths``,
``gpu_paths`` and ``gpu_memory`` (the worker imports the one it runs; a backend without a file has no bench paths).
The framework-specific code of the bench wing lives here and only here."""

from __future__ import annotations

import importlib
from types import ModuleType

from resnet_tools.core.errors import UsageError


def paths_of(backend: str) -> ModuleType:
    """``resnet_tools.bench.paths.<backend>``; a backend without bench paths is one line."""
    try:
        return importlib.import_module(f"resnet_tools.bench.paths.{backend}")
    except ModuleNotFoundError as exc:
        if exc.name != f"resnet_tools.bench.paths.{backend}":
            raise
        raise UsageError(f"resnet bench has no execution paths for {backend} (resnet_tools/bench/paths/)") from None
