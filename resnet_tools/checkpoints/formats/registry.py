"""The formats by name and extension, the content sniffer, and the two entry points every command reads and
writes checkpoints through."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.spec import list_models
from resnet_tools.checkpoints.formats.base import OPTIMIZER_PREFIX, Checkpoint, Format, ModelRef
from resnet_tools.checkpoints.formats.canonical import read_npz, read_safetensors, write_npz, write_safetensors
from resnet_tools.checkpoints.formats.flax_msgpack import read_flax, read_orbax, write_flax, write_orbax
from resnet_tools.checkpoints.formats.keras import (
    read_keras,
    read_keras_archive,
    read_keras_legacy,
    write_keras,
    write_keras_archive,
)
from resnet_tools.checkpoints.formats.pdparams import read_paddle, write_paddle, write_pickled_state
from resnet_tools.checkpoints.formats.pth import read_torch, write_torch, write_torch_state
from resnet_tools.checkpoints.lazy import dtype_of, materialize
from resnet_tools.checkpoints.request import PLAIN, MapRequest
from resnet_tools.core.files import write_errors

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "safetensors",
            (".safetensors",),
            None,
            read_safetensors,
            write_safetensors,
            "canonical names and layouts, with metadata (default interchange)",
        ),
        Format("npz", (".npz",), None, read_npz, write_npz, "canonical names and layouts for numpy users"),
        Format(
            "torch",
            (".pth", ".pt", ".bin", ".ckpt", ".tar"),
            "torch",
            read_torch,
            write_torch,
            "torch state dict (torchvision names, or your own; Lightning / EMA / compile wrappers read)",
            "torch",
            write_state=write_torch_state,
            code=True,
        ),
        Format(
            "paddle",
            (".pdparams",),
            "paddle",
            read_paddle,
            write_paddle,
            "paddle.vision-style state dict",
            write_state=write_pickled_state,
            code=True,
        ),
        Format(
            "keras",
            (".weights.h5",),
            "keras",
            read_keras,
            write_keras,
            "Keras 3 weights file (model.save_weights): keras.applications' layer order, nested models read",
            code=True,
        ),
        Format(
            "keras_archive",
            (".keras",),
            "keras",
            read_keras_archive,
            write_keras_archive,
            "Keras 3 model archive (model.save): loads with keras.models.load_model",
            write_imports="keras",
        ),
        Format(
            "keras_h5",
            (".h5",),
            "keras",
            read_keras_legacy,
            None,
            "legacy Keras / keras.applications HDF5 weights, read by layer name (read only)",
        ),
        Format(
            "flax",
            (".msgpack",),
            "flax",
            read_flax,
            write_flax,
            "flax.serialization msgpack of Flax's examples/imagenet variables (params + batch_stats), or an NNX "
            "model's pure state dict",
            code=True,
        ),
        Format(
            "orbax",
            (),
            "flax",
            read_orbax,
            write_orbax,
            "orbax-checkpoint folder of an NNX model's state or Flax's variables (written in the example's names)",
            "flax",
            folder=True,
        ),
    )
}


def is_orbax_folder(path: Path | str) -> bool:
    """Whether ``path`` is an orbax checkpoint folder (orbax writes ``_CHECKPOINT_METADATA`` in each)."""
    return Path(path).is_dir() and (Path(path) / "_CHECKPOINT_METADATA").is_file()


def format_for(path: Path | str, given: str | None = None) -> Format:
    """The format named by ``given`` or by the file extension (longest match: .weights.h5 before .h5)."""
    if given is not None:
        if given not in FORMATS:
            raise CheckpointError(f"unknown format {given!r}; known: {', '.join(FORMATS)}")
        return FORMATS[given]
    if is_orbax_folder(path):
        return FORMATS["orbax"]
    name = Path(path).name.lower()
    hits = [(ext, f) for f in FORMATS.values() for ext in f.extensions if name.endswith(ext)]
    if not hits:
        sniffed = sniff(Path(path))
        if sniffed is not None:
            return sniffed
        exts = ", ".join(e for f in FORMATS.values() for e in f.extensions)
        raise CheckpointError(
            f"unknown extension for {Path(path).name} and its content is no known checkpoint; known: {exts} "
            f"(or pass --format / --from / --to)"
        )
    return max(hits, key=lambda h: len(h[0]))[1]


#: The first pickled object of torch's legacy (pre-zip) format: its magic number.
_TORCH_LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")


def sniff(path: Path) -> Format | None:
    """The format of a file by its content (None when it is none we know or cannot be read): torch zip or
    legacy pickle, .keras and npz zips, HDF5 (Keras 3 or legacy), safetensors, a paddle pickle."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                return FORMATS["torch"]
            if "config.json" in names and any(n.startswith("model.weights") for n in names):
                return FORMATS["keras_archive"]
            return FORMATS["npz"] if names and all(n.endswith(".npy") for n in names) else None
        if head.startswith(b"\x89HDF"):
            import h5py

            with h5py.File(path, "r") as f:
                legacy = "layer_names" in f.get("model_weights", f).attrs
            return FORMATS["keras_h5" if legacy else "keras"]
        if head.startswith(_TORCH_LEGACY_MAGIC):
            return FORMATS["torch"]
        if head.startswith(b"\x80"):
            return FORMATS["paddle"]
        if len(head) > 8 and head[8:9] == b"{":
            return FORMATS["safetensors"]
    except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError):  # damaged: no format
        return None
    return None


def read_checkpoint(
    path: Path | str, fmt: Format, model: ModelRef = None, *, lazy: bool = False, how: MapRequest = PLAIN
) -> Checkpoint:
    """Read ``path`` in ``fmt`` into canonical weights: the format's reader, then for a state dict the map step
    (``resnet_tools.checkpoints.mapping``, as ``how`` asks). ``lazy``: tensors a format can leave in the file
    stay there as :class:`LazyArray` until read (a conversion then holds about one copy of the checkpoint)."""
    path = Path(path)
    if fmt.folder and not path.is_dir():
        raise CheckpointError(f"cannot read {path}: {'not a folder' if path.exists() else 'no such folder'}")
    if not fmt.folder and not path.is_file():
        raise CheckpointError(f"cannot read {path}: {'not a file' if path.exists() else 'no such file'}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"cannot read {path}: permission denied")
    if how.reference is not None and fmt.framework is not None and fmt.write_state is None:
        from resnet_tools.checkpoints.reference import read_through_model

        native, user = read_through_model(path, fmt.framework, how.reference)  # Keras': its own model reads it
        meta = {"source_framework": fmt.framework}
        ckpt = Checkpoint({}, meta, native=native, framework=fmt.framework, reader=user)
    else:
        ckpt = fmt.read(path, model)
    scalars = sorted(
        k for k, v in (ckpt.native or ckpt.weights).items() if np.ndim(v) == 0 and not k.startswith(OPTIMIZER_PREFIX)
    )  # a training checkpoint's optimizer state holds scalars (AdamW's step)
    if scalars:
        raise CheckpointError(
            f"{path}: {', '.join(scalars[:5])} {'is a scalar' if len(scalars) == 1 else 'are scalars'}"
            f"; every ResNet weight is a tensor (not a checkpoint of this zoo)"
        )
    if ckpt.native is not None and ckpt.framework is not None:
        from resnet_tools.checkpoints.mapping import map_state

        name = model.name if isinstance(model, ModelSpec) else model
        found = map_state(ckpt.native, ckpt.framework, path, name if name in list_models() else None, how,
                          ordered=ckpt.ordered, reader=ckpt.reader)  # fmt: skip
        ckpt.weights, ckpt.spec, more, ckpt.mapping = found
        ckpt.notes += more
        ckpt.native = None
    for key in [k for k in ckpt.weights if k.startswith(OPTIMIZER_PREFIX)]:  # a training checkpoint
        ckpt.optimizer[key.removeprefix(OPTIMIZER_PREFIX)] = ckpt.weights.pop(key)
    if ckpt.optimizer:
        ckpt.notes.append(
            f"training checkpoint: its optimizer state ({len(ckpt.optimizer)} tensors) is kept apart from the weights"
        )
    if not lazy:
        ckpt.weights, ckpt.optimizer = materialize(ckpt.weights), materialize(ckpt.optimizer)
    return ckpt


def weights_dtype(weights: dict[str, Any]) -> str:
    """The widest floating dtype among ``weights`` ("float64", "float32", "float16"); "float32" if none."""
    floats = [d for d in map(dtype_of, weights.values()) if d.kind == "f"]
    return str(max(floats, key=lambda d: d.itemsize)) if floats else "float32"


def nonfinite(weights: dict[str, Any]) -> dict[str, int]:
    """``{key: number of NaN/inf values}`` for every floating tensor that has any."""
    out = {}
    for k, v in weights.items():
        if dtype_of(v).kind != "f":
            continue
        a = np.asarray(v)  # a lazy tensor is read, checked and let go
        if not np.isfinite(a).all():
            out[k] = int((~np.isfinite(a)).sum())
    return out


def write_checkpoint(ckpt: Checkpoint, spec: ModelSpec, path: Path, fmt: Format) -> None:
    """Write ``ckpt`` to exactly ``path`` (the caller gives a temp path and renames)."""
    if fmt.write is None:
        raise CheckpointError(f"writing {fmt.name} ({fmt.description}) is not supported; use .weights.h5")
    with write_errors(path):
        fmt.write(ckpt, spec, path)


def shapes_of(weights: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(np.shape(v)) for k, v in weights.items()}
