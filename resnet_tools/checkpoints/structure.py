"""Map a hand-written ResNet's checkpoint onto the zoo by its structure, not its names.

A state dict in any naming (``residual_block.3.conv_bn_block1.0.weight``, ``layer1.0.shortcut.0.weight``,
``a.b.c.weight``) is grouped into units (a conv, a BN, a Linear) by module path, in the file's order,
which is the order the model registered its modules. Then:

1. the zoo model: the one whose units have the same kinds and shapes (head size, input channels and the
   CIFAR stem read off them; a conv without bias fits a conv with one, as a zero bias);
2. the blocks: the units are cut into the stem, one run per residual block and the head, by the zoo
   model's unit counts; each block's run must be exactly the units under one module path (else the file
   does not group its blocks and nothing is assumed);
3. each block's units get their roles (``conv1`` ... ``downsample.1``, ``preact_bn``) among the
   assignments that fit every shape, keep the main path's convs and BNs in the file's order, pair each
   BN with the conv it belongs to (the two share a container, or the file interleaves every conv with
   its BN), and honour name hints (down, short, proj, skip, identity); a block that still fits several
   ways takes the roles its unit names have in the blocks where only one way fits.

Where two assignments still fit (a bottleneck's shortcut conv and last conv have the same shape in
stage 1, and opaque names say nothing), the mapping is refused, naming the units and how to settle it
(``--reference`` runs your code; a map file from ``resnet map --save`` can be edited). Nothing is
ever assigned because its shape happens to fit.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.derive import derived_assumptions, natural_key
from resnet_spec.errors import CheckpointError
from resnet_spec.lookalikes import assumed, axis
from resnet_spec.params import ParamEntry, canonical_table
from resnet_spec.plan import plan_stages
from resnet_spec.spec import is_zoo_model
from resnet_tools.checkpoints.request import family_of
from resnet_tools.checkpoints.units import (
    SHORTCUT_HINTS,
    Flow,
    StructureMap,
    Target,
    Trace,
    Unit,
    ambiguity,
    candidates,
    choose_spec,
    closest_model,
    fitting_specs,
    targets_of,
    units_of,
    zoo_options,
)

__all__ = [
    "SHORTCUT_HINTS",
    "Flow",
    "StructureMap",
    "Target",
    "Trace",
    "Unit",
    "block_segments",
    "by_name",
    "candidates",
    "canonical_weights",
    "choose_spec",
    "closest_model",
    "common_prefix",
    "fitting_specs",
    "map_units",
    "structural_map",
    "targets_of",
    "units_of",
    "zoo_options",
]


# ---- the blocks ----------------------------------------------------------------------------------------------


def block_segments(targets: Sequence[Target]) -> list[tuple[str, list[Target]]]:
    """The zoo model's modules cut into the stem, each block (``layer1.0``) and the head."""
    out: list[tuple[str, list[Target]]] = []
    for t in targets:
        m = re.match(r"^(layer\d+\.\d+)\.", t.module)
        key = m[1] if m else ("stem" if not out or out[-1][0] == "stem" else "head")
        if out and out[-1][0] == key:
            out[-1][1].append(t)
        else:
            out.append((key, [t]))
    return out


def common_prefix(paths: Sequence[str]) -> str:
    """The module path all ``paths`` share (``layer1.0`` of ``layer1.0.conv1`` and ``layer1.0.bn1``)."""
    parts = [p.split(".") for p in paths]
    common = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return ".".join(common)


def _under(path: str, prefix: str) -> bool:
    return bool(prefix) and (path == prefix or path.startswith(prefix + "."))


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if prefix else path


ROLE_ORDER = ("preact_bn", "conv1", "bn1", "conv2", "bn2", "conv3", "bn3")


def _partner(bn: Unit, block: Sequence[Unit], prefix: str, interleaved: bool) -> Unit | None:
    """The conv a BN belongs to: the one conv sharing a container with it alone, or the conv just before it
    where the file interleaves every conv with its BN."""
    parent = bn.path.rpartition(".")[0]
    if parent and _under(parent, prefix) and parent != prefix:
        inside = [u for u in block if _under(u.path, parent)]
        convs = [u for u in inside if u.kind == "conv"]
        if len(inside) == 2 and len(convs) == 1:
            return convs[0]
    if interleaved:
        at = block.index(bn)
        if at > 0 and block[at - 1].kind == "conv":
            return block[at - 1]
    return None


def _assignments(
    block: Sequence[Unit], targets: Sequence[Target], prefix: str, flow: Flow | None = None, pooled: bool = False
) -> list[dict[str, Unit]]:
    """Every way to give the block's units the zoo block's roles that fits the shapes, the main path's
    order, the conv/BN pairs and the name hints."""
    by_kind: dict[str, tuple[list[Unit], list[Target]]] = {}
    for kind in ("conv", "bn"):
        by_kind[kind] = ([u for u in block if u.kind == kind], [t for t in targets if t.kind == kind])
    role = {t.module: _role(t.module) for t in targets}
    expected_pairs = sum(1 for t in targets if t.kind == "bn" and role[t.module] != "preact_bn")
    after_conv = sum(1 for i, u in enumerate(block) if u.kind == "bn" and i and block[i - 1].kind == "conv")
    interleaved = after_conv == expected_pairs
    hinted = {u.path for u in block if SHORTCUT_HINTS.search(_relative(u.path, prefix))}
    options = {kind: list(itertools.permutations(units)) for kind, (units, _ts) in by_kind.items()}
    fitting = []
    for conv_perm in options["conv"]:
        for bn_perm in options["bn"]:
            assigned = dict(zip(by_kind["conv"][1], conv_perm, strict=True))
            assigned |= dict(zip(by_kind["bn"][1], bn_perm, strict=True))
            if all(_fits(t, u) for t, u in assigned.items()):
                fitting.append(assigned)
    out: list[dict[str, Unit]] = []
    for per_kind in (False, True):  # the main path registered in running order; else its convs, then its BNs
        out = [
            {t.module: u for t, u in assigned.items()}
            for assigned in fitting
            if _consistent(assigned, role, block, prefix, interleaved, hinted, flow, per_kind=per_kind, pooled=pooled)
        ]
        if out or flow is not None:
            break
    return out


def _role(module: str) -> str:
    """A block module's role: ``layer1.0.conv3`` -> ``conv3``, ``layer1.0.downsample.1`` -> ``downsample.1``."""
    return module.split(".", 2)[2]


def _fits(t: Target, u: Unit) -> bool:
    return t.kind == u.kind and t.shape == u.shape


def _consistent(
    assigned: dict[Target, Unit],
    role: dict[str, str],
    block: Sequence[Unit],
    prefix: str,
    interleaved: bool,
    hinted: set[str],
    flow: Flow | None = None,
    *,
    per_kind: bool = False,
    pooled: bool = False,
) -> bool:
    """Whether an assignment of roles agrees with the order, the conv/BN pairs, the hints (or the run).
    ``per_kind``: the main path's convs and its BNs each in running order, but not interleaved (a block that
    registers ``conv1, conv2, bn1, bn2``, as d2l's ``Residual`` does)."""
    roles = {role[t.module]: u for t, u in assigned.items()}
    for kinds in [("conv",), ("bn",)] if per_kind else [("conv", "bn")]:
        main = [roles[r].order for r in ROLE_ORDER if r in roles and roles[r].kind in kinds]
        if main != sorted(main):  # the main path is registered (or, with a flow, runs) in the order it runs
            return False
    if flow is not None:  # the run decides: BN after its conv, the shortcut conv reads what conv1 reads
        short, first = roles.get("downsample.0"), roles.get("conv1")
        # (ResNet-D, ``pooled``: the shortcut conv reads the average pool's output instead)
        if not pooled and short is not None and first is not None and flow.reads[short.path] != flow.reads[first.path]:
            return False
        return all(
            flow.partner.get(u.path) == roles[_conv_of(r)].path
            for r, u in roles.items()
            if u.kind == "bn" and r != "preact_bn" and _conv_of(r) in roles
        )
    if hinted and any((u.path in hinted) != r.startswith("downsample") for r, u in roles.items()):
        return False
    for r, u in roles.items():
        if u.kind != "bn":
            continue
        partner = _partner(u, block, prefix, interleaved)
        wanted = None if r == "preact_bn" else _conv_of(r)
        if partner is not None and roles.get(wanted or "") is not partner:
            return False
    return True


def _conv_of(bn_role: str) -> str:
    """The conv a BN role follows: ``bn2`` -> ``conv2``, ``downsample.1`` -> ``downsample.0``."""
    return "downsample.0" if bn_role == "downsample.1" else bn_role.replace("bn", "conv")


def map_units(
    units: Sequence[Unit], spec: ModelSpec, source: str, *, draft: bool = False, flow: Flow | None = None
) -> tuple[dict[str, Unit], list[str]]:
    """``{canonical module: unit}`` for ``spec``; refused, naming the units, where it is not unique
    (``draft``: one choice is kept and flagged in the notes, for a map file the user then checks)."""
    segments = block_segments(targets_of(spec))
    out: dict[str, Unit] = {}
    notes: list[str] = []
    at = 0
    blocks: list[tuple[str, list[Unit], list[Target], str]] = []
    for key, targets in segments:
        run = list(units[at : at + len(targets)])
        at += len(targets)
        if key in ("stem", "head"):
            if len(run) == len(targets) and all(map(_fits, targets, run)):  # in running order: a deep stem's
                out |= {t.module: u for t, u in zip(targets, run, strict=True)}  # two 32-wide BNs are told apart
                continue
            for t in targets:
                fitting = [u for u in run if _fits(t, u)]
                if len(fitting) != 1:
                    raise CheckpointError(f"{source}: the {key} does not fit {spec.name}'s {t.module} {list(t.shape)}")
                out[t.module] = fitting[0]
            continue
        prefix = common_prefix([u.path for u in run])
        outside = [u.path for u in units if u not in run and _under(u.path, prefix)]
        if flow is None and (not prefix or outside):
            raise CheckpointError(
                f"{source}: the units of {spec.name}'s block {key} ({run[0].path} ... {run[-1].path}) are not "
                f"the contents of one module{f' ({outside[0]} is in it too)' if outside else ''}: the file does "
                f"not group its blocks as modules; give --reference"
            )
        blocks.append((key, run, targets, prefix))
    # ResNet-D (or a spec whose look-alike is): an average pool may feed a strided block's shortcut conv
    may_pool = spec.downsample == "avg_pool" or axis("downsample").matters(spec)
    strided = [b for stage in plan_stages(spec) for b in stage if b.stride > 1 and b.shortcut_conv is not None]
    pooled = {f"layer{b.stage}.{b.index}" for b in strided} if may_pool else set()
    found = {key: _assignments(run, targets, prefix, flow, key in pooled) for key, run, targets, prefix in blocks}
    learned: dict[str, str] = {}
    conflicts: set[str] = set()
    for key, _run, _t, prefix in blocks:
        if len(found[key]) == 1:
            for module, u in found[key][0].items():
                rel, r = _relative(u.path, prefix), _role(module)
                if learned.get(rel, r) != r:
                    conflicts.add(rel)
                learned[rel] = r
    learned = {k: v for k, v in learned.items() if k not in conflicts}
    for key, run, _t, prefix in blocks:
        ways = found[key]
        if len(ways) > 1:
            ways = [
                w
                for w in ways
                if all(learned.get(_relative(u.path, prefix), _role(m)) == _role(m) for m, u in w.items())
            ]
            if len(ways) == 1:
                notes.append(f"block {key} ({prefix}): roles taken from the blocks where the shapes decide")
        if not ways:
            shapes = ", ".join(f"{_relative(u.path, prefix)} {list(u.shape)}" for u in run)
            raise CheckpointError(f"{source}: block {prefix} ({shapes}) fits no way {spec.name}'s block {key}")
        if len(ways) > 1:
            differ = sorted({f"{_relative(w[m].path, prefix)}" for w in ways for m in w if w[m] is not ways[0][m]})
            roles = sorted({_role(m) for w in ways for m in w if w[m] is not ways[0][m]})
            if draft:
                notes.append(
                    f"AMBIGUOUS in block {prefix}: {' and '.join(differ)} fit {' / '.join(roles)} alike; the map "
                    f"shows one choice: check it against your code before using the map"
                )
                out.update(ways[0])
                continue
            raise CheckpointError(
                f"{source}: ambiguous: in block {prefix}, {' and '.join(differ)} fit {' / '.join(roles)} "
                f"alike (same shapes, no name or block that decides); give --reference FILE.py:MODEL to map by "
                f"running your code, or save a map with resnet map --save and edit it"
            )
        out.update(ways[0])
    if at != len(units):
        raise CheckpointError(f"{source}: {len(units) - at} unit(s) left over after {spec.name}'s head")
    return {t.module: out[t.module] for t in targets_of(spec)}, notes


def structural_map(
    native: Mapping[str, Any],
    framework: str,
    model: str | None,
    source: str,
    *,
    draft: bool = False,
    assume: Mapping[str, str] | None = None,
    ordered: bool = True,
) -> StructureMap:
    """Map a state dict of any naming onto the zoo by structure (see the module docstring). What the weights
    cannot show is settled by ``assume`` (the user's word), else by names that decide (timm's resnetv2, Hugging
    Face), else the file is refused (``draft``: one choice kept and flagged, for a map file to check).
    ``ordered``: the keys are in the model's registration order (False: a writer sorted them, as safetensors
    does; the order is rebuilt from the paths, numbers compared as numbers, the family's top modules first)."""
    try:
        units = units_of(native, framework)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    family = family_of(native)
    if not ordered:
        units = reorder(units, family.top if family else ())
    who = family.who if family else None
    given = {**(family.settles if family else {}), **(assume or {})}
    found, chosen = fitting_specs(units, model, source, given)
    if len(found) > 1 and not draft:
        raise CheckpointError(ambiguity(found, source))
    spec = found[0]
    if len(found) > 1:
        chosen.append(f"AMBIGUOUS: {ambiguity(found, source)}; the map shows {', '.join(assumed(spec))}")
    if axis("derived").matters(spec) and "derived" not in given and not draft:
        raise CheckpointError(unproved_derived(spec, source))
    mapped, notes = map_units(units, spec, source, draft=draft)
    return StructureMap(spec, mapped, framework, [*chosen, *notes, *assumptions(spec, who, assume or {})])


def unproved_derived(spec: ModelSpec, source: str) -> str:
    """One line: ``source`` is a ResNet outside the zoo whose strides, stem and ReLUs no weight shows."""
    return (
        f"{source} is a ResNet outside the zoo ({spec.name}, {len(spec.depths)} stages of "
        f"{', '.join(map(str, spec.depths))} {spec.block} blocks); its strides, stem pool and ReLUs show in no weight: "
        f"prove them with --reference FILE.py:CALLABLE (your model's code), or say they are He et al.'s "
        f"(stride 2 in each stage's first block after the first, the stem read off its kernel): --assume derived=he2016"
    )


def reorder(units: Sequence[Unit], top: Sequence[str]) -> list[Unit]:
    """The units of a file whose keys were sorted, in forward order as far as the paths tell: by the family's
    top-level modules (``top``), the Linear head last, then by path with numbers as numbers."""

    def rank(u: Unit) -> tuple[Any, ...]:
        first = next((i for i, t in enumerate(top) if (u.path + ".").startswith(t)), len(top))
        return (first, u.kind == "fc", natural_key(u.path))

    return [dataclasses.replace(u, order=i) for i, u in enumerate(sorted(units, key=rank))]


def assumptions(spec: ModelSpec, who: str | None, assume: Mapping[str, str]) -> list[str]:
    """What a mapping by structure takes as the zoo's model builds it, each with who settled it: the weights
    cannot show these (``--reference`` proves them against the user's code)."""
    notes = []
    for text in assumed(spec):
        name = text.split("=", 1)[0]
        by = "as you said (--assume)" if name in assume else f"as the names say: {who}" if who else "?"
        notes.append(f"settled {by}: {text}")
    if not is_zoo_model(spec.name):  # a derived spec: what it takes as He et al. build it
        return [*notes, *derived_assumptions(spec)]
    add = "no ReLU after each addition, BN + ReLU after the last stage" if spec.preact else "a ReLU after each addition"
    notes.append(
        f"assumed as {spec.name} computes, which no weight shows: {add}, BN eps {spec.bn_eps:g}, global average "
        f"pooling before the Linear head; --reference FILE.py:CALLABLE proves it against your code"
    )
    return notes


def by_name(units: Sequence[Unit], framework: str) -> StructureMap | None:
    """The mapping of a file in the zoo's own names (module path = canonical module), once its spec is known:
    a partial map whose spec is filled in by :func:`with_spec`. None for an empty file."""
    if not units:
        return None
    return StructureMap(None, {u.path: u for u in units}, framework, ["mapped by the zoo's names"])


def canonical_weights(m: StructureMap, native: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(canonical name, tensor in canonical layout) for every tensor of the mapped file; conv biases the
    file lacks are zeros, and a bias the model lacks must be exactly zero."""
    from resnet_spec.naming import from_native
    from resnet_tools.checkpoints.lazy import apply, dtype_of

    assert m.spec is not None, "a structural map knows its model"
    spec = m.spec
    table = {e.name: e for e in canonical_table(spec)}
    for module, unit in m.units.items():
        for attr, key in unit.keys.items():
            name = f"{module}.{attr}"
            if name not in table:
                if np.any(np.asarray(native[key]) != 0):
                    raise CheckpointError(f"{key} is a bias {spec.name} does not have, and it is not zero")
                continue
            entry = table[name]
            native_entry = ParamEntry(module, entry.kind, attr, tuple(np.shape(native[key])))
            to_canonical = functools.partial(from_native, native_entry, m.framework)
            yield name, apply(native[key], to_canonical, entry.shape)
        zero_bias = f"{module}.bias"
        if unit.kind == "conv" and zero_bias in table and "bias" not in unit.keys:
            yield zero_bias, np.zeros(table[zero_bias].shape, dtype=dtype_of(native[unit.keys["weight"]]))
