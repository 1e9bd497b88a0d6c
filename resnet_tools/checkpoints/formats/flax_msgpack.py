"""Flax's own files: ``flax.serialization.to_bytes`` / ``msgpack_serialize`` of a model's variables (Flax's
examples/imagenet: ``{"params": ..., "batch_stats": ...}``, or a train state holding both, or an NNX model's
``nnx.state(model).to_pure_dict()``). Read and written with msgpack alone: no flax import, nothing executed; an
array is only ever rebuilt from its shape, a dtype name from a fixed list, and its bytes. Orbax checkpoint
directories of the same trees are read and written by orbax (JSON metadata and tensorstore data; no pickle).

Flax's example numbers its blocks over the network (``ResNetBlock_5``), so the reader reads the stage depths off
the blocks (a new stage where a block projects its shortcut or changes the width) before it names anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.weights import validate_weights
from resnet_tools.checkpoints.formats.base import (
    ASSUMED_KEY,
    PRODUCER,
    Checkpoint,
    ModelRef,
    file_metadata,
    native_state,
    weights_from_native,
    why,
)

#: flax.serialization's msgpack extension codes (flax/serialization.py ``_MsgpackExtType``).
_EXT_NDARRAY, _EXT_COMPLEX, _EXT_NPSCALAR = 1, 2, 3
#: The dtype names an array of this file may have (numpy's names, as flax writes ``arr.dtype.name``).
_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "bool")
#: Where this tool keeps its metadata in a file it writes (a top-level key Flax's loaders leave alone).
META_KEY = "__resnet_xf__"
_BLOCK = re.compile(r"^(\w+?)_(\d+)$")
_CHUNKED = "__msgpack_chunked_array__"


def _array(data: bytes) -> np.ndarray:
    """One ndarray extension: ``(shape, dtype name, C-order bytes)``, each checked before numpy sees it."""
    import msgpack

    shape, name, buffer = msgpack.unpackb(data, raw=True)
    name = name.decode() if isinstance(name, bytes) else name
    if name not in _DTYPES:
        raise ValueError(f"an array of dtype {name!r} (not a weight's)")
    if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"an array of shape {shape!r}")
    dtype = np.dtype(name)
    if len(buffer) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise ValueError(f"an array of shape {tuple(shape)} {name} holding {len(buffer)} bytes")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def _ext(code: int, data: bytes) -> Any:
    if code == _EXT_NDARRAY:
        return _array(data)
    if code == _EXT_NPSCALAR:
        import msgpack

        name, buffer = msgpack.unpackb(data, raw=True)
        name = name.decode() if isinstance(name, bytes) else name
        if name not in _DTYPES or len(buffer) != np.dtype(name).itemsize:
            raise ValueError(f"a scalar of dtype {name!r}")
        return np.frombuffer(buffer, dtype=np.dtype(name))[0]
    raise ValueError(f"msgpack extension {code} ({'complex' if code == _EXT_COMPLEX else 'unknown'}), not a weight")


def _flat(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            if _CHUNKED in value:
                raise ValueError(f"{path} is a chunked array (over 1 GiB): not a ResNet weight")
            if set(value) == {"value"} and not isinstance(value["value"], dict):  # an NNX Variable's state
                yield path, value["value"]
                continue
            yield from _flat(value, f"{path}/")
        else:
            yield path, value


def _variables(tree: Any, path: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The model's variables by native key (collections dropped: ``params/`` and ``batch_stats/`` hold disjoint
    names), this tool's metadata, notes."""
    if not isinstance(tree, dict):
        raise CheckpointError(f"cannot read {path} as Flax variables: the file holds a {type(tree).__name__}")
    meta = tree.pop(META_KEY, {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{path}: its {META_KEY} entry is not what this tool writes")
    notes = []
    if "params" in tree:  # Flax's variables, or a train state (step, opt_state, ... left out)
        if "batch_stats" not in tree:
            raise CheckpointError(f"{path} has params but no batch_stats: save the model's BN statistics too")
        left = sorted(k for k in tree if k not in ("params", "batch_stats"))
        if left:
            notes.append(f"Flax train state: {', '.join(left)} left out (weights and BN statistics read)")
        tree = {"params": tree["params"], "batch_stats": tree["batch_stats"]}
        native = {k.split("/", 1)[1]: v for k, v in _flat(tree)}
    else:  # an NNX model's pure dict
        native = dict(_flat(tree))
    return native, meta, notes


def flax_depths(native: dict[str, Any]) -> tuple[int, ...]:
    """The stage depths of Flax-example-named variables: blocks numbered 0..n-1 over the network, a new stage at a
    block that projects its shortcut (``conv_proj``) or whose first conv takes another width than the last block
    gave. One ValueError if the blocks are not numbered so."""
    blocks: dict[int, dict[str, tuple[int, ...]]] = {}
    kinds = set()
    for key, value in native.items():
        head, _, rest = key.partition("/")
        m = _BLOCK.match(head)
        if m and "/" in rest:
            kinds.add(m[1])
            blocks.setdefault(int(m[2]), {})[rest.rsplit("/", 1)[0]] = tuple(np.shape(value))
    if len(kinds) > 1:
        raise ValueError(f"blocks of several kinds ({', '.join(sorted(kinds))})")
    if sorted(blocks) != list(range(len(blocks))):
        raise ValueError(f"blocks numbered {sorted(blocks)[:8]}..., not 0..{len(blocks) - 1}")
    depths: list[int] = []
    last_out = None
    for k in range(len(blocks)):
        parts = blocks[k]
        convs = sorted(p for p in parts if re.fullmatch(r"Conv_\d+", p))
        if "Conv_0" not in parts:
            raise ValueError(f"block {k} has no Conv_0")
        width_in, width_out = parts["Conv_0"][2], parts[convs[-1]][3]
        if not depths or "conv_proj" in parts or width_in != last_out:
            depths.append(0)
        depths[-1] += 1
        last_out = width_out
    return tuple(depths)


def read_flax(path: Path, _model: ModelRef) -> Checkpoint:
    """A ``flax.serialization`` msgpack file of a ResNet's variables (see the module's docstring)."""
    import msgpack

    try:
        tree = msgpack.unpackb(path.read_bytes(), ext_hook=_ext, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CheckpointError(f"cannot read {path} as a Flax msgpack checkpoint: {exc}") from None
    return _checkpoint(tree, path, "a Flax msgpack checkpoint")


def read_orbax(path: Path, _model: ModelRef) -> Checkpoint:
    """An orbax-checkpoint directory (``ocp.StandardCheckpointer().save(path, nnx.state(model))``, or of Flax's
    variables), restored by orbax itself as host arrays: JSON metadata and tensorstore data, no pickle, no code."""
    import orbax.checkpoint as ocp

    try:
        with ocp.StandardCheckpointer() as checkpointer:
            tree = checkpointer.restore(path.resolve())
            custom = checkpointer.metadata(path.resolve()).custom_metadata
    except Exception as exc:  # orbax and tensorstore raise many kinds; each is one line here
        raise CheckpointError(f"cannot read {path} as an orbax checkpoint: {why(exc)}") from None
    tree = _host(tree)
    if isinstance(tree, dict) and custom and META_KEY not in tree:  # where write_orbax keeps this tool's metadata
        tree[META_KEY] = custom
    return _checkpoint(tree, path, "an orbax checkpoint")


def _host(tree: Any) -> Any:
    """A restored tree with numpy leaves (orbax gives jax arrays)."""
    if isinstance(tree, dict):
        return {str(k): _host(v) for k, v in tree.items()}
    return np.asarray(tree)


def _checkpoint(tree: Any, path: Path, what: str) -> Checkpoint:
    """Variables in either of Flax's files, named and checked the same way."""
    try:
        native, meta, notes = _variables(tree, path)
        depths = flax_depths(native)
    except CheckpointError:
        raise
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read {path} as {what}: {exc}") from None
    if meta.get("producer") != PRODUCER:  # Flax's example or the user's own: its model pads as the example's
        meta = {ASSUMED_KEY: json.dumps({"padding": "same"})}
        notes.append(
            "a Flax file this tool did not write is read as Flax's examples/imagenet model, whose strided 3x3 convs "
            "and stem max-pool pad TensorFlow's SAME, unless --assume padding=symmetric says yours pads every side"
        )
    weights = weights_from_native(native, "flax", path, depths=depths)
    return Checkpoint(weights, {**meta, "source_framework": "flax"}, notes=notes)


def _example_variables(ckpt: Checkpoint, spec: ModelSpec) -> dict[str, Any]:
    """``{"params": ..., "batch_stats": ...}`` in Flax's example names and layouts, checked before anything is
    written."""
    validate_weights(spec, "flax", ckpt.weights)
    tree: dict[str, Any] = {"params": {}, "batch_stats": {}}
    for key, tensor in native_state(ckpt, spec, "flax").items():
        *modules, attr = key.split("/")
        node = tree["batch_stats" if attr in ("mean", "var") else "params"]
        for m in modules:
            node = node.setdefault(m, {})
        node[attr] = np.ascontiguousarray(np.asarray(tensor))
    return tree


def write_orbax(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """Flax's example variables as an orbax-checkpoint folder at ``path`` (which must not exist), this tool's
    metadata in orbax's own ``custom_metadata``: ``ocp.StandardCheckpointer().restore(path)`` gives the variables."""
    import orbax.checkpoint as ocp

    tree = _example_variables(ckpt, spec)
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path.resolve(), tree, custom_metadata=file_metadata(spec, ckpt))
            checkpointer.wait_until_finished()
    except (ValueError, TypeError) as exc:  # orbax's own refusals; OSError is the caller's (write_errors)
        raise CheckpointError(f"cannot write {path} as an orbax checkpoint: {why(exc)}") from None


def write_flax(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """Flax's example layout, ``{"params": ..., "batch_stats": ..., "__resnet_xf__": metadata}``, as
    ``flax.serialization.to_bytes`` writes it (``msgpack_restore`` and ``from_bytes`` read it back)."""
    import msgpack

    tree: dict[str, Any] = _example_variables(ckpt, spec)
    tree[META_KEY] = file_metadata(spec, ckpt)

    def pack(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.name not in _DTYPES:
                raise CheckpointError(f"cannot write a {obj.dtype} array to a Flax msgpack file")
            data = msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True)
            return msgpack.ExtType(_EXT_NDARRAY, data)
        raise TypeError(f"cannot pack {type(obj).__name__}")

    with open(path, "wb") as fh:
        fh.write(msgpack.packb(tree, default=pack, use_bin_type=True))
