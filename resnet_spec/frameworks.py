"""Safe, lazy, ordered loading of the framework backends.

paddle 3.3.1 segfaults when it is imported after TensorFlow 2.21 (measured, see docs). Anything
that needs several backends loads them through :func:`load_backends`, which imports paddle first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from resnet_spec.errors import ImportOrderError

BACKENDS = ("torch", "paddle", "keras")
_LOAD_ORDER = ("paddle", "torch", "keras")  # paddle must come before TensorFlow (keras' TF backend)
_MODULES = {"torch": "resnet_torch", "paddle": "resnet_paddle", "keras": "resnet_keras"}


def installed_backends() -> list[str]:
    """Backends whose framework is installed (checked without importing it)."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def tensorflow_loaded_before_paddle() -> bool:
    """True when importing paddle now would segfault."""
    return "tensorflow" in sys.modules and "paddle" not in sys.modules


# --8<-- [start:paddle-guard]
def guard_paddle_import() -> None:
    """Raise a clear error instead of letting ``import paddle`` crash the interpreter."""
    if tensorflow_loaded_before_paddle():
        raise ImportOrderError(
            "cannot import paddle: TensorFlow is already loaded in this process, and paddle 3.3.1 "
            "segfaults when imported after TensorFlow 2.21. Import resnet_paddle (or paddle) before "
            "tensorflow/keras, use KERAS_BACKEND=jax or torch, or run paddle in a separate process."
        )
# --8<-- [end:paddle-guard]


def load_backend(name: str) -> ModuleType:
    """Import one backend package (``resnet_torch`` ...) by framework name."""
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    if name == "paddle":
        guard_paddle_import()
    return importlib.import_module(_MODULES[name])


def load_backends(names: list[str] | tuple[str, ...]) -> dict[str, ModuleType]:
    """Import several backends in the one order that never segfaults (paddle first)."""
    unknown = [n for n in names if n not in _MODULES]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    loaded = {n: load_backend(n) for n in _LOAD_ORDER if n in names}
    return {n: loaded[n] for n in names}
