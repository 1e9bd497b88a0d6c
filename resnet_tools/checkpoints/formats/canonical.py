"""The canonical files, .safetensors and .npz: canonical names and layouts with our metadata, read and written
with numpy alone (no framework), one tensor at a time."""

from __future__ import annotations

import functools
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import TORCH_BN_COUNTER
from resnet_tools.checkpoints.formats.base import PRODUCER, Checkpoint, ModelRef, file_metadata, guarded, why
from resnet_tools.checkpoints.lazy import LazyArray, dtype_of

#: safetensors dtype names numpy can hold (BF16 has no numpy type).
SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_SAFETENSORS_NAMES = {np.dtype(t): name for name, t in SAFETENSORS_DTYPES.items()}


def read_safetensors(path: Path, _model: ModelRef) -> Checkpoint:
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
        raise CheckpointError(f"cannot read {path} as safetensors: {why(exc)}") from None
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
    return foreign_or_ours(weights, {str(k): str(v) for k, v in meta.items()})


def foreign_or_ours(weights: dict[str, Any], meta: dict[str, str]) -> Checkpoint:
    """Our file (canonical names, our metadata) as it is; one another tool wrote (timm's or Hugging Face's
    ``model.safetensors``, ``np.savez(**state_dict)``) is a torch state dict: torch's BN batch counters dropped,
    then mapped like a ``.pth`` (by the zoo's names, or by structure)."""
    if meta.get("producer") == PRODUCER:
        return Checkpoint(weights, meta)
    native = {k: v for k, v in weights.items() if not (k.endswith(TORCH_BN_COUNTER) and np.ndim(v) == 0)}
    notes = (
        [f"{len(weights) - len(native)} BN batch counter(s) (num_batches_tracked) left out"]
        if len(native) < len(weights)
        else []
    )
    # safetensors' writers sort the keys: the model's registration order is gone (the map step rebuilds it)
    return Checkpoint({}, meta, notes=notes, native=native, framework="torch", ordered=list(native) != sorted(native))


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
    header: dict[str, Any] = {"__metadata__": file_metadata(spec, ckpt)}
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


def read_npz(path: Path, _model: ModelRef) -> Checkpoint:
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
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise CheckpointError(f"cannot read {path} as npz: {why(exc)}") from None
    return foreign_or_ours(arrays, _npz_metadata(meta, path) if meta is not None else {})


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
    return LazyArray(shape, dtype, guarded(path, functools.partial(data.__getitem__, key)))


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
    members: list[tuple[str, Any]] = [("__metadata__", np.array(json.dumps(file_metadata(spec, ckpt))))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in [*members, *ckpt.weights.items()]:
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)
