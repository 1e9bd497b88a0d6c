"""A ResNet someone else wrote as a ``flax.nnx.Module``: what ``--reference`` and the course's checker need to load
it, run it and watch it run. The same names in every backend; watching a run is not built yet for Flax."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from resnet_flax.weights import native_state, state_key
from resnet_spec.errors import ResNetError

#: The layers a ResNet's weights live in (matched on the class name).
LAYER_TYPES = ("Conv", "BatchNorm", "Linear")
#: The naming and layouts of :func:`state_numpy`: Flax's own (state paths, HWIO kernels).
VIEW = "flax"


def is_model(obj: object) -> bool:
    return isinstance(obj, nnx.Module)


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor)


def state_numpy(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's variables as numpy arrays, under their state paths."""
    return {state_key(p): np.asarray(v.get_value()) for p, v in nnx.state(model).flat_state()}


def load_state(model: nnx.Module, native: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Load ``native`` (numpy arrays under the model's state paths); (missing, unexpected) keys."""
    held = native_state(model)
    for key, value in native.items():
        if key in held:
            held[key].set_value(jnp.asarray(np.ascontiguousarray(value), dtype=held[key].get_value().dtype))
    return [k for k in held if k not in native], [k for k in native if k not in held]


def layer_hint(layer: Any) -> str | None:
    """What in this layer's settings makes it compute otherwise than the zoo's: a conv with ``'SAME'`` padding,
    which pads a stride-2 conv at the end only on an even input (the zoo pads both sides)."""
    if isinstance(layer, nnx.Conv) and layer.padding == "SAME" and max(np.atleast_1d(layer.strides)) > 1:
        return "a strided conv with padding='SAME' (pads the end only on even sizes); the zoo pads both sides"
    return None


def named_layers(model: nnx.Module) -> dict[str, Any]:
    """Every submodule under its path (the model itself left out)."""
    return {state_key(p): m for p, m in nnx.graph.iter_graph(model) if isinstance(m, nnx.Module) and p}


def run_watched(model: nnx.Module, x: np.ndarray, watch: Callable[[str, Any, Any], None]) -> np.ndarray:
    """Not built yet for Flax: refused in one line."""
    raise ResNetError("watching a Flax model's layers run is not built yet; check its torch or paddle version")
