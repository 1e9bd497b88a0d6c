"""Checkpoint formats: read into canonical weights, write from canonical weights.

Canonical files (.safetensors, .npz), .pdparams and .weights.h5 are read and written with numpy,
pickle (restricted) and h5py: no framework is imported. Only .pth imports torch, lazily.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError, ResNetError
from resnet_spec.naming import TORCH_BN_COUNTER, canonical_entry_from_native, from_native, to_native
from resnet_spec.weights import validate_weights
from resnet_tools.checkpoints import keras_archive, keras_h5
from resnet_tools.checkpoints.lazy import LazyArray, apply, dtype_of, materialize
from resnet_tools.core.backends import load_backend
from resnet_tools.core.files import write_errors

FORMAT_VERSION = "1"
PRODUCER = "resnet-xf"
#: Where the weights came from, kept through conversions by formats with metadata: the official id, and
#: the preprocessing its images need (predict uses it; torchvision's V2 weights want resize 232).
PROVENANCE_KEYS = ("weights_id", "preprocessing")
#: A training checkpoint (resnet train --save) keeps its optimizer state beside the weights under this
#: prefix, and its run (optimizer, step, data, seed) as JSON in the ``training`` metadata entry.
OPTIMIZER_PREFIX = "optimizer/"
TRAINING_KEY = "training"


@dataclass
class Checkpoint:
    """Canonical weights plus what the file says about itself."""

    weights: dict[str, Any]  # numpy arrays; LazyArray (still in the file) when read with lazy=True
    metadata: dict[str, str] = field(default_factory=dict)
    spec: ModelSpec | None = None  # known when the format needs it to be read (Keras .weights.h5)
    notes: list[str] = field(default_factory=list)  # what reading changed, e.g. bfloat16 widened to float32
    optimizer: dict[str, Any] = field(default_factory=dict)  # a training checkpoint's optimizer state
    mapping: Any = None  # torch/paddle: how the file's modules map onto the zoo (structure.StructureMap)
    container: Any = None  # torch/paddle: how the file wraps its state dict (Container)


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    framework: str | None  # its ecosystem: the backend predict uses by default, and verifies with
    read: Callable[[Path, str | None], Checkpoint]
    write: Callable[[Checkpoint, ModelSpec, Path], None] | None
    description: str
    imports: str | None = None  # the backend reading or writing it imports (None: no framework at all)
    write_imports: str | None = None  # the backend its writer alone imports (a .keras is read without Keras)


def _why(exc: BaseException) -> str:
    """One line on why a file could not be read. The loaders' own advice to load untrusted pickles
    unsafely (``weights_only=False``, ``allow_pickle=True``) is never passed on."""
    text = str(exc).strip()
    if not text:
        return f"{type(exc).__name__} (empty or truncated file)"
    if "weights_only" in text or "allow_pickle" in text or "pickled" in text:
        where = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" ({where[1]})" if where else ""
        return (
            f"not a plain tensor file: it is corrupt, or it pickles Python objects{what} (a whole model saved "
            "with torch.save(model)? save model.state_dict() instead; paddle: paddle.save(model.state_dict())); "
            "loading it could run code, so it is refused"
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
        # a training run's record stays only with its optimizer state (a converted copy holds weights alone)
        **({TRAINING_KEY: ckpt.metadata[TRAINING_KEY]} if _has_optimizer_state(ckpt) else {}),
    }


def _has_optimizer_state(ckpt: Checkpoint) -> bool:
    return TRAINING_KEY in ckpt.metadata and any(k.startswith(OPTIMIZER_PREFIX) for k in ckpt.weights)


# ---- canonical formats ----------------------------------------------------------------------------


#: safetensors dtype names numpy can hold (BF16 has no numpy type).
SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_SAFETENSORS_NAMES = {np.dtype(t): name for name, t in SAFETENSORS_DTYPES.items()}


def _guarded(path: Path, load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """A lazy tensor's loader whose failure (a file changed or cut short since it was opened) is one line."""

    def run() -> np.ndarray:
        try:
            return load()
        except ResNetError:
            raise
        except Exception as exc:
            raise CheckpointError(f"cannot read {path}: {_why(exc)}") from None

    return run


def read_safetensors(path: Path, _model: str | None) -> Checkpoint:
    """Names, shapes and dtypes from the header; each tensor is read from its byte range when a writer
    asks for it (plain reads, not a memory map: a map's pages would count as a second copy). The header
    is checked like the library checks it; the tests read our files with the library and its with us."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= min(size - 8, 100 << 20):
                raise CheckpointError(f"cannot read {path} as safetensors: header size {n} does not fit the file")
            header = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise CheckpointError(f"cannot read {path} as safetensors: {_why(exc)}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot read {path} as safetensors: its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    start = 8 + n
    weights: dict[str, Any] = {}
    ranges = []
    for key, info in header.items():
        weights[key] = _safetensors_tensor(path, key, info, start, size)
        ranges.append((*info["data_offsets"], key))
    # as the safetensors library: the tensors' byte ranges tile the data from 0 to its end, no gap, no overlap
    end = 0
    for begin, stop, key in sorted(ranges):
        if begin != end:
            what = "overlaps another" if begin < end else "leaves a gap before it"
            raise CheckpointError(f"cannot read {path} as safetensors: {key}'s byte range {what}")
        end = stop
    if start + end != size:
        raise CheckpointError(
            f"cannot read {path} as safetensors: the data is {size - start} bytes, the header says {end}"
        )
    if not isinstance(meta, dict):
        raise CheckpointError(f"cannot read {path} as safetensors: __metadata__ is not an object")
    return Checkpoint(weights, {str(k): str(v) for k, v in meta.items()})


def _safetensors_tensor(path: Path, key: str, info: Any, start: int, size: int) -> LazyArray:
    """One header entry as a LazyArray over its byte range, after checking dtype, shape and offsets."""
    try:
        dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
        numbers = [*info["shape"], *info["data_offsets"]]
        if len(info["data_offsets"]) != 2 or not all(type(d) is int for d in numbers):
            raise ValueError("shape and offsets are not integers")
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
    except KeyError as exc:
        name = info.get("dtype") if isinstance(info, dict) else None
        why = f"{name}, which numpy cannot hold (convert it with torch to .pth)" if name else f"no {exc}"
        raise CheckpointError(f"{path}: tensor {key}: {why}") from None
    except (TypeError, ValueError):
        raise CheckpointError(f"cannot read {path} as safetensors: a bad header entry for {key}") from None
    count = 1
    for d in shape:  # Python integers: a count that would overflow int64 is only a number that does not fit
        count *= d
    if min(shape, default=0) < 0 or end - begin != count * dtype.itemsize or begin < 0 or start + end > size:
        raise CheckpointError(
            f"cannot read {path} as safetensors: {key}'s byte range does not fit its shape or the file"
        )

    def load() -> np.ndarray:
        with open(path, "rb") as fh:
            fh.seek(start + begin)
            array = np.fromfile(fh, dtype=dtype, count=count)
        if array.size != count:
            raise CheckpointError(f"cannot read {path}: {key} is cut short (the file changed since it was opened)")
        return array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)

    return LazyArray(shape, dtype.newbyteorder("="), load)


def write_safetensors(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """The safetensors layout (8-byte header size, JSON header with sorted keys padded to 8 bytes, then
    each tensor's little-endian bytes in name order), written one tensor at a time: the library's writer
    needs every tensor in memory and builds the whole file in a second buffer. Read back with the
    library in the tests. Identical conversions give identical bytes."""
    names = sorted(ckpt.weights)
    header: dict[str, Any] = {"__metadata__": _metadata(spec, ckpt)}
    offset = 0
    for name in names:
        value = ckpt.weights[name]
        dtype, shape = dtype_of(value), tuple(np.shape(value))
        if dtype.newbyteorder("<") not in _SAFETENSORS_NAMES:
            raise CheckpointError(f"cannot write {name} ({dtype}) to safetensors")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {"dtype": _SAFETENSORS_NAMES[dtype.newbyteorder("<")], "shape": list(shape),
                        "data_offsets": [offset, offset + size]}  # fmt: skip
        offset += size
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads its header with spaces to an 8-byte boundary
    with open(path, "wb") as fh:
        fh.write(len(text).to_bytes(8, "little"))
        fh.write(text)
        for name in names:
            array = np.ascontiguousarray(ckpt.weights[name])
            fh.write(array.astype(array.dtype.newbyteorder("<"), copy=False).data)


def read_npz(path: Path, _model: str | None) -> Checkpoint:
    """Names, shapes and dtypes from each member's .npy header; the data is read when asked for."""
    try:
        data = np.load(path, allow_pickle=False)  # an NpzFile: members are read on access
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is a single .npy array, not an npz archive of named tensors")
        zf: Any = data.zip
        members = set(zf.namelist())
        if any(m == "data.pkl" or m.endswith("/data.pkl") for m in members):
            raise CheckpointError(
                f"{path} is a torch checkpoint (a zip with data.pkl), not an npz: rename it to .pth "
                "or pass --from torch"
            )
        meta = data["__metadata__"] if "__metadata__" in data.files else None
        arrays = {k: _npz_member(data, k, path) for k in data.files if k != "__metadata__"}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"cannot read {path} as npz: {_why(exc)}") from None
    return Checkpoint(arrays, _npz_metadata(meta, path) if meta is not None else {})


def _npz_member(data: Any, key: str, path: Path) -> Any:
    """One member as a LazyArray (its .npy header read now), or read at once if it is not a .npy file."""
    member, zf = f"{key}.npy", data.zip
    if member not in zf.namelist():
        return data[key]
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read_header(fh)
    if dtype.hasobject:
        raise CheckpointError(f"{path}: {key} holds Python objects, not numbers (refused: loading it could run code)")
    return LazyArray(shape, dtype, _guarded(path, functools.partial(data.__getitem__, key)))


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
    """What ``np.savez`` writes (a stored zip of .npy members), one tensor at a time."""
    members: list[tuple[str, Any]] = [("__metadata__", np.array(json.dumps(_metadata(spec, ckpt))))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in [*members, *ckpt.weights.items()]:
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)


# ---- torch --------------------------------------------------------------------------------------------

#: Where training scripts keep the state dict: plain, Lightning, timm, DeiT, kuangliu's CIFAR ("net"), in that
#: order of preference; an EMA copy is used only when it is all the file holds.
TORCH_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "state_dict_ema", "model_ema", "ema")
#: Prefixes wrappers add to every key: DataParallel/DDP, Lightning's ``self.model``, torch.compile.
KEY_PREFIXES = ("module.", "model.", "_orig_mod.")


@dataclass(frozen=True)
class Container:
    """How a torch/paddle file holds its state dict: the wrapper keys above it, the prefix on every key, and
    whether each BN carries torch's batch counter (``--like`` writes a file the same way)."""

    trail: tuple[str, ...] = ()
    prefix: str = ""
    counters: bool = False


def unwrap_state(obj: Any, is_tensor: Callable[[Any], bool], path: Path) -> tuple[dict[str, Any], list[str], Container]:
    """The ``{key: tensor}`` inside a training checkpoint's wrappers, with wrapper prefixes stripped."""
    notes: list[str] = []
    trail: list[str] = []
    while isinstance(obj, dict) and not (obj and all(is_tensor(v) for v in obj.values())):
        key = next((k for k in TORCH_WRAPPERS if isinstance(obj.get(k), dict) and obj[k]), None)
        if key is None:
            break
        others = [k for k in TORCH_WRAPPERS if k != key and isinstance(obj.get(k), dict)]
        if others:
            notes.append(f"read the weights under '{key}'; the file also holds {', '.join(repr(k) for k in others)}")
        trail.append(key)
        obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(is_tensor(v) for v in obj.values()):
        kinds = sorted({type(v).__name__ for v in obj.values()}) if isinstance(obj, dict) else [type(obj).__name__]
        raise CheckpointError(
            f"{path} is not a state dict (expected name -> tensor, optionally under "
            f"{' / '.join(TORCH_WRAPPERS)}); found {', '.join(kinds[:4])}"
        )
    if trail:
        notes.append(f"state dict found under {' / '.join(repr(k) for k in trail)}")
    stripped = []
    while True:
        prefix = next((p for p in KEY_PREFIXES if all(k.startswith(p) for k in obj)), None)
        if prefix is None:
            break
        obj = {k.removeprefix(prefix): v for k, v in obj.items()}
        stripped.append(prefix)
    if stripped:
        notes.append(f"key prefix {''.join(stripped)!r} removed")
    counters = any(k.endswith(TORCH_BN_COUNTER) for k in obj)
    return obj, notes, Container(tuple(trail), "".join(stripped), counters)


def read_torch(path: Path, model: str | None) -> Checkpoint:
    load_backend("torch")
    import torch

    try:  # untrusted pickles: tensors only; memory-mapped, so a tensor is read when it is asked for
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise CheckpointError(f"cannot read {path} as a torch checkpoint: {_why(exc)}") from None
        obj = _torch_load_whole(path)  # the legacy (pre-zip) format cannot be memory-mapped
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {_why(exc)}") from None
    obj, notes, container = unwrap_state(obj, lambda v: isinstance(v, torch.Tensor), path)
    widened = sum(1 for v in obj.values() if v.dtype == torch.bfloat16)
    native = {}
    for k in list(obj):  # popped: each tensor is let go once its canonical copy exists (_from_native)
        v = obj.pop(k)
        if k.endswith(TORCH_BN_COUNTER):
            continue  # torch-only BN counter, not a weight
        try:
            dtype = np.float32 if v.dtype == torch.bfloat16 else torch.empty(0, dtype=v.dtype).numpy().dtype
        except (TypeError, RuntimeError):
            raise CheckpointError(f"{path}: {k} is {v.dtype}, which numpy cannot hold") from None
        native[k] = LazyArray(tuple(v.shape), dtype, _guarded(path, functools.partial(_torch_numpy, v)))
    if widened:
        notes.append(f"{widened} bfloat16 tensor(s) read as float32 (exact: numpy has no bfloat16)")
    meta = {"source_framework": "torch", "source_version": torch.__version__}
    weights, spec, more, mapping = _canonical(native, "torch", path, model)
    return Checkpoint(weights, meta, spec, notes=notes + more, mapping=mapping, container=container)


def _torch_load_whole(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {_why(exc)}") from None


def _torch_numpy(tensor: Any) -> np.ndarray:
    """A torch tensor's values as numpy (bfloat16 widened to float32: exact). It may share the file's
    mapped memory: every layout transform after it (:func:`_from_native`) makes the canonical copy."""
    import torch

    t = tensor.float() if tensor.dtype == torch.bfloat16 else tensor
    array: np.ndarray = t.detach().cpu().numpy()
    return array


def _native_state(ckpt: Checkpoint, spec: ModelSpec, framework: str) -> dict[str, Any]:
    """``{native_key: tensor}`` in the model's module order, checked first (no model is built). Lazy
    tensors stay lazy (the layout transform runs when the writer reads them); arrays whose layout is
    unchanged are shared with ``ckpt``, not copied (the file gets its own bytes)."""
    return {
        ne.key: apply(
            ckpt.weights[ne.entry.name], functools.partial(to_native, ne.entry, framework, copy=False), ne.shape
        )
        for ne in validate_weights(spec, framework, ckpt.weights)
    }


def write_torch(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    load_backend("torch")
    import torch

    state = {}
    for key, array in _native_state(ckpt, spec, "torch").items():
        state[key] = torch.from_numpy(np.asarray(array))
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


def read_paddle(path: Path, model: str | None) -> Checkpoint:
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
    obj, notes, container = unwrap_state(obj, lambda v: isinstance(v, np.ndarray), path)
    weights, spec, more, mapping = _canonical(obj, "paddle", path, model)
    meta = {"source_framework": "paddle"}
    return Checkpoint(weights, meta, spec, notes=notes + more, mapping=mapping, container=container)


def write_paddle(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """What ``paddle.save(model.state_dict())`` writes, without importing paddle: a protocol-4 pickle of
    ``{native key: numpy array}`` in paddle.vision's key order (``paddle.load`` + ``set_state_dict`` read
    it; so does :class:`_ArraysOnlyUnpickler`). paddle's own file adds a table of its internal parameter
    names (``conv2d_0.w_0``), which loading by key does not use."""
    write_pickled_state(_native_state(ckpt, spec, "paddle"), path)


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


# ---- keras --------------------------------------------------------------------------------------------


def read_keras(path: Path, model: str | None) -> Checkpoint:
    """A Keras 3 ``.weights.h5`` (keras.applications', ours, or a model holding either as a nested layer),
    read with h5py (no Keras import; see ``keras_h5``)."""
    spec, native, notes = keras_h5.read(path, model)
    return Checkpoint(_from_native(dict(native), "keras", path), {"source_framework": "keras"}, spec, notes)


def write_keras(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """A Keras 3 ``.weights.h5`` that ``model.load_weights`` reads (ours and keras.applications' models),
    written with h5py (no Keras import); dtypes are kept (float64 stays float64)."""
    validate_weights(spec, "keras", ckpt.weights)  # everything checked before the file is touched
    keras_h5.write(ckpt.weights, spec, path)


def read_keras_archive(path: Path, model: str | None) -> Checkpoint:
    """A Keras 3 ``.keras`` archive (``model.save``), read with zipfile/json/h5py (see ``keras_archive``)."""
    spec, native, notes = keras_archive.read(path, model)
    return Checkpoint(_from_native(dict(native), "keras", path), {"source_framework": "keras"}, spec, notes)


def write_keras_archive(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """A ``.keras`` that ``keras.models.load_model`` opens with no custom objects (written by Keras)."""
    validate_weights(spec, "keras", ckpt.weights)
    keras_archive.write(ckpt.weights, spec, path)


def read_keras_legacy(path: Path, _model: str | None) -> Checkpoint:
    """Keras 2 / keras.applications HDF5 weights: groups by layer name, ``weight_names`` per layer; each
    tensor is read when asked for (the file stays open while its tensors are alive)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    try:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise CheckpointError(f"{path} is not a legacy Keras weights file (no layer_names attribute)")
        native: dict[str, Any] = {}
        for layer in (n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]):
            if not _inside_file(root, layer):
                raise CheckpointError(f"{path}: layer_names lists {layer!r}, which the file does not hold")
            group = root[layer]
            if "weight_names" not in group.attrs:
                raise CheckpointError(f"{path}: layer {layer!r} has no weight_names attribute (not Keras weights)")
            for wname in (n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]):
                if not _inside_file(group, wname):
                    raise CheckpointError(
                        f"{path}: layer {layer!r} names weight {wname!r}, which it does not hold (or which links "
                        f"outside the file: links are never followed)"
                    )
                if not isinstance(group[wname], h5py.Dataset):
                    raise CheckpointError(f"{path}: layer {layer!r}'s weight {wname!r} is a group, not an array")
                attr = wname.split("/")[-1].split(":")[0]  # "conv1_conv/kernel:0" -> "kernel"
                native[f"{layer}/{attr}"] = keras_h5.lazy_dataset(path, group[wname])
    except OSError as exc:
        f.close()
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    except CheckpointError:
        f.close()
        raise
    return Checkpoint(_from_native(native, "keras", path), {"source_framework": "keras.applications"})


def _canonical(
    native: dict[str, Any], framework: str, path: Path, model: str | None
) -> tuple[dict[str, Any], ModelSpec | None, list[str], Any]:
    """Canonical weights of a torch or paddle state dict, with the spec when known, notes and the module
    mapping: by the map file given with ``--map``; by the zoo's naming rules where every key follows them;
    else by the checkpoint's structure (a hand-written ResNet: ``structure``)."""
    from resnet_tools.checkpoints import mapfile, reference, structure

    ref = reference.ACTIVE.get()
    if ref is not None:  # the user's own model decides, by running it
        mapping = reference.reference_map(native, framework, model, ref, str(path))
        return dict(structure.canonical_weights(mapping, native)), mapping.spec, mapping.notes, mapping
    given = mapfile.ACTIVE.get()
    if given is not None:
        mapping = mapfile.apply(given, native, framework, str(path))
        return dict(structure.canonical_weights(mapping, native)), mapping.spec, mapping.notes, mapping
    try:
        for key, value in native.items():
            if not key.endswith(TORCH_BN_COUNTER):
                canonical_entry_from_native(key, framework, tuple(np.shape(value)))
    except ValueError as exc:
        mapping = structure.structural_map(native, framework, model, str(path), draft=mapfile.DRAFT.get())
        spec = mapping.spec
        assert spec is not None
        note = f"a ResNet of its own naming (first unknown: {str(exc).split(': ', 1)[-1]}) mapped by structure"
        weights = dict(structure.canonical_weights(mapping, native))
        return weights, spec, [f"{note} onto {spec.name}", *mapping.notes], mapping
    units = structure.units_of(native, framework)
    return _from_native(native, framework, path), None, [], structure.by_name(units, framework)


def _inside_file(group: Any, name: str) -> bool:
    """``name`` exists under ``group`` through hard links only: an external link (into another file) or a soft
    link on the way is refused, never followed."""
    import h5py

    node = group
    for part in name.split("/"):
        if not part:
            continue
        if part not in node or not isinstance(node.get(part, getlink=True), h5py.HardLink):
            return False
        node = node[part]
    return True


def _from_native(native: dict[str, Any], framework: str, path: Path) -> dict[str, Any]:
    """Native keys and layouts -> canonical ones, by naming rule; lazy tensors get their transform chained.
    Consumes ``native``: each array read into memory is let go once its canonical copy exists."""
    out = {}
    try:
        for key in list(native):
            value = native.pop(key)
            entry = canonical_entry_from_native(key, framework, tuple(np.shape(value)))
            out[entry.name] = apply(value, functools.partial(from_native, entry, framework), entry.shape)
    except ValueError as exc:
        raise CheckpointError(f"{path}: not a ResNet checkpoint of this zoo: {exc}") from None
    return out


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
        ),
        Format("paddle", (".pdparams",), "paddle", read_paddle, write_paddle, "paddle.vision-style state dict"),
        Format(
            "keras",
            (".weights.h5",),
            "keras",
            read_keras,
            write_keras,
            "Keras 3 weights file (model.save_weights): keras.applications' layer order, nested models read",
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
    except (OSError, zipfile.BadZipFile):
        return None
    return None


def read_checkpoint(path: Path | str, fmt: Format, model: str | None = None, *, lazy: bool = False) -> Checkpoint:
    """Read ``path`` in ``fmt`` into canonical weights. ``lazy``: tensors a format can leave in the file
    stay there as :class:`LazyArray` until read (a conversion then holds about one copy of the checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {path}: {'not a file' if path.exists() else 'no such file'}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"cannot read {path}: permission denied")
    ckpt = fmt.read(path, model)
    for key in [k for k in ckpt.weights if k.startswith(OPTIMIZER_PREFIX)]:  # a training checkpoint
        ckpt.optimizer[key.removeprefix(OPTIMIZER_PREFIX)] = ckpt.weights.pop(key)
    if ckpt.optimizer:
        ckpt.notes.append(
            f"training checkpoint: its optimizer state ({len(ckpt.optimizer)} tensors) is kept apart from the weights"
        )
    scalars = sorted(k for k, v in ckpt.weights.items() if np.ndim(v) == 0)
    if scalars:
        raise CheckpointError(
            f"{path}: {', '.join(scalars[:5])} {'is a scalar' if len(scalars) == 1 else 'are scalars'}"
            f"; every ResNet weight is a tensor (not a checkpoint of this zoo)"
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
