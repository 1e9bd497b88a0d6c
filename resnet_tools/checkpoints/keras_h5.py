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

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import NativeEntry, native_table, to_native
from resnet_spec.spec import get_spec, list_models
from resnet_tools.checkpoints.lazy import LazyArray

#: Keras' snake_case class name of the layer holding each kind of canonical module.
#: Root attribute naming our model in files we write (Keras ignores it).
STAMP_ATTR = "resnet_xf_model"
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


def write(weights: Mapping[str, np.ndarray], spec: ModelSpec, path: Path) -> None:
    """Write canonical ``weights`` (already checked against ``spec``) to ``path`` in Keras' layouts, one
    tensor at a time (a transposed kernel lives only while it is written), stamped with the model's name."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs[STAMP_ATTR] = spec.name
        f.create_group("vars")  # the model's own variables: none
        for group, layer, entries in layout(spec):
            g = f.create_group(group).create_group("vars")
            g.attrs["name"] = layer
            for i, ne in enumerate(entries):
                g.create_dataset(str(i), data=to_native(ne.entry, "keras", np.asarray(weights[ne.entry.name])))


def lazy_dataset(path: Path, dataset: Any) -> LazyArray:
    """An HDF5 dataset as a LazyArray: read (whole) each time it is asked for."""

    def load() -> np.ndarray:
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None

    return LazyArray(dataset.shape, dataset.dtype, load)


def read(path: Path, model: str | None) -> tuple[ModelSpec, dict[str, LazyArray]]:
    """The file's architecture (``model`` if given, else our stamp, else identified by its variable
    shapes) and ``{keras native key: tensor}`` of its variables, in one pass over the file's index;
    the tensors are read when asked for (the file stays open while they are alive)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    try:
        datasets: dict[str, Any] = {}
        f.visititems(lambda name, obj: datasets.update({name: obj}) if isinstance(obj, h5py.Dataset) else None)
        spec = _spec_of(path, model, f.attrs.get(STAMP_ATTR), [d.shape for d in datasets.values()])
        out: dict[str, LazyArray] = {}
        for group, layer, entries in layout(spec):
            for i, ne in enumerate(entries):
                where = f"{group}/vars/{i}"
                if where not in datasets:
                    raise CheckpointError(
                        f"{path} has no {where} ({layer}): not a {spec.name} weights file (is --model right?)"
                    )
                out[ne.key] = lazy_dataset(path, datasets[where])
        if len(datasets) > len(out):
            extra = len(datasets) - len(out)
            raise CheckpointError(f"{path} holds {extra} variable(s) {spec.name} does not have (is --model right?)")
    except BaseException:
        f.close()
        raise
    return spec, out


def _spec_of(path: Path, model: str | None, stamped: object, shapes: list[tuple[int, ...]]) -> ModelSpec:
    """The architecture: given, stamped by :func:`write`, or the one zoo model whose variable shapes match;
    build options (head size, input channels, CIFAR stem) are read off the shapes."""
    name = model or (stamped.decode() if isinstance(stamped, bytes) else stamped)
    given = Counter(shapes)
    names = [name] if isinstance(name, str) and name else list_models()
    matches = [
        s
        for n in names
        for s in _candidates(n, shapes)
        if Counter(ne.shape for ne in native_table(s, "keras")) == given
    ]
    if len(matches) == 1 or (matches and len(names) == 1):
        return matches[0]
    if len(names) == 1:  # named, but no option fits: build the plain model so the read names what is missing
        return get_spec(names[0], num_classes=_num_classes(shapes))
    found = "several models" if matches else "no zoo model"
    raise CheckpointError(f"{path}: its variable shapes match {found}; give the architecture with --model")


def _num_classes(shapes: list[tuple[int, ...]]) -> int:
    return next((s[1] for s in shapes if len(s) == 2), 0)  # the Dense kernel is [in, classes]


def _candidates(name: str, shapes: list[tuple[int, ...]]) -> list[ModelSpec]:
    """``name`` with each set of options the shapes allow: the stem conv's input channels (HWIO kernels
    of 7x7 or 3x3) and the CIFAR stem."""
    channels = {s[2] for s in shapes if len(s) == 4 and s[0] == s[1] and s[0] in (3, 7)} | {3}
    out = []
    for stem in (None, "cifar"):
        for c in sorted(channels):
            options = {"num_classes": _num_classes(shapes), "in_channels": c, **({"stem": stem} if stem else {})}
            try:
                out.append(get_spec(name, **options))
            except ValueError:
                continue
    return out
