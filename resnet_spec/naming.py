"""Canonical <-> native names and layouts for torch, paddle, keras and flax, by rule.

Native names follow each ecosystem's zoo so official checkpoints load as they are:
torchvision ``layer1.0.bn1.running_mean``; paddle.vision ``layer1.0.bn1._mean``;
keras.applications ``conv2_block1_1_bn/moving_mean``; Flax's examples/imagenet ``ResNetBlock_0/BatchNorm_0/mean``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from resnet_spec import layouts
from resnet_spec.frameworks import conventions
from resnet_spec.model_spec import ModelSpec
from resnet_spec.params import ParamEntry, canonical_table

#: torch BatchNorm's batch counter: in torchvision's state_dict keys, not a weight of any framework.
TORCH_BN_COUNTER = "num_batches_tracked"


_KERAS_TOP = {"conv1": "conv1_conv", "bn1": "conv1_bn", "post_bn": "post_bn", "fc": "predictions"}
_KERAS_TOP_INV = {v: k for k, v in _KERAS_TOP.items()}
_BLOCK_RE = re.compile(r"^layer(\d+)\.(\d+)\.(conv\d+|bn\d+|downsample\.[01]|preact_bn)$")
_KERAS_BLOCK_RE = re.compile(r"^conv(\d+)_block(\d+)_(\d+_conv|\d+_bn|preact_bn)$")
#: A deep stem's layers (``resnet_spec.plan.stem_layers``): ``conv1.{3i}`` (a conv) and ``conv1.{3i+1}`` (its BN),
#: a ReLU between; in Keras ``conv1_{i+1}_conv`` and ``conv1_{i+1}_bn``.
_DEEP_STEM_RE = re.compile(r"^conv1\.(\d+)$")
_KERAS_DEEP_STEM_RE = re.compile(r"^conv1_(\d+)_(conv|bn)$")


def native_attrs(framework: str, kind: str) -> dict[str, str]:
    """Canonical attribute -> the framework's attribute name for a conv, bn or fc, in the order the framework
    holds them (Keras' variable order: kernel, bias; gamma, beta, moving mean, moving variance)."""
    return dict(conventions(framework).attrs[kind])


def keras_block_name(stage: int, index: int) -> str:
    """keras.applications prefix of block ``index`` (0-based) of stage ``stage`` (1-based): ``conv2_block1``."""
    return f"conv{stage + 1}_block{index + 1}"


def keras_layer_name(module: str) -> str:
    """Canonical module path -> keras.applications layer name (``layer1.0.conv2`` -> ``conv2_block1_2_conv``)."""
    if module in _KERAS_TOP:
        return _KERAS_TOP[module]
    deep = _DEEP_STEM_RE.match(module)
    if deep and int(deep[1]) % 3 < 2:
        return f"conv1_{int(deep[1]) // 3 + 1}_{'conv' if int(deep[1]) % 3 == 0 else 'bn'}"
    m = _BLOCK_RE.match(module)
    if not m:
        raise ValueError(f"no keras name for module {module!r}")
    stage, index, part = int(m[1]), int(m[2]), m[3]
    if part == "downsample.0":
        suffix = "0_conv"
    elif part == "downsample.1":
        suffix = "0_bn"
    elif part == "preact_bn":
        suffix = "preact_bn"
    else:
        match = re.fullmatch(r"(conv|bn)(\d+)", part)
        if match is None:
            raise ValueError(f"not a block module: {part!r}")
        kind, k = match.groups()
        suffix = f"{k}_{kind}"
    return f"{keras_block_name(stage, index)}_{suffix}"


def canonical_module(keras_name: str) -> str:
    """keras.applications layer name -> canonical module path (inverse of :func:`keras_layer_name`)."""
    if keras_name in _KERAS_TOP_INV:
        return _KERAS_TOP_INV[keras_name]
    deep = _KERAS_DEEP_STEM_RE.match(keras_name)
    if deep and int(deep[1]) >= 1:
        return f"conv1.{3 * (int(deep[1]) - 1) + (deep[2] == 'bn')}"
    m = _KERAS_BLOCK_RE.match(keras_name)
    if not m:
        raise ValueError(f"not a ResNet layer name: {keras_name!r}")
    stage, index, part = int(m[1]) - 1, int(m[2]) - 1, m[3]
    if part == "preact_bn":
        tail = "preact_bn"
    else:
        k, kind = part.split("_")
        tail = f"downsample.{0 if kind == 'conv' else 1}" if k == "0" else f"{kind}{k}"
    return f"layer{stage}.{index}.{tail}"


_FLAX_TOP = {"conv1": "conv_init", "bn1": "bn_init", "post_bn": "norm_post", "fc": "Dense_0"}
_FLAX_TOP_INV = {v: k for k, v in _FLAX_TOP.items()}
_FLAX_PARTS = {"downsample.0": "conv_proj", "downsample.1": "norm_proj", "preact_bn": "norm_preact"}
_FLAX_PARTS_INV = {v: k for k, v in _FLAX_PARTS.items()}
#: Flax's examples/imagenet block classes (its auto-names ``ResNetBlock_N``); the pre-activation pair is ours.
FLAX_BLOCKS = {
    ("basic", False): "ResNetBlock",
    ("bottleneck", False): "BottleneckResNetBlock",
    ("basic", True): "PreActResNetBlock",
    ("bottleneck", True): "PreActBottleneckResNetBlock",
}
_FLAX_BLOCK_RE = re.compile(r"^(\w+?)_(\d+)/(Conv_\d+|BatchNorm_\d+|conv_proj|norm_proj|norm_preact)$")
_FLAX_DEEP_STEM_RE = re.compile(r"^(conv|bn)_init_(\d+)$")


def flax_block_name(spec: ModelSpec, stage: int, index: int) -> str:
    """Flax's example names a block by its class and its place over the whole network (``ResNetBlock_5``:
    linen's auto-naming), so the name of ``layer{stage}.{index}`` needs the stage depths before it."""
    return f"{FLAX_BLOCKS[(spec.block, spec.preact)]}_{sum(spec.depths[: stage - 1]) + index}"


def flax_module_name(module: str, spec: ModelSpec) -> str:
    """Canonical module path -> Flax example path (``layer2.0.conv1`` -> ``ResNetBlock_2/Conv_0`` in a resnet18)."""
    if module in _FLAX_TOP:
        return _FLAX_TOP[module]
    deep = _DEEP_STEM_RE.match(module)
    if deep and int(deep[1]) % 3 < 2:  # a deep stem: conv_init_0, bn_init_0, conv_init_1, ...
        return f"{'conv' if int(deep[1]) % 3 == 0 else 'bn'}_init_{int(deep[1]) // 3}"
    m = _BLOCK_RE.match(module)
    if not m:
        raise ValueError(f"no flax name for module {module!r}")
    part = m[3]
    if part not in _FLAX_PARTS:
        kind, k = re.fullmatch(r"(conv|bn)(\d+)", part).groups()  # type: ignore[union-attr]
        part = f"{'Conv' if kind == 'conv' else 'BatchNorm'}_{int(k) - 1}"
    else:
        part = _FLAX_PARTS[part]
    return f"{flax_block_name(spec, int(m[1]), int(m[2]))}/{part}"


def flax_canonical_module(name: str, depths: Sequence[int]) -> str:
    """Flax example path -> canonical module path, given the stage depths (inverse of :func:`flax_module_name`)."""
    if name in _FLAX_TOP_INV:
        return _FLAX_TOP_INV[name]
    deep = _FLAX_DEEP_STEM_RE.match(name)
    if deep:
        return f"conv1.{3 * int(deep[2]) + (deep[1] == 'bn')}"
    m = _FLAX_BLOCK_RE.match(name)
    if not m or m[1] not in FLAX_BLOCKS.values():
        raise ValueError(f"not a Flax ResNet module name: {name!r}")
    k = int(m[2])
    if k >= sum(depths):
        raise ValueError(f"{name!r}: block {k} beyond the {sum(depths)} blocks of depths {tuple(depths)}")
    stage = next(s for s in range(len(depths)) if k < sum(depths[: s + 1]))
    index = k - sum(depths[:stage])
    part = _FLAX_PARTS_INV.get(m[3])
    if part is None:
        kind, n = m[3].split("_")
        part = f"{'conv' if kind == 'Conv' else 'bn'}{int(n) + 1}"
    return f"layer{stage + 1}.{index}.{part}"


def native_module(module: str, framework: str, spec: ModelSpec | None = None) -> str:
    """Canonical module path -> the framework's module/layer name (Flax's needs the spec: its blocks are numbered
    over the network)."""
    layer_names = conventions(framework).layer_names
    if layer_names == "keras.applications":
        return keras_layer_name(module)
    if layer_names == "flax example":
        if spec is None:
            raise ValueError(f"{framework} names blocks over the whole network: its names need the spec")
        return flax_module_name(module, spec)
    return module


def native_key(entry: ParamEntry, framework: str, spec: ModelSpec | None = None) -> str:
    """The framework's key for a tensor: ``module.attr`` (torch/paddle) or ``layer/attr`` (keras, flax)."""
    conv = conventions(framework)
    module = native_module(entry.module, framework, spec)
    return f"{module}{conv.key_sep}{conv.native_attr(entry.kind, entry.attr)}"


def to_native(entry: ParamEntry, framework: str, array: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """Canonical layout -> the framework's layout for this tensor. ``copy=False``: where the layout is
    unchanged, the array itself (for a writer that does not keep it: no second copy of a checkpoint)."""
    transform = conventions(framework).to_native.get((entry.kind, entry.attr))
    if transform is None:
        return layouts.identity(array) if copy else np.ascontiguousarray(array)
    return transform(array)


def from_native(entry: ParamEntry, framework: str, array: np.ndarray) -> np.ndarray:
    """The framework's layout -> canonical layout for this tensor."""
    return conventions(framework).from_native.get((entry.kind, entry.attr), layouts.identity)(array)


def canonical_shape(framework: str, kind: str, attr: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The canonical shape of a tensor of ``shape`` in the framework's layout (paddle's Linear [in, out])."""
    transform = conventions(framework).from_native.get((kind, attr), layouts.identity)
    return tuple(transform(np.empty(shape, dtype=np.int8)).shape)


def native_shape(entry: ParamEntry, framework: str) -> tuple[int, ...]:
    """Shape of the tensor in the framework's layout."""
    return tuple(to_native(entry, framework, np.empty(entry.shape, dtype=np.int8)).shape)


@dataclass(frozen=True)
class NativeEntry:
    """A canonical entry with its native key and native shape for one framework."""

    entry: ParamEntry
    key: str
    shape: tuple[int, ...]


def native_table(spec: ModelSpec, framework: str) -> list[NativeEntry]:
    """The canonical table annotated with one framework's keys and shapes."""
    conventions(framework)  # an unknown framework is one ValueError naming the known ones
    return [NativeEntry(e, native_key(e, framework, spec), native_shape(e, framework)) for e in canonical_table(spec)]


def keras_order(spec: ModelSpec) -> list[ParamEntry]:
    """The canonical table in the order Keras 3 lists the layers of the keras.applications-style model
    (``model.layers``), which is the order a ``.weights.h5`` numbers them in (``layers/conv2d_3``).

    keras.applications adds a block's branches as ``Add([shortcut, residual])``; Keras orders a functional
    graph by depth, ties broken by that input order, so counted back from the addition each shortcut layer
    comes just before the main-path layer as far from it: ``1_conv 1_bn 2_conv 2_bn 0_conv 3_conv 0_bn 3_bn``
    with a conv + BN shortcut, ``... 3_conv 0_conv 3_bn`` with a conv alone (d2l's), ``... 0_conv 3_conv`` in a
    pre-activation block. ``resnet_keras`` wires every block that way, so the rule holds for the models
    keras.applications lacks (basic blocks, ResNeXt, wide) too; ``parity_tests`` checks it against both models'
    layer lists.
    """
    blocks: dict[str, list[ParamEntry]] = {}
    for e in canonical_table(spec):
        m = _BLOCK_RE.match(e.module)
        blocks.setdefault(f"layer{m[1]}.{m[2]}" if m else e.module, []).append(e)
    out: list[ParamEntry] = []
    for entries in blocks.values():
        modules = list(dict.fromkeys(e.module for e in entries))
        order = keras_block_order(
            [m for m in modules if ".downsample." not in m], [m for m in modules if ".downsample." in m]
        )
        out += sorted(entries, key=lambda e: order.index(e.module))
    return out


def keras_block_order(main: Sequence[str], shortcut: Sequence[str]) -> list[str]:
    """One block's layers in Keras' order (:func:`keras_order`): counted back from the addition, each shortcut
    layer just before the main-path layer as far from it."""
    order = list(main)
    for back, layer in enumerate(reversed(shortcut)):
        if back < len(main):
            order.insert(order.index(main[-1 - back]), layer)
    return order


_CONV_MODULE_RE = re.compile(r"(^conv1$|\.conv\d+$|\.downsample\.0$)")
_BN_MODULE_RE = re.compile(r"(^bn1$|^post_bn$|\.bn\d+$|\.preact_bn$|\.downsample\.1$)")


def module_kind(module: str) -> str:
    """conv, bn or fc for a canonical module path (by naming rule)."""
    if module == "fc":
        return "fc"
    deep = _DEEP_STEM_RE.match(module)
    if deep and int(deep[1]) % 3 < 2:  # a deep stem: conv, BN, ReLU, conv, ...
        return "conv" if int(deep[1]) % 3 == 0 else "bn"
    if _CONV_MODULE_RE.search(module):
        return "conv"
    if _BN_MODULE_RE.search(module):
        return "bn"
    raise ValueError(f"not a ResNet module: {module!r}")


def canonical_entry_from_native(
    key: str, framework: str, shape: tuple[int, ...], depths: Sequence[int] | None = None
) -> ParamEntry:
    """Parse a native key into a canonical entry (shape given in the framework's layout; Flax's names need the
    stage ``depths``)."""
    conv = conventions(framework)
    module, _, attr = key.rpartition(conv.key_sep)
    if conv.layer_names == "keras.applications":
        module = canonical_module(module)
    elif conv.layer_names == "flax example":
        if depths is None:
            raise ValueError(f"{framework} key {key!r}: its blocks are numbered over the network; give the depths")
        module = flax_canonical_module(module, depths)
    kind = module_kind(module)
    inverse = {v: k for k, v in conv.attrs[kind].items()}
    if attr not in inverse:
        raise ValueError(f"unknown attribute {attr!r} for {kind} {module!r} in {framework} key {key!r}")
    entry = ParamEntry(module, kind, inverse[attr], tuple(shape))
    canonical_shape = tuple(from_native(entry, framework, np.empty(shape, dtype=np.int8)).shape)
    return ParamEntry(module, kind, entry.attr, canonical_shape)


def canonical_from_native(native: dict[str, np.ndarray], framework: str) -> dict[str, np.ndarray]:
    """A framework's ``{native_key: array}`` -> ``{canonical_name: array}`` by naming rule, no spec needed."""
    out = {}
    for key, array in native.items():
        entry = canonical_entry_from_native(key, framework, tuple(np.shape(array)))
        out[entry.name] = from_native(entry, framework, np.asarray(array))
    return out


def to_canonical(spec: ModelSpec, framework: str, native: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{native_key: array}`` (weights or their gradients) -> ``{canonical_name: array}``, keys via the spec."""
    return {
        ne.entry.name: from_native(ne.entry, framework, np.asarray(native[ne.key]))
        for ne in native_table(spec, framework)
        if ne.key in native
    }
