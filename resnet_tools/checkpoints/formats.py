"""Checkpoint formats: read into canonical weights, write from canonical weights.

Canonical files (.safetensors, .npz), .pdparams and .weights.h5 are read and written with numpy,
pickle (restricted) and h5py: no framework is imported. Only .pth imports torch, lazily.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError, ResNetError
from resnet_spec.naming import TORCH_BN_COUNTER, canonical_from_native
from resnet_spec.weights import check_weights, validate_weights
from resnet_tools.checkpoints import keras_h5
from resnet_tools.core.backends import load_backend

FORMAT_VERSION = "1"
PRODUCER = "resnet-xf"
#: Where the weights came from, kept through conversions by formats with metadata: the official id, and
#: the preprocessing its images need (predict uses it; torchvision's V2 weights want resize 232).
PROVENANCE_KEYS = ("weights_id", "preprocessing")


@dataclass
class Checkpoint:
    """Canonical weights plus what the file says about itself."""

    weights: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    spec: ModelSpec | None = None  # known when the format needs it to be read (Keras .weights.h5)
    notes: list[str] = field(default_factory=list)  # what reading changed, e.g. bfloat16 widened to float32


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    framework: str | None  # its ecosystem: the backend predict uses by default, and verifies with
    read: Callable[[Path, str | None], Checkpoint]
    write: Callable[[Checkpoint, ModelSpec, Path], None] | None
    description: str
    imports: str | None = None  # the backend reading or writing it imports (None: no framework at all)


def _why(exc: BaseException) -> str:
    """One line on why a file could not be read. The loaders' own advice to load untrusted pickles
    unsafely (``weights_only=False``, ``allow_pickle=True``) is never passed on."""
    text = str(exc).strip()
    if not text:
        return f"{type(exc).__name__} (empty or truncated file)"
    if "weights_only" in text or "allow_pickle" in text or "pickled" in text:
        return (
            "not a plain tensor file: it is corrupt, or a pickle that needs arbitrary code to load "
            "(refused: loading it could run code)"
        )
    return text.splitlines()[0]


def _metadata(spec: ModelSpec, ckpt: Checkpoint) -> dict[str, str]:
    return {
        "model": spec.name,
        "spec_hash": spec.spec_hash(),
        "format_version": FORMAT_VERSION,
        "producer": PRODUCER,
        "num_classes": str(spec.num_classes),
        "source_framework": ckpt.metadata.get("source_framework", "unknown"),
        "source_version": ckpt.metadata.get("source_version", ""),
        **{k: ckpt.metadata[k] for k in PROVENANCE_KEYS if k in ckpt.metadata},
    }


# ---- canonical formats ----------------------------------------------------------------------------


def read_safetensors(path: Path, _model: str | None) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return Checkpoint({k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {}))  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path} as safetensors: {exc}") from None


def write_safetensors(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in ckpt.weights.items()}, str(path), _metadata(spec, ckpt))
    _sort_safetensors_header(path)


def _sort_safetensors_header(path: Path) -> None:
    """Rewrite the JSON header with sorted keys, in place and at the same length: safetensors keeps the
    metadata in a hash map, so identical conversions gave different bytes (offsets are unaffected)."""
    with open(path, "r+b") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(text) > size:  # cannot happen: same content, and the library writes it compactly
            raise CheckpointError(f"{path}: unexpected safetensors header layout")
        fh.seek(8)
        fh.write(text + b" " * (size - len(text)))  # the format pads its header with spaces


def read_npz(path: Path, _model: str | None) -> Checkpoint:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"cannot read {path} as npz: {_why(exc)}") from None
    if any(k == "data.pkl" or k.endswith("/data.pkl") for k in arrays):
        raise CheckpointError(
            f"{path} is a torch checkpoint (a zip with data.pkl), not an npz: rename it to .pth or pass --from torch"
        )
    meta = arrays.pop("__metadata__", None)
    return Checkpoint(arrays, _npz_metadata(meta, path) if meta is not None else {})


def _npz_metadata(meta: np.ndarray, path: Path) -> dict[str, str]:
    """The ``__metadata__`` entry we write: a JSON object of strings. Anything else is one clear error."""
    try:
        data = json.loads(str(meta))
    except ValueError:
        raise CheckpointError(f"{path}: its __metadata__ entry is not JSON (not written by this tool?)") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: its __metadata__ entry is a JSON {type(data).__name__}, not an object")
    return {str(k): str(v) for k, v in data.items()}


def write_npz(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
        arrays: dict[str, Any] = {"__metadata__": np.array(json.dumps(_metadata(spec, ckpt))), **ckpt.weights}
        np.savez(fh, **arrays)


# ---- torch --------------------------------------------------------------------------------------------

TORCH_WRAPPERS = ("state_dict", "model_state_dict", "model")


def read_torch(path: Path, _model: str | None) -> Checkpoint:
    load_backend("torch")
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # untrusted pickles: tensors only
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {_why(exc)}") from None
    for key in TORCH_WRAPPERS:  # training scripts wrap the state dict
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path} is not a state dict (expected name -> tensor, optionally under {' / '.join(TORCH_WRAPPERS)})"
        )
    native = {}
    for k, v in obj.items():
        if k.endswith(TORCH_BN_COUNTER):
            continue  # torch-only BN counter, not a weight
        k = k.removeprefix("module.")  # DataParallel / DDP prefix
        native[k] = (v.float() if v.dtype == torch.bfloat16 else v).detach().cpu().numpy()
    widened = sum(1 for v in obj.values() if v.dtype == torch.bfloat16)
    notes = [f"{widened} bfloat16 tensor(s) read as float32 (exact: numpy has no bfloat16)"] if widened else []
    meta = {"source_framework": "torch", "source_version": torch.__version__}
    return Checkpoint(_from_native(native, "torch", path), meta, notes=notes)


def _native_state(ckpt: Checkpoint, spec: ModelSpec, framework: str) -> dict[str, np.ndarray]:
    """``{native_key: array}`` in the model's module order, checked first (no model is built); arrays
    whose layout is unchanged are shared with ``ckpt``, not copied (the file gets its own bytes)."""
    return check_weights(spec, framework, ckpt.weights, copy=False)


def write_torch(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    load_backend("torch")
    import torch

    state = {}
    for key, array in _native_state(ckpt, spec, "torch").items():
        state[key] = torch.from_numpy(array)
        if key.endswith(".running_var"):  # torchvision's key set: each BN ends with its batch counter
            state[key.removesuffix("running_var") + TORCH_BN_COUNTER] = torch.tensor(0)
    with open(path, "wb") as fh:  # a file object: the archive's root is "archive", not our temp file's name
        torch.save(state, fh)


# ---- paddle -------------------------------------------------------------------------------------------

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


def read_paddle(path: Path, _model: str | None) -> Checkpoint:
    """Read a ``.pdparams`` through :class:`_ArraysOnlyUnpickler` (no paddle import, no code run)."""
    try:
        with open(path, "rb") as fh:
            obj = _ArraysOnlyUnpickler(fh).load()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise CheckpointError(
            f"cannot read {path} as a paddle checkpoint: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'empty or truncated'}"
        ) from None
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k != _PADDLE_NAME_TABLE}
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise CheckpointError(f"{path} is not a paddle state dict (expected name -> tensor)")
    return Checkpoint(_from_native(obj, "paddle", path), {"source_framework": "paddle"})


def write_paddle(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """What ``paddle.save(model.state_dict())`` writes, without importing paddle: a protocol-4 pickle of
    ``{native key: numpy array}`` in paddle.vision's key order (``paddle.load`` + ``set_state_dict`` read
    it; so does :class:`_ArraysOnlyUnpickler`). paddle's own file adds a table of its internal parameter
    names (``conv2d_0.w_0``), which loading by key does not use."""
    state = _native_state(ckpt, spec, "paddle")
    with open(path, "wb") as fh:
        pickler = pickle.Pickler(fh, protocol=4)
        pickler.fast = True  # no memo: it would keep every array's pickled bytes until the end (2x memory)
        pickler.dump(state)


# ---- keras --------------------------------------------------------------------------------------------


def read_keras(path: Path, model: str | None) -> Checkpoint:
    """A Keras 3 ``.weights.h5`` of our model, read with h5py (no Keras import; see ``keras_h5``)."""
    spec, native = keras_h5.read(path, model)
    return Checkpoint(_from_native(native, "keras", path), {"source_framework": "keras"}, spec)


def write_keras(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """A Keras 3 ``.weights.h5`` that ``model.load_weights`` reads, written with h5py (no Keras import);
    dtypes are kept (float64 stays float64)."""
    validate_weights(spec, "keras", ckpt.weights)  # everything checked before the file is touched
    keras_h5.write(ckpt.weights, spec, path)


def read_keras_legacy(path: Path, _model: str | None) -> Checkpoint:
    """Keras 2 / keras.applications HDF5 weights: groups by layer name, ``weight_names`` per layer."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)
            if "layer_names" not in root.attrs:
                raise CheckpointError(f"{path} is not a legacy Keras weights file (no layer_names attribute)")
            native = {}
            for layer in (n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]):
                if layer not in root:
                    raise CheckpointError(f"{path}: layer_names lists {layer!r}, which the file does not hold")
                group = root[layer]
                if "weight_names" not in group.attrs:
                    raise CheckpointError(f"{path}: layer {layer!r} has no weight_names attribute (not Keras weights)")
                for wname in (n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]):
                    if wname not in group:
                        raise CheckpointError(f"{path}: layer {layer!r} names weight {wname!r}, which it does not hold")
                    attr = wname.split("/")[-1].split(":")[0]  # "conv1_conv/kernel:0" -> "kernel"
                    native[f"{layer}/{attr}"] = np.asarray(group[wname])
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    return Checkpoint(_from_native(native, "keras", path), {"source_framework": "keras.applications"})


def _from_native(native: dict[str, np.ndarray], framework: str, path: Path) -> dict[str, np.ndarray]:
    try:
        return canonical_from_native(native, framework)
    except ValueError as exc:
        raise CheckpointError(f"{path}: not a ResNet checkpoint of this zoo: {exc}") from None


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
        Format("torch", (".pth", ".pt"), "torch", read_torch, write_torch, "torchvision-style state_dict", "torch"),
        Format("paddle", (".pdparams",), "paddle", read_paddle, write_paddle, "paddle.vision-style state dict"),
        Format("keras", (".weights.h5",), "keras", read_keras, write_keras, "Keras 3 weights file of our model"),
        Format(
            "keras_h5",
            (".h5",),
            None,
            read_keras_legacy,
            None,
            "legacy Keras / keras.applications HDF5 weights, read by layer name (read only)",
        ),
    )
}


def format_for(path: Path | str, given: str | None = None) -> Format:
    """The format named by ``given`` or by the file extension (longest match: .weights.h5 before .h5)."""
    if given is not None:
        if given not in FORMATS:
            raise CheckpointError(f"unknown format {given!r}; known: {', '.join(FORMATS)}")
        return FORMATS[given]
    name = Path(path).name.lower()
    hits = [(ext, f) for f in FORMATS.values() for ext in f.extensions if name.endswith(ext)]
    if not hits:
        exts = ", ".join(e for f in FORMATS.values() for e in f.extensions)
        raise CheckpointError(f"unknown extension for {Path(path).name}; known: {exts} (or pass --from/--to)")
    return max(hits, key=lambda h: len(h[0]))[1]


def read_checkpoint(path: Path | str, fmt: Format, model: str | None = None) -> Checkpoint:
    """Read ``path`` in ``fmt`` into canonical weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {path}: {'not a file' if path.exists() else 'no such file'}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"cannot read {path}: permission denied")
    ckpt = fmt.read(path, model)
    scalars = sorted(k for k, v in ckpt.weights.items() if np.ndim(v) == 0)
    if scalars:
        raise CheckpointError(
            f"{path}: {', '.join(scalars[:5])} {'is a scalar' if len(scalars) == 1 else 'are scalars'}"
            f"; every ResNet weight is a tensor (not a checkpoint of this zoo)"
        )
    return ckpt


def weights_dtype(weights: dict[str, np.ndarray]) -> str:
    """The widest floating dtype among ``weights`` ("float64", "float32", "float16"); "float32" if none."""
    floats = [np.asarray(v).dtype for v in weights.values() if np.asarray(v).dtype.kind == "f"]
    return str(max(floats, key=lambda d: d.itemsize)) if floats else "float32"


def nonfinite(weights: dict[str, np.ndarray]) -> dict[str, int]:
    """``{key: number of NaN/inf values}`` for every floating tensor that has any."""
    out = {}
    for k, v in weights.items():
        a = np.asarray(v)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            out[k] = int((~np.isfinite(a)).sum())
    return out


def write_checkpoint(ckpt: Checkpoint, spec: ModelSpec, path: Path, fmt: Format) -> None:
    """Write ``ckpt`` to exactly ``path`` (the caller gives a temp path and renames)."""
    if fmt.write is None:
        raise CheckpointError(f"writing {fmt.name} ({fmt.description}) is not supported; use .weights.h5")
    try:
        fmt.write(ckpt, spec, path)
    except ResNetError:
        raise
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc}") from None


def shapes_of(weights: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(np.shape(v)) for k, v in weights.items()}
