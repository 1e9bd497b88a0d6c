"""A ResNet someone else wrote (a tutorial's, a student's ``nn.Module``): what ``--reference`` and the course's
checker need to load it, run it and watch it run. The same names in every backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

#: The layers a ResNet's weights live in (matched on the class name, so a subclass of ours counts).
LAYER_TYPES = ("Conv2d", "BatchNorm2d", "Linear")
#: The naming and layouts of :func:`state_numpy`: torch's own.
VIEW = "torch"


def is_model(obj: object) -> bool:
    return isinstance(obj, torch.nn.Module)


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy())


def state_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's state_dict as numpy arrays, under its own keys."""
    return {k: to_numpy(v) for k, v in model.state_dict().items()}


def load_state(model: torch.nn.Module, native: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Load ``native`` (numpy arrays under the model's keys) and switch to eval mode; (missing, unexpected) keys.
    ``num_batches_tracked`` counters are not weights: their absence is not missing."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in native.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.eval()
    return [k for k in missing if not k.endswith("num_batches_tracked")], list(unexpected)


def layer_hint(layer: Any) -> str | None:
    """What in this layer's settings makes it compute otherwise than the zoo's (None: nothing known): a conv that
    does not pad (k - 1) / 2 on every side, as every conv of the zoo does."""
    if not isinstance(layer, torch.nn.Conv2d) or isinstance(layer.padding, str):
        return None
    k, d = layer.kernel_size[0], layer.dilation[0]
    want = d * (k - 1) // 2
    if tuple(layer.padding) != (want, want):
        return f"a {k}x{k} conv with padding={layer.padding[0]}; the zoo's pads {want} on every side (padding={want})"
    return None


def named_layers(model: torch.nn.Module) -> dict[str, Any]:
    """Every submodule under its path (the model itself left out)."""
    return {name: m for name, m in model.named_modules() if name}


def run_watched(model: torch.nn.Module, x: np.ndarray, watch: Callable[[str, Any, Any], None]) -> np.ndarray:
    """One forward pass without gradients, calling ``watch(path, input, output)`` after every submodule runs;
    the logits."""
    handles = [
        layer.register_forward_hook(lambda _m, i, o, p=path: watch(p, i[0] if isinstance(i, tuple) and i else i, o))
        for path, layer in named_layers(model).items()
    ]
    try:
        with torch.no_grad():
            return to_numpy(model(torch.from_numpy(x)))
    finally:
        for h in handles:
            h.remove()
