"""torch state dicts (.pth, .pt, .bin, .ckpt, .tar): read with ``torch.load(weights_only=True)``, memory-mapped,
tensors only; written as torchvision's key set. The one format that imports torch, lazily."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import TORCH_BN_COUNTER
from resnet_tools.checkpoints.formats.base import Checkpoint, ModelRef, guarded, native_state, unwrap_state, why
from resnet_tools.checkpoints.lazy import LazyArray
from resnet_tools.core.backends import load_backend


def read_torch(path: Path, _model: ModelRef) -> Checkpoint:
    load_backend("torch")
    import torch

    try:  # untrusted pickles: tensors only; memory-mapped, so a tensor is read when it is asked for
        with warnings.catch_warnings():  # torch's note on a plain pickle's protocol: our error line says it all
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise CheckpointError(f"cannot read {path} as a torch checkpoint: {why(exc)}") from None
        obj = _torch_load_whole(path)  # the legacy (pre-zip) format cannot be memory-mapped
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {why(exc)}") from None
    obj, notes, container = unwrap_state(obj, lambda v: isinstance(v, torch.Tensor), path)
    widened = sum(1 for v in obj.values() if v.dtype == torch.bfloat16)
    native = {}
    for k in list(obj):  # popped: each tensor is let go once its canonical copy exists (the map step)
        v = obj.pop(k)
        if k.endswith(TORCH_BN_COUNTER):
            continue  # torch-only BN counter, not a weight
        try:
            dtype = np.float32 if v.dtype == torch.bfloat16 else torch.empty(0, dtype=v.dtype).numpy().dtype
        except (TypeError, RuntimeError):
            raise CheckpointError(f"{path}: {k} is {v.dtype}, which numpy cannot hold") from None
        native[k] = LazyArray(tuple(v.shape), dtype, guarded(path, functools.partial(_torch_numpy, v)))
    if widened:
        notes.append(f"{widened} bfloat16 tensor(s) read as float32 (exact: numpy has no bfloat16)")
    meta = {"source_framework": "torch", "source_version": torch.__version__}
    return Checkpoint({}, meta, notes=notes, container=container, native=native, framework="torch")


def _torch_load_whole(path: Path) -> Any:
    import torch

    try:
        with warnings.catch_warnings():  # as in read_torch
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {why(exc)}") from None


def _torch_numpy(tensor: Any) -> np.ndarray:
    """A torch tensor's values as numpy (bfloat16 widened to float32: exact). It may share the file's
    mapped memory: every layout transform after it (:func:`weights_from_native`) makes the canonical copy."""
    import torch

    t = tensor.float() if tensor.dtype == torch.bfloat16 else tensor
    array: np.ndarray = t.detach().cpu().numpy()
    return array


def write_torch_state(obj: Any, path: Path) -> None:
    """``torch.save`` of a native state object (nested dicts of arrays), each array as a tensor."""
    load_backend("torch")
    import torch

    def tensors(x: Any) -> Any:
        return {k: tensors(v) for k, v in x.items()} if isinstance(x, dict) else torch.from_numpy(np.asarray(x))

    with open(path, "wb") as fh:  # a file object: the archive's root is "archive", not our temp file's name
        torch.save(tensors(obj), fh)


def write_torch(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    load_backend("torch")
    import torch

    state = {}
    for key, array in native_state(ckpt, spec, "torch").items():
        state[key] = torch.from_numpy(np.asarray(array))
        if key.endswith(".running_var"):  # torchvision's key set: each BN ends with its batch counter
            state[key.removesuffix("running_var") + TORCH_BN_COUNTER] = torch.tensor(0)
    with open(path, "wb") as fh:  # a file object: the archive's root is "archive", not our temp file's name
        torch.save(state, fh)
