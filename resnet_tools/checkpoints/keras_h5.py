"""Keras 3 ``.weights.h5`` files of our models, read and written with h5py alone (no Keras, no TensorFlow).

Keras 3 stores a model's variables by the position of each layer among the model's layers of the same
class, not by layer name: ``layers/conv2d_5/vars/0`` is the kernel of the sixth Conv2D layer. For our
models the layers with variables come in the order of the canonical table (stem, then each block's
convs and BNs with the shortcut after the last main-path ones, then the head): that order, and each
layer's variable order (Conv2D/Dense: kernel, bias; BatchNormalization: gamma, beta, moving mean,
moving variance), give every path. Layers without variables (activations, padding, pooling, add)
have empty groups in a file Keras writes; Keras reads a missing group as empty, so none is written.
``parity_tests/test_checkpoints.py`` checks the paths against files Keras writes and loads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import NativeEntry, native_table, to_native

#: Keras' snake_case class name of the layer holding each kind of canonical module.
KERAS_CLASS = {"conv": "conv2d", "bn": "batch_normalization", "fc": "dense"}


def layout(spec: ModelSpec) -> Iterator[tuple[str, str, list[NativeEntry]]]:
    """(group path in the file, Keras layer name, its variables in Keras' order) for every layer with
    variables, in the order Keras numbers them."""
    counters: dict[str, int] = {}
    modules: dict[str, list[NativeEntry]] = {}
    for ne in native_table(spec, "keras"):
        modules.setdefault(ne.entry.module, []).append(ne)
    for entries in modules.values():
        cls = KERAS_CLASS[entries[0].entry.kind]
        n = counters.get(cls, -1) + 1
        counters[cls] = n
        yield f"layers/{cls}{f'_{n}' if n else ''}", entries[0].key.split("/")[0], entries


def write(weights: Mapping[str, np.ndarray], spec: ModelSpec, path: Path, stamp: tuple[str, str]) -> None:
    """Write canonical ``weights`` (already checked against ``spec``) to ``path`` in Keras' layouts, one
    tensor at a time (a transposed kernel lives only while it is written); ``stamp`` is a root attribute
    (name, value) naming the model."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs[stamp[0]] = stamp[1]
        f.create_group("vars")  # the model's own variables: none
        for group, layer, entries in layout(spec):
            g = f.create_group(group).create_group("vars")
            g.attrs["name"] = layer
            for i, ne in enumerate(entries):
                g.create_dataset(str(i), data=to_native(ne.entry, "keras", np.asarray(weights[ne.entry.name])))


def read(path: Path, spec: ModelSpec) -> dict[str, np.ndarray]:
    """``{keras native key: array}`` of ``spec``'s variables from a file Keras (or :func:`write`) wrote."""
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            for group, layer, entries in layout(spec):
                for i, ne in enumerate(entries):
                    where = f"{group}/vars/{i}"
                    if where not in f:
                        raise CheckpointError(
                            f"{path} has no {where} ({layer}): not a {spec.name} weights file (is --model right?)"
                        )
                    out[ne.key] = np.asarray(f[where])
            extra = sum(1 for _ in _datasets(f)) - len(out)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    if extra:
        raise CheckpointError(f"{path} holds {extra} variable(s) {spec.name} does not have (is --model right?)")
    return out


def _datasets(f: object) -> Iterator[str]:
    import h5py

    found: list[str] = []
    assert isinstance(f, h5py.File)
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    yield from found
