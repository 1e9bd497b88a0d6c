"""Keras 3 ``.weights.h5`` files, read and written with h5py alone (no Keras, no TensorFlow).

Keras 3 stores a model's variables by the position of each layer among the model's layers of the same
class, not by layer name: ``layers/conv2d_5/vars/0`` is the kernel of the sixth Conv2D layer in
``model.layers``, and a nested model's layers sit under its own path (``layers/functional/layers/...``).
Keras 3.15 also writes each layer's name as the ``name`` attribute of its ``vars`` group.

Writing: our layers come in keras.applications' order (:func:`resnet_spec.naming.keras_order`), so a
file we write loads into ``keras.applications.ResNet50`` and ours alike. Reading understands the
structure: the ResNet body (the one model in the file holding convolutions, nested or not) and a
classifier Dense outside it (a transfer-learning head). Its layers are mapped by their keras.applications
names when the file has them, else by Keras' own order, checking every layer's class, variable count and
shapes against the model at that position and refusing, with the layer named, where one differs: nothing
is ever assigned because its shape happens to fit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import CheckpointError
from resnet_spec.naming import (
    NativeEntry,
    canonical_module,
    keras_block_order,
    keras_order,
    module_kind,
    native_attrs,
    native_key,
    native_shape,
)
from resnet_spec.spec import get_spec, list_models
from resnet_tools.checkpoints.lazy import LazyArray

#: Root attribute naming our model in files we write (Keras ignores it).
STAMP_ATTR = "resnet_xf_model"
#: Keras' snake_case class name of the layer holding each kind of canonical module.
KERAS_CLASS = {"conv": "conv2d", "bn": "batch_normalization", "fc": "dense"}
_KIND_OF_CLASS = {v: k for k, v in KERAS_CLASS.items()}
_LAYER_KEY_RE = re.compile(r"^(?P<cls>.+?)(?:_(?P<n>\d+))?$")


def layout(spec: ModelSpec) -> Iterator[tuple[str, str, list[NativeEntry]]]:
    """(group path in the file, Keras layer name, its variables in Keras' order) for every layer with
    variables, in the order Keras numbers them."""
    counters: dict[str, int] = {}
    modules: dict[str, list[NativeEntry]] = {}
    for e in keras_order(spec):
        modules.setdefault(e.module, []).append(NativeEntry(e, native_key(e, "keras"), native_shape(e, "keras")))
    for entries in modules.values():
        cls = KERAS_CLASS[entries[0].entry.kind]
        n = counters.get(cls, -1) + 1
        counters[cls] = n
        yield f"layers/{cls}{f'_{n}' if n else ''}", entries[0].key.split("/")[0], entries


def write(weights: Mapping[str, np.ndarray], spec: ModelSpec, path: Path) -> None:
    """Write canonical ``weights`` (already checked against ``spec``) to ``path`` in Keras' layouts, one
    tensor at a time (a transposed kernel lives only while it is written), stamped with the model's name."""
    import h5py

    from resnet_spec.naming import to_native

    with h5py.File(path, "w") as f:
        f.attrs[STAMP_ATTR] = spec.name
        f.create_group("vars")  # the model's own variables: none
        for group, layer, entries in layout(spec):
            g = f.create_group(group).create_group("vars")
            g.attrs["name"] = layer
            for i, ne in enumerate(entries):
                g.create_dataset(str(i), data=to_native(ne.entry, "keras", np.asarray(weights[ne.entry.name])))


def lazy_dataset(path: Path | str, dataset: Any) -> LazyArray:
    """An HDF5 dataset as a LazyArray: read (whole) each time it is asked for."""

    def load() -> np.ndarray:
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None

    return LazyArray(dataset.shape, dataset.dtype, load)


# ---- reading: the file's structure -----------------------------------------------------------------------


@dataclass(frozen=True)
class H5Layer:
    """A layer with variables in a ``.weights.h5``: where it is and what it holds."""

    path: str  # "layers/functional/layers/conv2d_3"
    parent: str  # the model holding it: "" (the file's model) or "layers/functional"
    cls: str  # Keras' snake_case class name: "conv2d"
    index: int  # its number among the parent's layers of that class
    name: str | None  # the layer's name, where the file records it (Keras >= 3.x writes it)
    variables: tuple[Any, ...]  # h5py datasets vars/0, vars/1, ... in Keras' variable order

    @property
    def label(self) -> str:
        return f"{self.path} ({self.name})" if self.name else self.path

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(v.shape) for v in self.variables]


#: What one variable of a ``.weights.h5`` may declare: stored bytes x this (HDF5 compression; Keras writes none) and
#: 1 GiB in all (float64 wide_resnet101_2's largest tensor is 38 MB). Checked before anything is read: a dataset
#: declared large with no data behind it reads as fill values, which would be allocated whole.
MAX_VARIABLE_RATIO = 20
MAX_VARIABLE_BYTES = 1 << 30


def check_declared(dataset: Any, path: str) -> None:
    """One line if a variable declares more bytes than its stored data can hold (or than any ResNet's tensor)."""
    declared = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize if dataset.shape else 0
    stored = int(dataset.id.get_storage_size())
    if declared > MAX_VARIABLE_BYTES or declared > MAX_VARIABLE_RATIO * stored + 4096:
        raise CheckpointError(
            f"{path} declares {list(dataset.shape)} {dataset.dtype} ({declared:,} bytes) with {stored:,} bytes stored: "
            f"not a Keras weights file (a variable holds at most {MAX_VARIABLE_BYTES >> 20} MiB, stored in full)"
        )


def walk(f: Any) -> tuple[list[H5Layer], list[str]]:
    """Every layer with variables, by model and class in Keras' numbering order, and the paths of other
    datasets (optimizer state, random layers' seeds) that are not network weights."""
    import h5py

    found: list[H5Layer] = []
    others: list[str] = []

    def hard(group: Any, name: str) -> bool:
        return isinstance(group.get(name, getlink=True), h5py.HardLink)

    # a stack, not a recursive closure: a closure that refers to itself is a reference cycle, which would keep
    # the file open (through the datasets it holds) until Python's cycle collector runs
    stack: list[tuple[Any, str]] = [(f, "")]
    while stack:
        group, prefix = stack.pop()
        if "layers" in group and not hard(group, "layers"):
            raise CheckpointError(f"{prefix}layers is a link: links are never followed (not a file Keras wrote)")
        layers = group.get("layers")
        if not isinstance(layers, h5py.Group):
            continue
        for key in layers:
            path = f"{prefix}layers/{key}"
            if not hard(layers, key) or ("vars" in layers[key] and not hard(layers[key], "vars")):
                raise CheckpointError(f"{path} is a link: links are never followed (not a file Keras wrote)")
            item = layers[key]
            if not isinstance(item, h5py.Group):
                continue
            if "layers" in item:  # a nested model
                stack.append((item, f"{path}/"))
            vars_ = item.get("vars")
            if isinstance(vars_, h5py.Group) and len(vars_):
                m = _LAYER_KEY_RE.match(key)
                assert m is not None  # the pattern matches any non-empty key
                datasets = [
                    vars_[str(i)]
                    for i in range(len(vars_))
                    if hard(vars_, str(i)) and isinstance(vars_.get(str(i)), h5py.Dataset)
                ]
                if len(datasets) != len(vars_):
                    raise CheckpointError(f"layer {path} holds variables Keras does not number 0..{len(vars_) - 1}")
                for i, dataset in enumerate(datasets):
                    check_declared(dataset, f"{path}/vars/{i}")
                raw = vars_.attrs.get("name")
                name = raw.decode() if isinstance(raw, bytes) else raw if isinstance(raw, str) else None
                found.append(H5Layer(path, prefix.rstrip("/"), m["cls"], int(m["n"] or 0), name, tuple(datasets)))
    mapped = {v.name for layer in found for v in layer.variables}
    f.visititems(lambda n, o: others.append(n) if isinstance(o, h5py.Dataset) and f"/{n}" not in mapped else None)
    found.sort(key=lambda layer: (layer.parent, layer.cls, layer.index))
    return found, others


@dataclass
class Structure:
    """A file's ResNet: the body's layers (one model), the classifier head outside it, and what else."""

    body: list[H5Layer]
    head: H5Layer | None  # a Dense outside the body (transfer learning); None when the body has its own
    notes: list[str] = field(default_factory=list)


def structure(layers: list[H5Layer], source: str) -> Structure:
    """Find the ResNet body (the one model holding Conv2D layers) and a single Dense head outside it."""
    conv_parents = sorted({layer.parent for layer in layers if layer.cls == "conv2d"})
    if not conv_parents:
        raise CheckpointError(f"{source} holds no Conv2D layer: not a ResNet weights file")
    if len(conv_parents) > 1:
        where = ", ".join(p or "the file's model" for p in conv_parents)
        raise CheckpointError(f"{source} holds convolutions in {len(conv_parents)} models ({where}): not one ResNet")
    body_parent = conv_parents[0]
    body = [layer for layer in layers if layer.parent == body_parent]
    outside = [layer for layer in layers if layer.parent != body_parent]
    strange = [layer for layer in body if layer.cls not in _KIND_OF_CLASS]
    if strange:
        listing = ", ".join(f"{layer.label}: {layer.cls}" for layer in strange[:3])
        raise CheckpointError(f"{source}: layers a ResNet does not have ({listing}); not a ResNet of this zoo")
    if not outside:
        return Structure(body, None)
    body_head = [layer for layer in body if layer.cls == "dense"]
    listing = ", ".join(f"{layer.label}: {layer.cls}" for layer in outside[:4])
    if body_head or len(outside) > 1 or outside[0].cls != "dense":
        what = "a second classifier beside the model's own" if body_head else "a head other than one Dense layer"
        raise CheckpointError(
            f"{source}: {what} ({listing}); only a single Dense on the pooled features maps onto the zoo's "
            f"classifier (convert the base model alone, or give the head as one Dense)"
        )
    return Structure(body, outside[0], [f"transfer-learning head {outside[0].label} read as the classifier"])


def _names_map(s: Structure) -> dict[str, H5Layer] | None:
    """``{keras.applications layer name: layer}`` when every body layer carries a keras.applications name
    of its class (no duplicates); None when the file's names cannot say (then Keras' order decides)."""
    out: dict[str, H5Layer] = {}
    for layer in s.body:
        if layer.name is None or layer.name in out:
            return None
        try:
            kind = "fc" if layer.name == "predictions" else module_kind(canonical_module(layer.name))
        except ValueError:
            return None
        if KERAS_CLASS[kind] != layer.cls:
            return None
        out[layer.name] = layer
    if s.head is not None:
        out["predictions"] = s.head
    return out


def _variables(layer: H5Layer, keras_name: str, source: str) -> dict[str, Any]:
    kind = _KIND_OF_CLASS[layer.cls]
    attrs = tuple(native_attrs("keras", kind).values())  # Keras' variable order
    n = len(layer.variables)
    if n not in ((4,) if kind == "bn" else (1, 2)):
        raise CheckpointError(
            f"{source}: layer {layer.label} holds {n} variables; a {layer.cls} of this zoo holds "
            f"{'4' if kind == 'bn' else '1 or 2'} (BatchNormalization with center/scale off is not a ResNet's)"
        )
    return {f"{keras_name}/{attr}": v for attr, v in zip(attrs, layer.variables, strict=False)}


def _order_notes(s: Structure) -> list[str]:
    """A note when the file's positions disagree with its names: Keras' ``load_weights`` reads by position."""
    position = _keras_position([layer.name or "" for layer in s.body])
    for cls in ("conv2d", "batch_normalization"):
        got = [layer.name or "" for layer in s.body if layer.cls == cls]
        if got != sorted(got, key=position):
            return [
                "layers are stored out of Keras' order (a file from resnet-xf before it took keras.applications' "
                "order): read by layer name; Keras' load_weights would misplace them, so rewrite it with resnet convert"
            ]
    return []


_BLOCK_LAYER = re.compile(r"^conv(\d+)_block(\d+)_(\d+|preact)_(conv|bn)$")


def _keras_position(names: list[str]) -> Callable[[str], int]:
    """Sort key of keras.applications' order for the layer names of a body: the stem, then the blocks in turn,
    each in :func:`naming.keras_block_order` (its main path by number, pre-activation BN first and conv before
    BN, its shortcut ``_0_`` layers placed back from the addition), then the rest."""
    blocks: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    for name in names:
        if m := _BLOCK_LAYER.match(name):
            number = -1 if m[3] == "preact" else int(m[3])
            blocks.setdefault((int(m[1]), int(m[2])), []).append((number, m[4] == "bn", name))
    order = [n for n in names if n.startswith("conv1_")]
    for block in sorted(blocks):
        layers = sorted(blocks[block])
        order += keras_block_order([n for k, _, n in layers if k != 0], [n for k, _, n in layers if k == 0])
    position = {name: i for i, name in enumerate(order)}
    return lambda name: position.get(name, len(order))


def read_layers(
    f: Any, source: str, model: str | ModelSpec | None
) -> tuple[ModelSpec | None, dict[str, LazyArray], list[str]]:
    """The ResNet in an open ``.weights.h5``: (the spec when Keras' order had to decide, else None: the
    names identify it), ``{keras.applications key: tensor}`` and notes. Tensors are read when asked for."""
    try:
        layers, others = walk(f)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    s = structure(layers, source)
    notes = list(s.notes)
    if others:
        notes.append(f"{len(others)} dataset(s) that are not network weights left out ({others[0]}, ...)")
    names = _names_map(s)
    native: dict[str, Any] = {}
    if names is not None:  # every layer says what it is: map by name, then check positions
        for name, layer in names.items():
            native.update(_variables(layer, name, source))
        notes += _order_notes(s)
        return None, {k: lazy_dataset(source, v) for k, v in native.items()}, notes
    stamped = f.attrs.get(STAMP_ATTR)
    spec = _spec_of(source, model, stamped, [shape for layer in layers for shape in layer.shapes])
    for layer, keras_name in _by_order(s, spec, source):
        native.update(_variables(layer, keras_name, source))
    notes.append("layers mapped by Keras' layer order (the file records no keras.applications names)")
    return spec, {k: lazy_dataset(source, v) for k, v in native.items()}, notes


def _by_order(s: Structure, spec: ModelSpec, source: str) -> Iterator[tuple[H5Layer, str]]:
    """Pair the file's layers with ``spec``'s in Keras' order, class by class, checking each layer's
    variable shapes; the first layer that differs is named, with what the model has there."""
    expected: dict[str, list[tuple[str, list[tuple[int, ...]]]]] = {}
    for _group, name, entries in layout(spec):
        expected.setdefault(KERAS_CLASS[entries[0].entry.kind], []).append((name, [ne.shape for ne in entries]))
    got: dict[str, list[H5Layer]] = {}
    for layer in [*s.body, *([s.head] if s.head else [])]:
        got.setdefault(layer.cls, []).append(layer)
    for cls in sorted(set(expected) | set(got)):
        want, have = expected.get(cls, []), got.get(cls, [])
        if len(want) != len(have):
            raise CheckpointError(
                f"{source} has {len(have)} {cls} layers where {spec.name} has {len(want)}: not a {spec.name} "
                f"weights file (is --model right?)"
            )
        for layer, (name, shapes) in zip(have, want, strict=True):
            if layer.shapes != shapes:
                raise CheckpointError(
                    f"{source}: layer {layer.label} holds {layer.shapes} where {spec.name} has {name} "
                    f"{shapes} in Keras' layer order; not a {spec.name} weights file (is --model right?)"
                )
            yield layer, name


def read(path: Path, model: str | ModelSpec | None) -> tuple[ModelSpec | None, dict[str, LazyArray], list[str]]:
    """A ``.weights.h5`` (see :func:`read_layers`); the file stays open while its tensors are alive."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} as HDF5: {exc}") from None
    try:
        return read_layers(f, str(path), model)
    except BaseException:
        f.close()
        raise


def _spec_of(source: str, model: str | ModelSpec | None, stamped: object, shapes: list[tuple[int, ...]]) -> ModelSpec:
    """The architecture: given, stamped by :func:`write`, or the one zoo model whose variable shapes match;
    build options (head size, input channels, CIFAR stem) are read off the shapes."""
    if isinstance(model, ModelSpec):  # given as it is (a derived spec has no name to look up)
        return model
    name = model or (stamped.decode() if isinstance(stamped, bytes) else stamped)
    given = Counter(shapes)
    names = [name] if isinstance(name, str) and name else list_models()
    matches = [
        s
        for n in names
        for s in _candidates(n, shapes)
        if Counter(native_shape(e, "keras") for e in keras_order(s)) == given
    ]
    if len(matches) == 1 or (matches and len(names) == 1):
        return matches[0]
    if len(names) == 1:  # named, but no option fits: build the plain model so the read names what is missing
        return get_spec(names[0], num_classes=_num_classes(shapes))
    found = "several models" if matches else "no zoo model"
    raise CheckpointError(f"{source}: its variable shapes match {found}; give the architecture with --model")


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
