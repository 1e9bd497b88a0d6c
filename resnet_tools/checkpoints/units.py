"""A checkpoint's units and the zoo model they fit: the types of a structural mapping (:mod:`structure` maps
the units onto the zoo model's modules, block by block).

A state dict in any naming is grouped into units (a conv, a BN, a Linear) by module path, in the file's order;
the zoo model is the one whose units have the same kinds and shapes (head size, input channels and the CIFAR stem
read off them; a conv without bias fits a conv with one, as a zero bias).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.derive import Layer, derive
from resnet_spec.errors import CheckpointError, SpecError
from resnet_spec.identify import EXTENDED
from resnet_spec.lookalikes import axis, differences, variants
from resnet_spec.naming import TORCH_BN_COUNTER, canonical_shape, native_attrs
from resnet_spec.params import ParamEntry, canonical_table
from resnet_spec.spec import get_spec, list_models

#: Words in a module path that mark a block's shortcut branch.
SHORTCUT_HINTS = re.compile(r"(down|short|proj|skip|identity|(^|[._])sc([._]|$))", re.IGNORECASE)


@dataclass(frozen=True)
class Unit:
    """One conv, BN or Linear of the file: its module path, kind, keys and canonical weight shape."""

    path: str
    kind: str  # conv | bn | fc
    keys: dict[str, str]  # canonical attr -> the file's key
    shape: tuple[int, ...]  # conv OIHW, fc [out, in], bn (C,)
    order: int  # position among the file's units

    @property
    def has_bias(self) -> bool:
        return "bias" in self.keys


@dataclass(frozen=True)
class Target:
    """One canonical module of the zoo model."""

    module: str
    kind: str
    shape: tuple[int, ...]
    has_bias: bool


@dataclass
class Trace:
    """One forward pass of the user's model (``--reference``): the layers in the order they ran, what each read
    and wrote."""

    order: list[str] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=dict)  # layer path -> id of the tensor it read
    writes: dict[str, int] = field(default_factory=dict)  # layer path -> id of the tensor it wrote
    module_out: dict[str, np.ndarray] = field(default_factory=dict)  # every module's output (last call)
    module_in: dict[str, np.ndarray] = field(default_factory=dict)  # every module's input (first call)
    logits: np.ndarray | None = None
    x: np.ndarray | None = None
    block_ends: list[str] = field(default_factory=list)  # layers ending each residual block, where not modules


@dataclass
class StructureMap:
    """The result: the zoo model, ``{canonical module: unit}`` and notes on how it was found. ``spec`` is
    None until known for a file in the zoo's own names (its spec is identified from the canonical tensors)."""

    spec: ModelSpec | None
    units: dict[str, Unit]
    framework: str
    notes: list[str] = field(default_factory=list)
    trace: Trace | None = None  # --reference: the run of the user's model the map came from
    candidates: list[ModelSpec] = field(default_factory=list)  # --reference: look-alikes its proof chooses among
    runs_in: str | None = None  # --reference: the framework the user's model runs in, if not ``framework`` (Keras')

    def rows(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(the file's key, canonical name, canonical shape) for every tensor, in the zoo's order."""
        shapes = {e.name: e.shape for e in canonical_table(self.spec)} if self.spec else {}
        out = []
        for module, unit in self.units.items():
            for attr, key in unit.keys.items():
                out.append((key, f"{module}.{attr}", shapes.get(f"{module}.{attr}", ())))
        return out


@dataclass(frozen=True)
class Flow:
    """What running the user's model showed (``--reference``): the conv each BN reads from, and the id of the
    tensor each layer reads. It replaces the name-based clues: the mapping then follows the execution."""

    partner: dict[str, str]
    reads: dict[str, int]


# ---- units -------------------------------------------------------------------------------------------------


def units_of(native: Mapping[str, Any], framework: str) -> list[Unit]:
    """Group ``{key: tensor}`` into units by module path, in the file's order. A key that fits no unit is
    named in one line with what was expected."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in native.items():
        path, _, attr = key.rpartition(".")
        if attr == TORCH_BN_COUNTER:
            continue
        groups.setdefault(path, {})[attr] = value
    bn_native = {v: k for k, v in native_attrs(framework, "bn").items()}
    out: list[Unit] = []
    for path, tensors in groups.items():
        shapes = {a: tuple(np.shape(v)) for a, v in tensors.items()}
        weight = shapes.get("weight")
        if set(tensors) == set(bn_native) and len(set(shapes.values())) == 1 and len(weight or ()) == 1:
            kind, keys, shape = "bn", {bn_native[a]: f"{path}.{a}" for a in tensors}, tuple(weight or ())
        elif weight is not None and len(weight) in (2, 4) and set(tensors) <= {"weight", "bias"}:
            kind = "conv" if len(weight) == 4 else "fc"
            weight = canonical_shape(framework, kind, "weight", weight)  # paddle's Linear weight is [in, out]
            if "bias" in shapes and shapes["bias"] != (weight[0],):
                raise CheckpointError(f"{path}.bias has shape {list(shapes['bias'])}, not [{weight[0]}] as its weight")
            keys, shape = {a: f"{path}.{a}" for a in ("weight", "bias") if a in tensors}, weight
        else:
            listing = ", ".join(f"{path}.{a} {list(s)}" for a, s in shapes.items())
            raise CheckpointError(
                f"{listing}: not a conv (weight [O,I,kH,kW] + optional bias), a BN "
                f"({', '.join(bn_native)}) or a Linear; a ResNet of this zoo has only those"
            )
        out.append(Unit(path, kind, keys, shape, len(out)))
    return out


def targets_of(spec: ModelSpec) -> list[Target]:
    """The zoo model's canonical modules in canonical order."""
    by_module: dict[str, list[ParamEntry]] = {}
    for e in canonical_table(spec):
        by_module.setdefault(e.module, []).append(e)
    return [
        Target(m, es[0].kind, es[0].shape, any(e.attr == "bias" for e in es) and es[0].kind == "conv")
        for m, es in by_module.items()
    ]


# ---- the zoo model -----------------------------------------------------------------------------------------


def _signature(items: Iterable[tuple[str, tuple[int, ...]]]) -> Counter[tuple[str, tuple[int, ...]]]:
    return Counter(items)


def zoo_options(units: Sequence[Unit], model: str | None, *, extended: bool = True) -> Iterator[ModelSpec]:
    """Every zoo model (or ``model``), with and without the CIFAR stem, built with the head size and input
    channels the units imply; a V1.5 model also with a shortcut conv without BN (where the file has fewer BNs
    than convs) and with a bias on every conv (where the file's convs have biases), as d2l's ResNet
    (``extended=False``: the zoo's entries as they are, e.g. for a course exercise that must build one). Each comes
    with its look-alikes (``resnet_spec.lookalikes``): the same tensors, other numbers."""
    fc = [u for u in units if u.kind == "fc"]
    convs = [u for u in units if u.kind == "conv"]
    if not convs:
        raise CheckpointError("no convolution in the checkpoint: not a ResNet")
    options: dict[str, Any] = {"num_classes": fc[-1].shape[0] if fc else 0, "in_channels": convs[0].shape[1]}
    bn_short = extended and sum(u.kind == "bn" for u in units) < len(convs)
    biased = extended and any(u.has_bias for u in convs)
    for name in [model] if model else list_models():
        base = get_spec(name)
        shortcuts = [None, "conv_when_needed"] if bn_short and base.shortcut == "projection_when_needed" else [None]
        biases = [None, True] if biased and not base.conv_bias.inner else [None]
        for stem, shortcut, bias in itertools.product((None, "cifar"), shortcuts, biases):
            try:
                spec = get_spec(name, **options, stem=stem, shortcut=shortcut, conv_bias=bias)
            except ValueError:
                continue
            yield from variants(spec)


def candidates(units: Sequence[Unit], model: str | None = None, *, extended: bool = True) -> list[ModelSpec]:
    """Zoo models (with the options the units imply) whose units have the same kinds and shapes."""
    given = _signature((u.kind, u.shape) for u in units)
    options = zoo_options(units, model, extended=extended)
    return [s for s in options if _signature((t.kind, t.shape) for t in targets_of(s)) == given]


def closest_model(units: Sequence[Unit], model: str | None = None) -> str:
    """The zoo model sharing the most (kind, shape) layers with the file, and what differs first."""
    given = _signature((u.kind, u.shape) for u in units)
    best: tuple[float, str, str] = (-1.0, "", "")
    for spec in zoo_options(units, model):
        wanted = _signature((t.kind, t.shape) for t in targets_of(spec))
        share = sum((given & wanted).values()) / max(sum((given | wanted).values()), 1)
        extra, missing = given - wanted, wanted - given
        first = next(iter(extra), None) or next(iter(missing), None)
        side = "the file has" if first in extra else f"{spec.name} has"
        diff = f"{side} a {first[0]} {list(first[1])} the other lacks" if first else ""
        if share > best[0]:
            best = (share, spec.name + (" (CIFAR stem)" if spec.stem.kind == "cifar" else ""), diff)
    share, name, diff = best
    return f"closest is {name} ({share:.0%} of layers agree; {diff})" if name else "no zoo model is close"


def _rank(spec: ModelSpec, units: Sequence[Unit]) -> tuple[bool, bool, int]:
    """Lower is preferred: a model with room for every bias of the file (a conv without bias reads as a zero
    bias, not the reverse), then a zoo entry as it is over one built with EXTENDED options, then the fewer
    convs that differ in having a bias."""
    theirs = sum(t.has_bias for t in targets_of(spec) if t.kind == "conv")
    ours = sum(u.has_bias for u in units if u.kind == "conv")
    return theirs < ours, bool(set(spec.overridden) & set(EXTENDED)), abs(theirs - ours)


def fitting_specs(
    units: Sequence[Unit], model: str | None, source: str, assume: Mapping[str, str] | None = None
) -> tuple[list[ModelSpec], list[str]]:
    """The zoo models (look-alikes included) the units fit best (by :func:`_rank`), those ``assume`` rules out
    left out, else one clear line; and a note naming a model built with EXTENDED options that fits as well but
    was passed over for a zoo entry. More than one means the weights cannot tell them apart."""
    fitting = candidates(units, model)
    if not fitting and model is None:  # no zoo model: the ResNet's own spec, where the spec language says it
        fitting = derived_candidates(units)
    if not fitting:
        counts = Counter(u.kind for u in units)
        what = f"{counts['conv']} convs, {counts['bn']} BNs, {counts['fc']} Linear"
        hint = f"it does not fit {model}" if model else "no zoo model has those kinds and shapes"
        raise CheckpointError(f"{source}: {what}; {hint}; {closest_model(units, model)} (resnet list shows the zoo)")
    ranked = [(_rank(s, units), s) for s in fitting]
    best = min(rank for rank, _ in ranked)
    notes = []
    passed_over = list({s.name: s for rank, s in ranked if rank[:2] == (best[0], True) and not best[1]}.values())
    if passed_over:  # resnet50v1 (a bias on every conv) also fits resnet50 with conv_bias=True
        also = ", ".join(
            f"{s.name} ({s.options_text(skip=('num_classes', 'in_channels', 'stride_on'))})" for s in passed_over
        )
        notes.append(f"it also fits {also}, which differs where weights do not show (e.g. BN eps): "
                     f"give --model or --reference if yours is that")  # fmt: skip
    found = [s for rank, s in ranked if rank == best]
    given = assume or {}
    found = [s for s in found if all(axis(k).current(s) == v for k, v in given.items() if axis(k).matters(s))]
    return found, notes


def derived_candidates(units: Sequence[Unit]) -> list[ModelSpec]:
    """The derived spec of the units (``resnet_spec.derive``) and its look-alikes, where one has their kinds and
    shapes exactly; else none."""
    layers = [Layer(u.path, u.kind, u.shape, u.has_bias) for u in units]
    try:
        spec = derive(layers)
    except SpecError:
        return []
    given = _signature((u.kind, u.shape) for u in units)
    return variants(spec) if _signature((t.kind, t.shape) for t in targets_of(spec)) == given else []


def choose_spec(
    units: Sequence[Unit], model: str | None, source: str, assume: Mapping[str, str] | None = None
) -> tuple[ModelSpec, list[str]]:
    """The one zoo model the units fit (:func:`fitting_specs`), else one line naming what the weights cannot
    show and how to settle it."""
    found, notes = fitting_specs(units, model, source, assume)
    if len(found) > 1:
        raise CheckpointError(ambiguity(found, source))
    return found[0], notes


def ambiguity(found: Sequence[ModelSpec], source: str) -> str:
    """One line: ``source`` fits these models alike; what differs and how to settle it."""
    axes = differences(list(found))
    if len({s.name for s in found}) == 1 and axes:
        names = [a.split(":")[0] for a in axes]
        say = " ".join(f"--assume {n}=..." for n in names)
        return (
            f"{source} fits {found[0].name} in {len(found)} ways that compute differently and that the weights "
            f"cannot tell apart: {'; '.join(axes)}; prove it with --reference FILE.py:CALLABLE (your model's code), "
            f"or say which: {say}"
        )
    listing = ", ".join(dict.fromkeys(s.name for s in found))
    return (
        f"{source} fits {listing} alike (they differ where weights do not show, e.g. the stride's place): "
        f"give --model, or --reference to prove it against your code"
    )
