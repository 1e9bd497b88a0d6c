"""Derived specs: the spec of a ResNet outside the zoo, read off its layers (a CIFAR ResNet-20 with zero-padding
shortcuts, a ResNet-26 of one's own), as a YAML document of the zoo's own format, validated by the same schema.

The layers (a conv, a BN, a Linear, each with its module path and shape, in forward order) are cut into the stem,
one group per residual block (the modules at one level of numbered containers, ``layer1.0``, ``stages.0.blocks.3``)
and the head. Each block's convs give its kind (two 3x3: basic; 1x1, 3x3, 1x1: bottleneck), width and shortcut
(a 1x1 conv from the block's input to its output: a projection, with or without BN; none where the channels change:
option A's zero padding); stages are runs of blocks with the same output width. What the layers cannot show is
taken as He et al. build it and listed by :func:`derived_assumptions`: the stride (2, in the first block of every
stage after the first), a ReLU after each addition, the stem's stride and pool read off its kernel (3x3: CIFAR's,
stride 1, no pool; 7x7: ImageNet's, stride 2 and a 3x3 max-pool).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from resnet_spec.errors import SpecError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.params import count_params
from resnet_spec.spec import SPEC_PATH, is_zoo_model, load_document, resolve_model, validate_document


@dataclass(frozen=True)
class Layer:
    """One conv, BN or Linear: its module path, kind (conv | bn | fc), canonical shape and bias."""

    path: str
    kind: str
    shape: tuple[int, ...]
    has_bias: bool = False


def _numbered(path: str) -> list[str]:
    """The prefixes of ``path`` that end in a number: ``a.1.b.0.c`` -> ``a.1``, ``a.1.b.0``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i, p in enumerate(parts) if p.isdigit() and i + 1 < len(parts)]


def _blocks(layers: Sequence[Layer]) -> tuple[list[Layer], list[list[Layer]], list[Layer]]:
    """(stem, blocks, head): the shallowest level of numbered containers whose groups each hold two to four convs
    and follow one another, with nothing but the stem before and the head after them."""
    depth = max((len(_numbered(layer.path)) for layer in layers), default=0)
    for level in range(depth):
        keys = [(_numbered(layer.path) + [""] * (level + 1))[level] for layer in layers]
        inside = [i for i, k in enumerate(keys) if k]
        if not inside:
            continue
        first, last = inside[0], inside[-1]
        if any(not keys[i] for i in range(first, last + 1)):
            continue
        groups: dict[str, list[Layer]] = {}
        order: list[str] = []
        for i in range(first, last + 1):
            if keys[i] not in groups:
                order.append(keys[i])
            elif order[-1] != keys[i]:
                break  # a group that is not contiguous
            groups.setdefault(keys[i], []).append(layers[i])
        else:
            if all(2 <= sum(u.kind == "conv" for u in g) <= 4 for g in groups.values()):
                return list(layers[:first]), [groups[k] for k in order], list(layers[last + 1 :])
    raise SpecError("its residual blocks are not modules of their own (no level of numbered modules holds 2-4 convs)")


@dataclass(frozen=True)
class _Block:
    kind: str  # basic | bottleneck
    cin: int
    cout: int
    inner: int  # bottleneck width (3x3 conv channels)
    groups: int
    shortcut: str  # projection | conv | none
    inner_bias: bool
    last_bias: bool
    shortcut_bias: bool
    widen_on: str = "conv1"  # basic: the conv that changes the width (``ModelSpec.widen_on``)


def _read_block(block: Sequence[Layer], cin: int, where: str) -> _Block:
    convs = [u for u in block if u.kind == "conv"]
    bns = [u for u in block if u.kind == "bn"]
    if any(u.kind == "fc" for u in block):
        raise SpecError(f"block {where} holds a Linear layer")
    k3 = [c for c in convs if c.shape[2:] == (3, 3)]
    k1 = [c for c in convs if c.shape[2:] == (1, 1)]
    if len(k3) + len(k1) != len(convs):
        raise SpecError(f"block {where} has a conv that is neither 1x1 nor 3x3")
    widen_on = "conv1"
    if len(k3) == 2:  # basic: 3x3 (cin -> w), 3x3 (w -> w), or 3x3 (cin -> cin), 3x3 (cin -> w); optional projection
        a, b = k3
        if a.shape[1] != cin or a.shape[0] != b.shape[1] or a.shape[0] not in (b.shape[0], cin):
            raise SpecError(
                f"block {where}: its 3x3 convs go {a.shape[1]}->{a.shape[0]}->{b.shape[0]} channels from {cin}; "
                f"a basic block goes {cin}->width->width or {cin}->{cin}->width"
            )
        widen_on = "conv2" if a.shape[0] == cin != b.shape[0] else "conv1"
        main, cout, inner, groups, proj = [a, b], b.shape[0], b.shape[0], 1, k1
    elif len(k3) == 1 and len(k1) in (2, 3):  # bottleneck: 1x1 (cin -> m), 3x3 (m -> m), 1x1 (m -> cout)
        mid = k3[0]
        inner, groups = mid.shape[0], mid.shape[0] // max(mid.shape[1], 1)
        first = [c for c in k1 if c.shape[1] == cin and c.shape[0] == inner]
        last = [c for c in k1 if c.shape[1] == inner and c not in first[:1]]
        if not first or not last:
            raise SpecError(f"block {where}: no 1x1 -> 3x3 -> 1x1 path from {cin} channels")
        cout = last[0].shape[0]
        main = [first[0], mid, last[0]]
        proj = [c for c in k1 if c not in main]
    else:
        raise SpecError(f"block {where}: {len(k3)} 3x3 and {len(k1)} 1x1 convs make neither a basic nor a bottleneck")
    if proj and (len(proj) > 1 or proj[0].shape[:2] != (cout, cin)):
        raise SpecError(f"block {where}: a 1x1 conv that is no projection from {cin} to {cout} channels")
    if len(bns) not in (len(main), len(main) + bool(proj)):
        raise SpecError(
            f"block {where}: {len(bns)} BNs for {len(main)} convs (pre-activation blocks are not derived yet)"
        )
    shortcut = "none" if not proj else "projection" if len(bns) > len(main) else "conv"
    return _Block(
        "basic" if len(k3) == 2 else "bottleneck",
        cin,
        cout,
        inner,
        groups,
        shortcut,
        main[0].has_bias,
        main[-1].has_bias,
        bool(proj) and proj[0].has_bias,
        widen_on,
    )


_SHORTCUTS = {"projection": "projection_when_needed", "conv": "conv_when_needed", "none": "zero_pad_when_needed"}


def derive_document(layers: Sequence[Layer], name: str | None = None) -> dict[str, Any]:
    """The zoo YAML document (one variant, one model) of the ResNet these layers make; SpecError in one line
    naming what does not fit the spec language."""
    stem, blocks, head = _blocks(layers)
    kinds = [u.kind for u in stem]
    convs = [u for u in stem if u.kind == "conv"]
    deep = len(convs) > 1
    # one conv, optionally with a BN; or a deep stem: 3x3 convs each with a BN (the last one's optional)
    if not convs or kinds not in (["conv", "bn"] * len(convs), (["conv", "bn"] * len(convs))[:-1]):
        raise SpecError(f"its stem is {'+'.join(kinds) or 'nothing'} (a conv, each with a BN, is derived)")
    if deep and any(u.shape[2:] != (3, 3) for u in convs):
        raise SpecError("its stem has several convs that are not all 3x3 (a deep stem's are)")
    conv = convs[-1]
    if not deep and conv.shape[2:] not in ((3, 3), (7, 7)):
        raise SpecError(f"its stem conv is {conv.shape[2]}x{conv.shape[3]} (3x3 CIFAR or 7x7 ImageNet stems)")
    if [u.kind for u in head] not in ([], ["fc"]):
        raise SpecError(f"its head is {'+'.join(u.kind for u in head)} (a Linear, or none, is derived)")
    read, cin = [], conv.shape[0]
    for i, group in enumerate(blocks):
        read.append(_read_block(group, cin, _where(group, i)))
        cin = read[-1].cout
    block_kinds = {b.kind for b in read}
    if len(block_kinds) > 1:
        raise SpecError("it mixes basic and bottleneck blocks")
    widen = {b.widen_on for b in read if b.cin != b.cout}
    if len(widen) > 1:
        raise SpecError("some of its basic blocks widen on the first conv, others on the second")
    stages: list[list[_Block]] = []
    for b in read:
        if not stages or b.cin != b.cout:
            stages.append([])
        stages[-1].append(b)
    changes = [b for b in read if b.cin != b.cout]
    kinds_sc = {b.shortcut for b in changes} or {"projection"}
    if len(kinds_sc) > 1 or any(b.shortcut != "none" for b in read if b.cin == b.cout):
        raise SpecError("its shortcuts are not one kind: a projection exactly where the channels change, or none")
    block = read[0]
    expansion = 1 if block.kind == "basic" else 4
    widths = [st[0].cout // expansion for st in stages]
    if block.kind == "bottleneck" and any(st[0].cout % 4 for st in stages):
        raise SpecError("its bottleneck outputs are not 4x its width")
    planes = widths[0]
    wpg = block.inner * 64 // (planes * block.groups) if block.kind == "bottleneck" else 64
    cifar = conv.shape[2] == 3 and not deep
    # weighted layers, a deep stem counted as one (as timm's resnet50d)
    depth = 1 + sum(2 if b.kind == "basic" else 3 for b in read) + (1 if head else 0)
    name = name or f"resnet{depth}{'_cifar' if cifar else '_deep' if deep else '_derived'}"
    if is_zoo_model(name):
        name += "_derived"
    variant = {
        "preprocessing": "cifar" if cifar else "torchvision",
        "preact": False,
        "stride_on": "conv3x3",
        "stride_block": "first",
        "stage_strides": [1] + [2] * (len(stages) - 1),
        "conv_bias": {
            "stem": conv.has_bias,
            "shortcut": block.shortcut_bias,
            "inner": block.inner_bias,
            "last": block.last_bias,
        },
        "bn_eps": 1.0e-5,
        "bn_momentum": 0.1,
        "stem": {
            "kind": "cifar" if cifar else "imagenet",
            "width": conv.shape[0],
            "kernel": conv.shape[2],
            "stride": 1 if cifar else 2,
            "norm": kinds[-1] == "bn",
            "pool": not cifar,
            "pool_pad": "neg_inf",
            **({"deep": [c.shape[0] for c in convs[:-1]]} if deep else {}),
        },
        "shortcut": _SHORTCUTS[kinds_sc.pop()],
        "post_norm": False,
        **({"widen_on": "conv2"} if widen == {"conv2"} else {}),
    }
    entry: dict[str, Any] = {
        "variant": name,
        "block": block.kind,
        "depths": [len(st) for st in stages],
        "widths": widths,
        "num_classes": head[0].shape[0] if head else 0,
        "in_channels": convs[0].shape[1],
    }
    if block.kind == "bottleneck":
        entry |= {"groups": block.groups, "width_per_group": wpg}
    doc = _zoo_frame()
    doc["variants"] = {name: variant}
    doc["models"] = {name: entry}
    entry["params"] = {"trainable": 1, "bn_stats": 1}  # placeholders: counted from the spec, then checked
    trainable, stats = count_params(_resolve(doc, check=False))
    entry["params"] = {"trainable": trainable, "bn_stats": stats}
    return doc


def natural_key(path: str) -> tuple[tuple[int, int, str], ...]:
    """A module path as a sort key, numbers compared as numbers (``blocks.10`` after ``blocks.2``)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split("."))


def _where(block: Sequence[Layer], index: int) -> str:
    prefix = _numbered(block[0].path)
    return f"{index} ({prefix[-1] if prefix else block[0].path})"


def _resolve(doc: dict[str, Any], *, check: bool = True) -> ModelSpec:
    """The one model of a derived document, validated by the zoo's schema (``check``: its counts too)."""
    name = next(iter(doc["models"]))
    path = Path(f"{name}.yaml")  # how messages name it
    if not check:
        validate_document(doc, path)
        return resolve_model(name, doc["models"][name], doc, path, derived=True)
    return load_document(doc, path, derived=True)[name]


def _zoo_frame() -> dict[str, Any]:
    """The zoo document's blocks, preprocessing and defaults (a derived document shares them)."""
    doc = yaml.safe_load(SPEC_PATH.read_text())
    return {k: copy.deepcopy(doc[k]) for k in ("schema_version", "blocks", "preprocessing", "defaults")}


def derive(layers: Sequence[Layer], name: str | None = None) -> ModelSpec:
    """The derived spec of these layers (see the module docstring)."""
    return _resolve(derive_document(layers, name))


def document_of(spec: ModelSpec) -> dict[str, Any]:
    """The zoo document (one variant, one model) that resolves to ``spec``, build options included: how a
    derived spec travels (``resnet convert --save-spec``, our files' metadata)."""
    variant = {
        "preprocessing": spec.preprocessing,
        "preact": spec.preact,
        "stride_on": spec.stride_on,
        "stride_block": spec.stride_block,
        "stage_strides": list(spec.stage_strides),
        "conv_bias": dataclasses.asdict(spec.conv_bias),
        "bn_eps": spec.bn_eps,
        "bn_momentum": spec.bn_momentum,
        "stem": {**dataclasses.asdict(spec.stem), "deep": list(spec.stem.deep)},
        "shortcut": spec.shortcut,
        "channel_pad": spec.channel_pad,
        "downsample": spec.downsample,
        "widen_on": spec.widen_on,
        "padding": spec.padding,
        "post_norm": spec.post_norm,
    }
    trainable, stats = count_params(spec)
    entry = {
        "variant": spec.name,
        "block": spec.block,
        "depths": list(spec.depths),
        "widths": list(spec.widths),
        "groups": spec.groups,
        "width_per_group": spec.width_per_group,
        "num_classes": spec.num_classes,
        "in_channels": spec.in_channels,
        "params": {"trainable": trainable, "bn_stats": stats},
    }
    return {**_zoo_frame(), "variants": {spec.name: variant}, "models": {spec.name: entry}}


def from_document(doc: Any) -> ModelSpec:
    """The one model of a derived document (as :func:`document_of` writes it), validated; SpecError if not."""
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict) or len(doc["models"]) != 1:
        raise SpecError("a derived spec holds exactly one model")
    return _resolve(doc)


def spec_yaml(doc: dict[str, Any]) -> str:
    """A derived document as the YAML to save beside the zoo's (``resnet --spec FILE.yaml`` makes it the zoo)."""
    head = "# A derived spec (resnet convert --save-spec): the zoo's format; resnet --spec FILE uses it as the zoo.\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


def canonical_layers(shapes: Mapping[str, tuple[int, ...]]) -> list[Layer]:
    """The layers of a file in the zoo's canonical names, in forward order (the stem, the blocks by number, the
    post-norm, the head), whatever order the file keeps them in."""
    from resnet_spec.naming import module_kind

    modules: dict[str, list[str]] = {}
    for name in shapes:
        module, _, _attr = name.rpartition(".")
        modules.setdefault(module, []).append(name)

    def rank(module: str) -> tuple[Any, ...]:
        top = 0 if module.startswith("conv1.") else {"conv1": 0, "bn1": 1, "post_bn": 3, "fc": 4}.get(module, 2)
        return (top, natural_key(module))

    out = []
    for module in sorted(modules, key=rank):
        kind = module_kind(module)
        weight = shapes.get(f"{module}.weight", ())
        out.append(Layer(module, kind, tuple(weight), f"{module}.bias" in shapes and kind == "conv"))
    return out


def derived_assumptions(spec: ModelSpec) -> list[str]:
    """What a derived spec takes as He et al. build it, which no layer shows."""
    strides = ", ".join(map(str, spec.stage_strides))
    stem = "3x3 stride 1, no pool (CIFAR)" if spec.stem.kind == "cifar" else "stride 2 and a 3x3 max-pool"
    if spec.stem.deep:
        stem = "a deep stem whose first 3x3 conv strides 2, ReLUs between, and a 3x3 max-pool"
    return [
        f"derived {spec.name} ({len(spec.depths)} stages of {', '.join(map(str, spec.depths))} {spec.block} blocks, "
        f"widths {', '.join(map(str, spec.widths))}, shortcut {spec.shortcut}); assumed, as no weight shows: stage "
        f"strides {strides} in each stage's first block, the stem {stem}, a ReLU after the stem's BN and after each "
        f"addition; "
        f"--reference FILE.py:CALLABLE proves it against your code"
    ]
