"""A ResNet someone else wrote as a ``flax.nnx.Module`` (a tutorial's, a student's): what ``--reference`` and the
course's checker need to load it, run it and watch it run. The same names in every backend.

NNX has no forward hooks. ``run_watched`` wraps the ``__call__`` of the model's layer classes for one forward pass
(restored after it, whatever happens), so every layer reports the array it read and the one it wrote, in the order
they run, as torch's hooks do. As Keras' module does, this one presents the model in torch's view (``VIEW``):
module paths joined by dots, ``weight``/``bias``/``running_mean``/``running_var``, OIHW kernels, ``[out, in]``
Linear weights, and feature maps NCHW, so the structural mapping and the checker read an NNX model as they read a
torch one. The model runs in eval mode (``model.eval()``: BN on its running statistics).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from resnet_spec import layouts
from resnet_spec.views import Value, ViewedAttr, torch_view

#: The layers a ResNet's weights live in (matched on the class name, so a subclass counts).
LAYER_TYPES = ("Conv", "BatchNorm", "Linear")
#: The naming and layouts of :func:`state_numpy`: torch's (the structural mapping reads an NNX model as a torch one).
VIEW = "torch"
#: Layer class -> its variables as torch names and lays them out (from the Conventions record).
_ATTRS = torch_view("flax", LAYER_TYPES)
_WATCHING = threading.Lock()  # one watched run at a time: the wrapped __call__ belongs to the class


def is_model(obj: object) -> bool:
    return isinstance(obj, nnx.Module)


def to_numpy(tensor: Any) -> np.ndarray:
    return tensor.array if isinstance(tensor, Value) else np.asarray(tensor)


def _kind(layer: Any) -> str | None:
    return next((k for k in _ATTRS if k in {c.__name__ for c in type(layer).__mro__}), None)


def _submodules(node: Any, at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], nnx.Module]]:
    """Every module under ``node`` with its path, each before its children and in the order they were assigned
    (``nnx.graph.iter_graph`` sorts attribute names: ``blocks`` would come before ``conv1``, the stem)."""
    for name, value in vars(node).items():
        items = (
            enumerate(value) if isinstance(value, list | tuple) else value.items() if isinstance(value, dict) else ()
        )
        for key, child in [(name, value), *((f"{name}.{k}", v) for k, v in items)]:
            if isinstance(child, nnx.Module) and not name.startswith("_pytree__"):
                path = (*at, *str(key).split("."))
                yield path, child
                yield from _submodules(child, path)


def named_layers(model: nnx.Module) -> dict[str, Any]:
    """Every submodule under its path, joined by dots as torch's are, in the order the model assigned them (the
    model itself left out)."""
    return {".".join(p): m for p, m in _submodules(model, ())}


def _variables(model: nnx.Module) -> Iterator[tuple[str, nnx.Variable[Any], ViewedAttr]]:
    """(torch-view key, the variable, its names and layouts) for every weight of a conv, BN or Linear layer."""
    for path, layer in named_layers(model).items():
        kind = _kind(layer)
        for a in _ATTRS[kind] if kind else ():
            variable = getattr(layer, a.native, None)
            if isinstance(variable, nnx.Variable):
                yield f"{path}.{a.torch}", variable, a


def state_numpy(model: nnx.Module) -> dict[str, np.ndarray]:
    """The weights of every Conv, BatchNorm and Linear layer, as torch names and lays them out."""
    return {key: a.to_torch(np.asarray(v.get_value())) for key, v, a in _variables(model)}


def load_state(model: nnx.Module, native: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Assign ``native`` (torch's names and layouts, as :func:`state_numpy` gives them) and put the model in eval
    mode; (missing, unexpected) keys."""
    wanted = dict(native)
    missing: list[str] = []
    for key, variable, a in _variables(model):
        if key not in wanted:
            missing.append(key)
            continue
        value = a.to_native(np.asarray(wanted.pop(key)))
        variable.set_value(jnp.asarray(np.ascontiguousarray(value), dtype=variable.get_value().dtype))
    model.eval()
    return missing, list(wanted)


def _file_tree(path: Path) -> dict[tuple[str, ...], np.ndarray]:
    """A file of an NNX model's state, flattened to {path: array}: flax.serialization's msgpack (its own reader:
    arrays from shapes, dtypes and bytes, nothing executed) or an orbax-checkpoint folder (orbax's reader)."""
    if path.is_dir():
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:
            tree = checkpointer.restore(path.resolve())
    else:
        from flax import serialization

        tree = serialization.msgpack_restore(path.read_bytes())
    flat: dict[tuple[str, ...], np.ndarray] = {}

    def walk(node: Any, at: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, (*at, str(k)))
        else:
            flat[at[:-1] if at and at[-1] == "value" else at] = np.asarray(node)  # orbax keeps a Variable's value

    walk(tree, ())
    return flat


def load_file(model: nnx.Module, path: Path) -> None:
    """The model's own state from a file saved of it (``flax.serialization.to_bytes(nnx.state(model)
    .to_pure_dict())`` or ``ocp.StandardCheckpointer().save(dir, nnx.state(model))``), by its state paths; a
    missing, unexpected or misshapen variable is refused. Eval mode after."""
    held = {tuple(map(str, p)): v for p, v in nnx.graph.iter_graph(model) if isinstance(v, nnx.Variable)}
    found = _file_tree(path)
    missing = ["/".join(p) for p in held if p not in found]
    unexpected = ["/".join(p) for p in found if p not in held]
    if missing or unexpected:
        raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for p, variable in held.items():
        current = variable.get_value()
        if tuple(found[p].shape) != tuple(current.shape):
            raise ValueError(f"{'/'.join(p)} is {list(found[p].shape)} in the file, {list(current.shape)} in the model")
        variable.set_value(jnp.asarray(found[p], dtype=current.dtype))
    model.eval()


def layer_hint(layer: Any) -> str | None:
    """What in this layer's settings makes it compute otherwise than the zoo's: a strided conv wider than 1x1 with
    ``'SAME'`` padding (TensorFlow's rule: on an even input the extra pixel goes at the bottom and right; the zoo pads
    every side alike). A 1x1 conv with 'SAME' (NNX's default) pads nothing: no hint."""
    if not isinstance(layer, nnx.Conv) or not isinstance(layer.padding, str) or layer.padding.upper() != "SAME":
        return None
    k, stride = int(max(np.atleast_1d(layer.kernel_size))), int(max(np.atleast_1d(layer.strides or 1)))
    if stride == 1 or k == 1:
        return None
    return (
        f"a {k}x{k} conv with padding='SAME' and stride {stride} pads one pixel more at the bottom and right than at "
        f"the top and left on even sizes; the zoo pads {k // 2} on every side: write padding={k // 2}"
    )


def _nchw(array: np.ndarray) -> np.ndarray:
    return layouts.nhwc_to_nchw(array) if array.ndim == 4 else array


@contextmanager
def _watching(model: nnx.Module, watch: Callable[[str, Any, Any], None]) -> Iterator[None]:
    """Each layer class's ``__call__`` reports (its path, what it read, what it wrote) after it runs, for this
    model's layers only; a layer that calls its parent class's ``__call__`` reports once. Restored on exit."""
    paths = {id(m): p for p, m in named_layers(model).items()}
    values: dict[int, Value] = {}
    keep: list[Any] = []  # every array seen stays alive, so no id is reused during the pass

    def value(a: Any) -> Any:
        if not isinstance(a, jax.Array):
            return a
        if id(a) not in values:
            keep.append(a)
            values[id(a)] = Value(_nchw(np.asarray(a)))
        return values[id(a)]

    running: set[int] = set()
    saved: dict[type, Any] = {}

    def wrap(original: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if id(self) in running or id(self) not in paths:
                return original(self, *args, **kwargs)
            running.add(id(self))
            try:
                out = original(self, *args, **kwargs)
            finally:
                running.discard(id(self))
            watch(paths[id(self)], value(args[0]) if args else None, value(out))
            return out

        return call

    with _WATCHING:
        try:
            for cls in {type(m) for p, m in named_layers(model).items()}:
                saved[cls] = cls.__dict__.get("__call__")
                cls.__call__ = wrap(cls.__call__)  # type: ignore[method-assign]
            yield
        finally:
            for cls, own in saved.items():
                if own is None:
                    del cls.__call__  # it inherited its __call__: inherit it again
                else:
                    cls.__call__ = own  # type: ignore[method-assign]


def run_watched(model: nnx.Module, x: np.ndarray, watch: Callable[[str, Any, Any], None]) -> np.ndarray:
    """One eval-mode forward pass of an NCHW batch (given to the model NHWC, Flax's layout), calling ``watch(path,
    input, output)`` after every submodule runs, inputs and outputs NCHW; the logits."""
    model.eval()
    with _watching(model, watch):
        out = model(jnp.asarray(layouts.nchw_to_nhwc(x)))
    return np.asarray(out)
