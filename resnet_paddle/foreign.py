"""A ResNet someone else wrote (a tutorial's, a student's ``nn.Layer``): what ``--reference`` and the course's
checker need to load it, run it and watch it run. The same names in every backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import paddle

#: The layers a ResNet's weights live in (matched on the class name, so a subclass of ours counts).
LAYER_TYPES = ("Conv2D", "BatchNorm2D", "BatchNorm", "Linear")
#: The naming and layouts of :func:`state_numpy`: paddle's own.
VIEW = "paddle"


def is_model(obj: object) -> bool:
    return isinstance(obj, paddle.nn.Layer)


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.numpy())


def state_numpy(model: paddle.nn.Layer) -> dict[str, np.ndarray]:
    """The model's state_dict as numpy arrays, under its own keys."""
    return {k: to_numpy(v) for k, v in model.state_dict().items()}


def load_state(model: paddle.nn.Layer, native: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Load ``native`` (numpy arrays under the model's keys) and switch to eval mode; (missing, unexpected) keys."""
    missing, unexpected = model.set_state_dict({k: np.ascontiguousarray(v) for k, v in native.items()})
    model.eval()
    return list(missing), list(unexpected)


def layer_hint(layer: Any) -> str | None:
    """What in this layer's settings makes it compute otherwise than the zoo's (None: nothing known): a conv that
    does not pad (k - 1) / 2 on every side, as every conv of the zoo does."""
    if not isinstance(layer, paddle.nn.Conv2D) or not isinstance(layer._padding, int):
        return None
    k, d = layer._kernel_size[0], layer._dilation[0]
    want = d * (k - 1) // 2
    if layer._padding != want:
        return f"a {k}x{k} conv with padding={layer._padding}; the zoo's pads {want} on every side (padding={want})"
    return None


def named_layers(model: paddle.nn.Layer) -> dict[str, Any]:
    """Every sublayer under its path (the model itself left out)."""
    return {name: m for name, m in model.named_sublayers() if name}


def run_watched(model: paddle.nn.Layer, x: np.ndarray, watch: Callable[[str, Any, Any], None]) -> np.ndarray:
    """One forward pass without gradients, calling ``watch(path, input, output)`` after every sublayer runs;
    the logits."""
    handles = [
        layer.register_forward_post_hook(
            lambda _m, i, o, p=path: watch(p, i[0] if isinstance(i, tuple) and i else i, o)
        )
        for path, layer in named_layers(model).items()
    ]
    try:
        with paddle.no_grad():
            return to_numpy(model(paddle.to_tensor(x)))
    finally:
        for h in handles:
            h.remove()
