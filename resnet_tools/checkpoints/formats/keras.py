"""Keras files: Keras 3 ``.weights.h5`` and ``.keras`` archives (see ``keras_h5`` and ``keras_archive``), and
legacy Keras 2 HDF5 weights by layer name, read with h5py (no Keras import; HDF5 links are never followed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.weights import validate_weights
from resnet_tools.checkpoints import keras_archive, keras_h5
from resnet_tools.checkpoints.formats.base import Checkpoint, ModelRef, weights_from_native


def read_keras(path: Path, model: ModelRef) -> Checkpoint:
    """A Keras 3 ``.weights.h5`` (keras.applications', ours, or a model holding either as a nested layer),
    read with h5py (no Keras import; see ``keras_h5``)."""
    spec, native, notes = keras_h5.read(path, model)
    return Checkpoint(weights_from_native(dict(native), "keras", path), {"source_framework": "keras"}, spec, notes)


def write_keras(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """A Keras 3 ``.weights.h5`` that ``model.load_weights`` reads (ours and keras.applications' models),
    written with h5py (no Keras import); dtypes are kept (float64 stays float64)."""
    validate_weights(spec, "keras", ckpt.weights)  # everything checked before the file is touched
    keras_h5.write(ckpt.weights, spec, path)


def read_keras_archive(path: Path, model: ModelRef) -> Checkpoint:
    """A Keras 3 ``.keras`` archive (``model.save``), read with zipfile/json/h5py (see ``keras_archive``)."""
    spec, native, notes = keras_archive.read(path, model)
    return Checkpoint(weights_from_native(dict(native), "keras", path), {"source_framework": "keras"}, spec, notes)


def write_keras_archive(ckpt: Checkpoint, spec: ModelSpec, path: Path) -> None:
    """A ``.keras`` that ``keras.models.load_model`` opens with no custom objects (written by Keras)."""
    validate_weights(spec, "keras", ckpt.weights)
    keras_archive.write(ckpt.weights, spec, path)


def read_keras_legacy(path: Path, _model: ModelRef) -> Checkpoint:
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
            if not inside_file(root, layer):
                raise CheckpointError(f"{path}: layer_names lists {layer!r}, which the file does not hold")
            group = root[layer]
            if "weight_names" not in group.attrs:
                raise CheckpointError(f"{path}: layer {layer!r} has no weight_names attribute (not Keras weights)")
            for wname in (n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]):
                if not inside_file(group, wname):
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
    return Checkpoint(weights_from_native(native, "keras", path), {"source_framework": "keras.applications"})


def inside_file(group: Any, name: str) -> bool:
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
