"""paddle state dicts (.pdparams) without importing paddle: read through a restricted unpickler that accepts numpy
arrays and plain containers only (``paddle.load`` would run whatever a crafted file asks), written as paddle.save
writes them."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_tools.checkpoints.formats.base import Checkpoint, ModelRef, native_state, unwrap_state, why
from resnet_tools.checkpoints.lazy import LazyArray

# --8<-- [start:safe-unpickle]
#: What a paddle.save state dict pickles: numpy arrays (and numpy scalars) in plain containers.
_PADDLE_PICKLE_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}
#: paddle 2.x+ stores this mapping of structured names next to the tensors; paddle.load drops it too.
_PADDLE_NAME_TABLE = "StructuredToParameterName@@"


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles arrays and plain containers only: ``paddle.load`` unpickles with no restriction, so a
    crafted ``.pdparams`` would run code when read. Anything else is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PADDLE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise CheckpointError(
            f"refusing to load: it asks to run {module}.{name} (a paddle state dict holds "
            f"only arrays); the file is not a plain checkpoint and may be malicious"
        )


# --8<-- [end:safe-unpickle]


def read_paddle(path: Path, _model: ModelRef) -> Checkpoint:
    """Read a ``.pdparams`` through :class:`_ArraysOnlyUnpickler` (no paddle import, no code run)."""
    try:
        with open(path, "rb") as fh:
            obj = _ArraysOnlyUnpickler(fh).load()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise CheckpointError(f"cannot read {path} as a paddle checkpoint: {type(exc).__name__}: {why(exc)}") from None
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k != _PADDLE_NAME_TABLE}
    obj, notes, container = unwrap_state(obj, lambda v: isinstance(v, np.ndarray), path)
    meta = {"source_framework": "paddle"}
    return Checkpoint({}, meta, notes=notes, container=container, native=obj, framework="paddle")


def write_paddle(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """What ``paddle.save(model.state_dict())`` writes, without importing paddle: a protocol-4 pickle of
    ``{native key: numpy array}`` in paddle.vision's key order (``paddle.load`` + ``set_state_dict`` read
    it; so does :class:`_ArraysOnlyUnpickler`). paddle's own file adds a table of its internal parameter
    names (``conv2d_0.w_0``), which loading by key does not use."""
    write_pickled_state(native_state(ckpt, spec, "paddle"), path)


def write_pickled_state(state: Any, path: Path) -> None:
    """A protocol-4 pickle of numpy arrays (lazy ones read one at a time) in plain dicts, as paddle.save."""
    with open(path, "wb") as fh:
        pickler = _StreamingPickler(fh, protocol=4)
        pickler.fast = True  # no memo: it would keep every array's pickled bytes until the end (2x memory)
        pickler.dump(state)


class _StreamingPickler(pickle.Pickler):
    """Pickles a lazy tensor as the array it reads to (the same bytes as pickling that array), so only
    the tensor being written is in memory."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, LazyArray):
            return np.asarray(obj).__reduce_ex__(4)
        return NotImplemented
