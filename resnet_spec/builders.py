"""One builder function per zoo model (``resnet50(...)``), generated from the spec for each backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resnet_spec.spec import get_spec, list_models


def describe(name: str) -> str:
    """One line: variant, block and depths, as the builders' docstrings say."""
    s = get_spec(name)
    return f"{name}: ResNet {s.variant}, {s.block} blocks, depths {'-'.join(map(str, s.depths))}"


def make_builders(create_model: Callable[..., Any], namespace: dict[str, Any], backend: str) -> list[str]:
    """Define ``namespace[name] = builder`` for every zoo model; return the names defined."""
    for name in list_models():

        def builder(*, num_classes: int = 1000, _name: str = name, **overrides: Any) -> Any:
            return create_model(_name, num_classes=num_classes, **overrides)

        builder.__name__ = builder.__qualname__ = name
        builder.__doc__ = f"Build {describe(name)} ({backend}). Options as in create_model()."
        builder.__module__ = namespace["__name__"]
        namespace[name] = builder
    return list_models()
