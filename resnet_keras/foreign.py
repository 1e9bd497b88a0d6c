"""A ResNet someone else wrote with Keras' functional API (a tutorial's, a student's ``keras.Model``): what the
course's checker needs to load it, run it and watch it run. The same names in every backend.

Keras has no forward hooks; a functional model is its graph, so every layer's input and output are known
tensors: one probe model returns them all, and ``run_watched`` reports them layer by layer in the graph's
order, as hooks would. Feature maps are reported NCHW (the checker compares them with the zoo's in that
layout), and the weights are presented as torch names them (``VIEW``): module path ``.weight``, OIHW
kernels, ``[out, in]`` Dense kernels, ``running_mean``/``running_var``. A subclassed model (``call`` written
by hand) has no graph to read: it is refused with what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from resnet_spec import layouts
from resnet_spec.views import Value, torch_view

#: The layers a ResNet's weights live in (matched on the class name, so a subclass of ours counts).
LAYER_TYPES = ("Conv2D", "BatchNormalization", "Dense")
#: The naming and layouts of :func:`state_numpy` (the structural mapping reads a Keras model as a torch one).
VIEW = "torch"
#: Layer class -> its variables as torch names and lays them out (from the Conventions record).
_ATTRS = torch_view("keras", LAYER_TYPES)


def is_model(obj: object) -> bool:
    return isinstance(obj, keras.Model)


def to_numpy(tensor: Any) -> np.ndarray:
    return tensor.array if isinstance(tensor, Value) else np.asarray(keras.ops.convert_to_numpy(tensor))


def _graph_layers(model: keras.Model) -> list[Any]:
    """The functional model's layers in the graph's order (input layers left out); a subclassed model: refused."""
    if not hasattr(model, "_operations") or not getattr(model, "inputs", None):
        raise ValueError(
            f"{type(model).__name__} is a subclassed Keras model: its forward pass is Python, not a graph the "
            f"checker can follow. Build it with the functional API (keras.Input, then layers called on tensors)"
        )
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _kind(layer: Any) -> str | None:
    return next((k for k in _ATTRS if k in {c.__name__ for c in type(layer).__mro__}), None)


def state_numpy(model: keras.Model) -> dict[str, np.ndarray]:
    """The weights of every Conv2D, BatchNormalization and Dense layer, as torch names and lays them out."""
    out: dict[str, np.ndarray] = {}
    for layer in _graph_layers(model):
        kind = _kind(layer)
        for a in _ATTRS[kind] if kind else ():
            variable = getattr(layer, a.native, None)
            if variable is not None:
                out[f"{layer.name}.{a.torch}"] = a.to_torch(np.asarray(keras.ops.convert_to_numpy(variable)))
    return out


def load_file(model: keras.Model, path: Path) -> None:
    """Keras' own loader: a ``.weights.h5`` (or a ``.keras`` archive's weights) of this model, by its layer order
    (``--reference`` with a file of a hand-written model, whose names no rule knows)."""
    model.load_weights(str(path))


def load_state(model: keras.Model, native: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Assign ``native`` (torch's names and layouts, as :func:`state_numpy` gives them); (missing, unexpected)."""
    wanted = dict(native)
    missing: list[str] = []
    for layer in _graph_layers(model):
        kind = _kind(layer)
        for a in _ATTRS[kind] if kind else ():
            variable, key = getattr(layer, a.native, None), f"{layer.name}.{a.torch}"
            if variable is None:
                continue
            if key not in wanted:
                missing.append(key)
                continue
            variable.assign(a.to_native(np.asarray(wanted.pop(key))).astype(variable.dtype))
    return missing, list(wanted)


def layer_hint(layer: Any) -> str | None:
    """What in this layer's settings makes it compute otherwise than the zoo's (None: nothing known)."""
    strided = type(layer).__name__ == "Conv2D" and max(layer.strides) > 1 and max(layer.kernel_size) > 1
    if strided and layer.padding == "same":
        return (
            f"{layer.name} uses padding='same' with stride {layer.strides[0]}: Keras then pads the bottom and right "
            f"only, the zoo pads {layer.kernel_size[0] // 2} on every side; write ZeroPadding2D"
            f"({layer.kernel_size[0] // 2}) before it and padding='valid'"
        )
    return None


def named_layers(model: keras.Model) -> dict[str, Any]:
    """Every layer under its name (the functional model's layers are flat)."""
    return {layer.name: layer for layer in _graph_layers(model)}


def _nchw(array: np.ndarray) -> np.ndarray:
    return layouts.nhwc_to_nchw(array) if array.ndim == 4 else array


def run_watched(model: keras.Model, x: np.ndarray, watch: Callable[[str, Any, Any], None]) -> np.ndarray:
    """One eval-mode forward pass of an NCHW batch (given to a channels_last model as NHWC), calling
    ``watch(name, input, output)`` for every layer in the graph's order; the logits."""
    layers = _graph_layers(model)
    channels_last = model.inputs[0].shape[-1] == x.shape[1]
    inp = layouts.nchw_to_nhwc(x) if channels_last else x
    tensors = [model.inputs[0], *(layer.output for layer in layers)]
    probe = keras.Model(model.inputs[0], tensors)
    computed = [np.asarray(keras.ops.convert_to_numpy(v)) for v in probe(inp, training=False)]
    values = {id(t): Value(_nchw(a) if channels_last else a) for t, a in zip(tensors, computed, strict=True)}
    padding = {id(layer.output): layer for layer in layers if type(layer).__name__ == "ZeroPadding2D"}
    for layer in layers:
        first = layer.input[0] if isinstance(layer.input, list) else layer.input
        while id(first) in padding:  # a conv reads through its explicit padding, as torch's padding= does
            first = padding[id(first)].input
        watch(layer.name, values[id(first)], values[id(layer.output)])
    return np.asarray(keras.ops.convert_to_numpy(model(inp, training=False)))


def residual_blocks(model: keras.Model) -> list[tuple[str, list[str]]]:
    """The residual blocks, in the graph's order: (the layer whose output is the block's, the weight layers of
    the block). A block ends at an addition (and the activation right after it); it starts after the block's
    input: the latest layer both branches of the addition read from (the shortcut's source)."""
    layers = _graph_layers(model)
    order = {layer.name: j for j, layer in enumerate(layers)}
    by_name = {layer.name: layer for layer in layers}
    producer = {id(layer.output): layer for layer in layers}

    def feeds(layer: Any) -> list[Any]:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        return [producer[id(t)] for t in inputs if id(t) in producer]

    def ancestors(layer: Any) -> set[str]:
        seen: set[str] = set()
        stack = [layer]
        while stack:
            node = stack.pop()
            if node.name not in seen:
                seen.add(node.name)
                stack.extend(feeds(node))
        return seen

    blocks: list[tuple[str, list[str]]] = []
    for i, layer in enumerate(layers):
        branches = feeds(layer)
        if type(layer).__name__ != "Add" or len(branches) != 2:
            continue
        both = ancestors(branches[0]) & ancestors(branches[1])
        start = ancestors(layers[max(order[n] for n in both)]) if both else set()
        inside = sorted((n for n in ancestors(layer) - start if _kind(by_name[n])), key=order.__getitem__)
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        after = nxt is not None and feeds(nxt) == [layer] and type(nxt).__name__ in ("ReLU", "Activation")
        blocks.append(((nxt if after and nxt is not None else layer).name, inside))
    return blocks
