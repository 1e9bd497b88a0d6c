"""Check a ResNet someone wrote (a student's, a tutorial's) against a zoo model, stage by stage.

The model is followed by running it (hooks, or a Keras functional model's graph, record which conv, BN and Linear
layer runs when, and what each reads), never by its names; each backend's ``foreign`` module does the watching. Its
structure is compared block by block with the zoo model's; where it fits, the zoo's reference weights (random, with
random BN statistics) are copied into it, and both run one seeded batch (H != W): the stem, every block and the
logits are compared, and the first difference is named with what usually causes it ("stage2 block0 differs: ... the
ReLU after the addition is missing").

    >>> from resnet_tools.course import check_model
    >>> report = check_model(MyResNet50(), "resnet50")
    >>> print(report)          # one line per stage, then the verdict
    >>> assert report.passed   # an autograder's test
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from resnet_spec import ModelSpec
from resnet_spec.errors import ResNetError
from resnet_spec.naming import to_native
from resnet_spec.params import canonical_table
from resnet_spec.plan import plan_stages, stem_layers
from resnet_spec.random_weights import random_weights
from resnet_spec.spec import get_spec
from resnet_spec.tolerances import tolerance
from resnet_tools.checkpoints import reference
from resnet_tools.checkpoints.run_facts import conv_stride, spatial
from resnet_tools.checkpoints.structure import (
    Flow,
    StructureMap,
    Target,
    Trace,
    Unit,
    block_segments,
    candidates,
    map_units,
    targets_of,
    units_of,
    zoo_options,
)
from resnet_tools.core.backends import descriptor, known_backends, load_backend, load_submodule
from resnet_tools.core.diffs import tensor_diff, within


def checks() -> tuple[str, ...]:
    """The frameworks whose models the checker runs: those whose backend's ``foreign`` module watches a model run
    (its descriptor says so)."""
    return tuple(b for b in known_backends() if descriptor(b).watches)


#: Named variants a course may teach instead of the zoo's entry: build options of ``create_model``, and whether the
#: input channels are the student's (d2l.ai's ResNet-18 reads 1-channel Fashion-MNIST).
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    # d2l.ai, chapter "Residual Networks": every conv keeps nn.Conv2d's bias, the projection (use_1x1conv) is a
    # 1x1 conv without BN, the stem is the ImageNet one (7x7/2, BN, ReLU, 3x3/2 max-pool)
    "d2l": ({"conv_bias": True, "shortcut": "conv_when_needed"}, True),
}


@dataclass
class Finding:
    """One checked point: the stem, a block (``stage2 block0``), the logits, or the structure."""

    where: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """What :func:`check_model` found: one finding per checked point, in forward order, and the verdict."""

    model: str
    framework: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def first_problem(self) -> Finding | None:
        return next((f for f in self.findings if not f.ok), None)

    @property
    def verdict(self) -> str:
        bad = self.first_problem
        if bad is None:
            return f"PASS: your {self.framework} model computes {self.model}"
        return f"FAIL: {bad.where} differs: {bad.detail}"

    def __str__(self) -> str:
        width = max((len(f.where) for f in self.findings), default=5)
        lines = [f"{'ok' if f.ok else 'XX'}  {f.where:<{width}}  {f.detail}" for f in self.findings]
        return "\n".join([*lines, self.verdict])


def stage_name(block: str) -> str:
    """``layer2.0`` -> ``stage2 block0`` (the words of the paper's table and of the course)."""
    m = re.fullmatch(r"layer(\d+)\.(\d+)", block)
    return f"stage{m[1]} block{m[2]}" if m else block


def framework_of(model: Any) -> str:
    """The framework of ``model`` from its class hierarchy (each backend's descriptor names its model base class);
    anything else is one clear error."""
    names = {f"{c.__module__}.{c.__name__}" for c in type(model).__mro__}
    for framework in known_backends():
        if descriptor(framework).model_base in names:
            if framework not in checks():
                raise ResNetError(f"check_model does not run {framework} models yet; check your model's "
                                  f"{' or '.join(checks())} version")  # fmt: skip
            return framework
    raise ResNetError(
        f"check_model takes a torch nn.Module, a paddle nn.Layer or a functional keras.Model; got a "
        f"{type(model).__name__}"
    )


# ---- structure, block by block ---------------------------------------------------------------------------------


def _blocks_of(units: Sequence[Unit]) -> list[tuple[str, list[Unit]]]:
    """The model's residual blocks as (module path, units in the order they run): the modules, at one depth,
    that each hold 2 to 4 convs (a block's 2 or 3 and its projection). Stem and head units are left out."""
    for depth in range(1, 6):
        groups: dict[str, list[Unit]] = {}
        for u in units:
            parts = u.path.split(".")
            if len(parts) > depth and parts[depth - 1].isdigit():
                groups.setdefault(".".join(parts[:depth]), []).append(u)
        convs = [sum(u.kind == "conv" for u in g) for g in groups.values()]
        if len(groups) >= 2 and all(2 <= c <= 4 for c in convs):
            return list(groups.items())
    return []


def _describe(units: Sequence[Unit | Target]) -> str:
    return ", ".join(f"{u.kind} {list(u.shape)}" for u in units)


def _block_problem(ours: Sequence[Target], theirs: Sequence[Unit], flow: Flow | None) -> str | None:
    """Why a student's block does not fit the zoo's, in the words of the lesson (None: it fits)."""
    zoo_kinds, their_kinds = Counter(t.kind for t in ours), Counter(u.kind for u in theirs)
    projection = [t for t in ours if ".downsample." in t.module]
    if Counter((t.kind, t.shape) for t in ours) == Counter((u.kind, u.shape) for u in theirs):
        return None
    expansion = _expansion_problem(ours, theirs)
    if expansion is not None:
        return expansion
    if projection and their_kinds["conv"] == zoo_kinds["conv"] and their_kinds["bn"] == zoo_kinds["bn"] - 1:
        partnered = set(flow.partner.values()) if flow else set()
        lonely = [u for u in theirs if u.kind == "conv" and u.path not in partnered]
        where = f" ({lonely[0].path} has no BN after it)" if lonely else ""
        return f"your shortcut is missing its BN{where}: the projection is a 1x1 conv followed by a BatchNorm"
    if projection and their_kinds["conv"] == zoo_kinds["conv"] - 1:
        return (
            "your block has no projection shortcut: where the shape changes (stride or channels), the shortcut is a "
            "1x1 conv with the block's stride, then a BatchNorm"
        )
    if not projection and their_kinds["conv"] > zoo_kinds["conv"]:
        return "your block has a projection shortcut where the reference adds its input unchanged (same shape)"
    if their_kinds["bn"] < zoo_kinds["bn"]:
        return f"a BatchNorm is missing: the reference has {_describe(ours)}; yours {_describe(theirs)}"
    return f"the layers differ: the reference has {_describe(ours)}; yours {_describe(theirs)}"


def _expansion_problem(ours: Sequence[Target], theirs: Sequence[Unit]) -> str | None:
    """A bottleneck whose last 1x1 conv widens by another factor than the reference's (expansion 2 for 4)."""
    ours_3x3 = [t for t in ours if t.kind == "conv" and t.shape[2:] == (3, 3)]
    their_3x3 = [u for u in theirs if u.kind == "conv" and u.shape[2:] == (3, 3)]
    if len(ours_3x3) != 1 or len(their_3x3) != 1 or ours_3x3[0].shape[0] != their_3x3[0].shape[0]:
        return None
    mid, after = their_3x3[0].shape[0], list(theirs[list(theirs).index(their_3x3[0]) + 1 :])  # in running order
    last = next((u for u in after if u.kind == "conv" and u.shape[2:] == (1, 1) and u.shape[1] == mid), None)
    want = max(t.shape[0] for t in ours if t.kind == "conv")
    if last is None or last.shape[0] == want:
        return None
    got = last.shape[0]
    return (
        f"your bottleneck expands {got / mid:g}x: its last 1x1 conv ({last.path}) gives {got} channels from {mid}; "
        f"the reference's expands {want // mid}x ({want} channels, expansion = {want // mid})"
    )


def _structure(
    units: Sequence[Unit], spec: ModelSpec, flow: Flow | None, theirs: list[tuple[str, list[Unit]]]
) -> Finding | None:
    """The first place the model's layers (its residual blocks: ``theirs``) differ from ``spec``'s, as a finding
    (None: every block fits)."""
    segments = block_segments(targets_of(spec))
    zoo_blocks = [(k, t) for k, t in segments if k not in ("stem", "head")]
    if not theirs:
        return Finding("structure", False, "no residual blocks found: write each block as a module (a class)")
    per_stage = Counter(k.split(".")[0] for k, _ in zoo_blocks)
    if len(theirs) != len(zoo_blocks):
        return Finding(
            "structure",
            False,
            f"{len(theirs)} residual blocks where {spec.name} has {len(zoo_blocks)} "
            f"({' + '.join(str(n) for n in per_stage.values())} per stage)",
        )
    for (key, targets), (path, run) in zip(zoo_blocks, theirs, strict=True):
        problem = _block_problem(targets, run, flow)
        if problem is not None:
            return Finding(stage_name(key), False, f"{problem} (your {path})")
    stem = [t for k, ts in segments if k == "stem" for t in ts]
    inside = {u.path for _, run in theirs for u in run}
    their_stem = [u for u in units if u.path not in inside and u.kind != "fc"][: len(stem)]
    if Counter((t.kind, t.shape) for t in stem) != Counter((u.kind, u.shape) for u in their_stem):
        return Finding("stem", False, f"the reference's stem is {_describe(stem)}; yours {_describe(their_stem)}")
    return None


# ---- the numbers, stage by stage ------------------------------------------------------------------------------


def _reference_native(m: StructureMap, spec: ModelSpec, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The zoo's weights under the model's own keys and layouts (a conv bias the zoo lacks: zero)."""
    table = {e.name: e for e in canonical_table(spec)}
    native: dict[str, np.ndarray] = {}
    for module, unit in m.units.items():
        for attr, key in unit.keys.items():
            name = f"{module}.{attr}"
            native[key] = (
                to_native(table[name], m.framework, weights[name])
                if name in table
                else np.zeros(unit.shape[:1], dtype=np.float32)
            )
    return native


def _hint(theirs: np.ndarray, ours: np.ndarray) -> str:
    """What usually makes a block's output differ from the reference's."""
    if theirs.shape != ours.shape:
        return (
            f"its output is {list(theirs.shape)}, the reference's {list(ours.shape)}: check the stride "
            f"(on the 3x3 conv in ResNet v1.5) and the padding"
        )
    if (theirs < 0).any() and not (ours < 0).any():
        return "its output has negative values: the ReLU after the addition (relu(out + shortcut)) is missing"
    if not (theirs < 0).any() and (ours < 0).any():
        return "its output has no negative values where the reference's has: a ReLU too many (pre-activation?)"
    return "check the order conv -> BN -> ReLU in the block, and that the shortcut is added before the last ReLU"


def _stride_hint(m: StructureMap, t: Trace, block: str) -> str | None:
    """Where a bottleneck's stride sits, when it is not where the zoo model puts it (v1 vs v1.5)."""
    assert m.spec is not None
    unit = m.units.get(f"{block}.conv1")
    if m.spec.block != "bottleneck" or unit is None or unit.path not in t.module_in or unit.path not in t.module_out:
        return None
    halves = t.module_out[unit.path].shape[-1] < t.module_in[unit.path].shape[-1]
    if halves and m.spec.stride_on == "conv3x3":
        return (
            "the stride sits on the first 1x1 conv (ResNet v1, the paper's Caffe model); in ResNet v1.5 "
            "(torchvision, paddle.vision) it is on the 3x3 conv"
        )
    if not halves and m.spec.stride_on == "conv1x1" and ".downsample." in " ".join(m.units):
        return "the stride sits on the 3x3 conv (v1.5); in this model (v1) it is on the first 1x1 conv"
    return None


_ROLES = {
    "basic": {"conv1": "the first 3x3 conv", "conv2": "the second 3x3 conv"},
    "bottleneck": {"conv1": "the first 1x1 conv", "conv2": "the 3x3 conv", "conv3": "the last 1x1 conv"},
}


def _stem_cause(m: StructureMap, t: Trace, theirs: np.ndarray, ours: np.ndarray) -> str | None:
    """Why the stem's output differs in size: its pool left out or added, or its conv's stride."""
    assert m.spec is not None
    spec, channels = m.spec, m.spec.stem.width
    sizes = spatial(theirs, channels), spatial(ours, channels)
    if sizes[0] is None or sizes[1] is None:
        return None
    ratio = (sizes[0][0] * sizes[0][1]) / max(sizes[1][0] * sizes[1][1], 1)
    if abs(ratio - 1) < 0.3:
        return None
    unit = m.units.get(stem_layers(spec)[0][0])
    stride = conv_stride(unit, t) if unit is not None else None
    if stride is not None and stride != spec.stem.stride:
        return f"the stem conv has stride {stride}; {spec.name}'s has stride {spec.stem.stride}"
    if ratio > 1 and spec.stem.pool:
        return (
            "the stem has no max-pool: after conv -> BN -> ReLU, the reference max-pools "
            "(kernel 3, stride 2, padding 1), halving the height and width"
        )
    if ratio < 1 and not spec.stem.pool:
        return "the stem pools where the reference does not (a CIFAR stem keeps the image's size)"
    return None


def _stride_cause(m: StructureMap, t: Trace, block: str) -> str | None:
    """Which conv of the block strides in the student's run, against the reference's plan."""
    assert m.spec is not None
    plan = next((b for stage in plan_stages(m.spec) for b in stage if f"layer{b.stage}.{b.index}" == block), None)
    if plan is None:
        return None
    roles = _ROLES[m.spec.block]
    theirs, ours = {}, {}
    for k, c in enumerate(plan.convs, start=1):
        unit = m.units.get(f"{block}.conv{k}")
        if unit is None:
            return None
        theirs[f"conv{k}"], ours[f"conv{k}"] = conv_stride(unit, t), c.stride
    if None in theirs.values() or theirs == ours:
        return None
    strided = [r for r, s in theirs.items() if s and s > 1]
    wanted = [r for r, s in ours.items() if s > 1]
    if not strided:
        return f"no conv of the block strides: in {m.spec.name}, {roles[wanted[0]]} has stride {plan.stride}"
    if not wanted:
        return f"{roles[strided[0]]} strides where the reference's block keeps the size (stride 1)"
    return (
        f"the stride sits on {roles[strided[0]]} ({m.units[f'{block}.{strided[0]}'].path}); in {m.spec.name} it is on "
        f"{roles[wanted[0]]}"
    )


def _relu_cause(m: StructureMap, t: Trace, block: str, theirs: np.ndarray) -> str | None:
    """A ReLU applied before the addition, found from the student's own run: the block's output equals its last BN's
    output, ReLU'd, plus the shortcut (relu(out) + shortcut), or that sum ReLU'd again (relu(relu(out) + shortcut),
    which differs only where a projection shortcut gives negative values)."""
    assert m.spec is not None
    last = f"{block}.bn{len(_ROLES[m.spec.block])}"
    main, first = m.units.get(last), m.units.get(f"{block}.conv1")
    short = m.units.get(f"{block}.downsample.1") or m.units.get(f"{block}.downsample.0")
    if main is None or first is None or main.path not in t.module_out:
        return None
    identity = t.module_out.get(short.path) if short is not None else t.module_in.get(first.path)
    out = t.module_out[main.path]
    if identity is None or identity.shape != out.shape or out.shape != theirs.shape:
        return None
    if within(tensor_diff(theirs, np.maximum(out, 0) + identity), 1e-5):
        return (
            "the ReLU comes before the addition: out = relu(bn(conv(...))) + shortcut; the reference adds first, "
            "then applies the ReLU: relu(out + shortcut)"
        )
    if within(tensor_diff(theirs, np.maximum(np.maximum(out, 0) + identity, 0)), 1e-5):
        return (
            "a ReLU comes before the addition as well as after it: relu(relu(bn(conv(...))) + shortcut); the "
            "reference's last BN goes into the addition without one: relu(bn(conv(...)) + shortcut)"
        )
    return None


def _error_line(text: str) -> str:
    """The line of a framework's error that says what failed (paddle's C++ summary, without its source location)."""
    text = re.sub(r"^--reference: your model failed on a \[[^\]]*\] batch: ", "", text.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= set("-=")]
    errors = [line for line in lines if re.match(r"^\w*Error\b|^\(\w+\)", line)]
    line = errors[-1] if errors else (lines[0] if lines else "no message")
    return re.sub(r"\s*\(at [^)]*\)\s*$", "", line)[:240]


def _failed_pass(exc: Exception, t: Trace, foreign: Any, model: Any, units: Sequence[Unit], spec: ModelSpec) -> Finding:
    """A forward pass that fails: where it got to and why, in the student's layers, with a layer setting known to
    cause it (a conv's padding) at the block that holds it."""
    blocks = _blocks_of(sorted(units, key=lambda u: u.order))
    names = [f"layer{b.stage}.{b.index}" for stage in plan_stages(spec) for b in stage]
    hinted = next(
        ((p, h) for p, layer in foreign.named_layers(model).items() if (h := foreign.layer_hint(layer))), None
    )
    reason = _error_line(str(exc))
    after = f" after {t.order[-1]}" if t.order else ""
    if hinted is not None:
        path, hint = hinted
        index = next((i for i, (prefix, _) in enumerate(blocks) if path.startswith(prefix + ".")), None)
        where = stage_name(names[index]) if index is not None and index < len(names) else "stem"
        return Finding(where, False, f"{path}: {hint} (your forward pass fails{after}: {reason})")
    zoo_blocks = [t for k, t in block_segments(targets_of(spec)) if k not in ("stem", "head")]
    for i, ((_, theirs), ours) in enumerate(zip(blocks, zoo_blocks, strict=False)):
        widened = _expansion_problem(ours, theirs)  # a block that widens wrongly breaks the next block's input
        if widened is not None:
            return Finding(stage_name(names[i]), False, f"{widened} (your forward pass fails{after}: {reason})")
    return Finding("forward pass", False, f"your model's forward pass fails{after}: {reason}")


def _never_runs(units: Sequence[Unit], t: Trace) -> Finding | None:
    """A layer the model builds but its forward pass never calls (a head that uses a Linear's weight directly)."""
    never = [u for u in units if u.path not in t.reads]
    if not never:
        return None
    u = never[0]
    if u.kind == "fc":
        return Finding(
            "head",
            False,
            f"your forward pass never calls {u.path}, its Linear layer (does it use {u.path}'s weight directly, "
            f"x @ W?): call the layer itself, {u.path}(x), as the reference's head does",
        )
    return Finding("structure", False, f"{u.path} is built but your forward pass never calls it")


def _other_model(
    units: Sequence[Unit],
    spec: ModelSpec,
    framework: str,
    weights: Mapping[str, np.ndarray],
    x: np.ndarray,
    theirs: np.ndarray,
) -> str:
    """A zoo model with the same layers that does compute the student's logits (e.g. v1 vs v1.5), named."""
    mod = load_backend(framework)
    for other in candidates(units, extended=False):
        if other == spec or other.stem.kind != spec.stem.kind:
            continue
        try:
            zoo = mod.import_weights(mod.create_model(other), weights)
        except (ResNetError, ValueError, KeyError):
            continue
        logits = mod.forward_numpy(zoo, x)["logits"]
        if logits.shape == theirs.shape and within(tensor_diff(logits, theirs), 1e-4):
            how = other.options_text(skip=("num_classes", "in_channels"))
            return (
                f"; your model computes {other.name}{f' ({how})' if how else ''} instead (the two differ in where "
                f"the stride sits)"
            )
    return ""


def _their_blocks(model: Any, foreign: Any, by_run: Sequence[Unit]) -> list[tuple[str, list[Unit]]]:
    """The model's residual blocks as (the path whose output is the block's, its units in run order): modules
    holding them (torch, paddle), or the additions of the graph (Keras' functional models)."""
    if not hasattr(foreign, "residual_blocks"):
        return _blocks_of(by_run)
    unit = {u.path: u for u in by_run}
    return [(end, [unit[p] for p in paths if p in unit]) for end, paths in foreign.residual_blocks(model)]


def _block_outputs(
    blocks: Sequence[tuple[str, list[Unit]]], names: Sequence[str], t: Trace
) -> Iterator[tuple[str, np.ndarray]]:
    """The stem's output (what the first block's first layer reads) and each block's output, under the zoo's
    block names."""
    first = min(blocks[0][1], key=lambda u: u.order)
    yield "stem", t.module_in[first.path]
    for name, (path, _) in zip(names, blocks, strict=True):
        yield name, t.module_out[path]


def _layer_hint(
    foreign: Any, model: Any, blocks: Sequence[tuple[str, list[Unit]]], names: Sequence[str], name: str
) -> str | None:
    """A layer setting of the block (or the stem) that is known to compute otherwise than the zoo's."""
    layers = foreign.named_layers(model)
    inside = {u.path for _, units in blocks for u in units}
    units = dict(zip(names, (u for _, u in blocks), strict=True)).get(name)
    paths = [u.path for u in units] if units is not None else [p for p in layers if p not in inside]
    return next((h for p in paths if p in layers and (h := foreign.layer_hint(layers[p]))), None)


def check_model(
    model: Any, zoo: str, *, variant: str | None = None, input_size: tuple[int, int] | None = None, seed: int = 0
) -> CheckReport:
    """Check ``model`` (a torch ``nn.Module``, a paddle ``nn.Layer`` or a functional ``keras.Model``) against
    the zoo model ``zoo``, or a named variant of it that a course teaches (``variant``: a key of :data:`VARIANTS`,
    e.g. ``"d2l"``).

    The head size and input channels are read from the model. Its weights are replaced by the reference's
    (a student's model needs no training). Returns a :class:`CheckReport`: ``passed``, ``verdict``, and one
    finding per stage; ``print(report)`` shows them."""
    framework = framework_of(model)
    report = CheckReport(zoo if variant is None else f"{zoo} ({variant})", framework)
    if variant is not None and variant not in VARIANTS:
        raise ResNetError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    options, own_channels = VARIANTS[variant] if variant is not None else ({}, False)
    foreign = load_submodule(framework, "foreign")
    view = foreign.VIEW  # the naming and layouts its weights are presented in (Keras: torch's)
    try:
        native = foreign.state_numpy(model)
        units = units_of(native, view)
        spec = next(iter(zoo_options(units, zoo, extended=False)))  # the exercise: the zoo's model as it is
        if options:
            spec = get_spec(zoo, num_classes=spec.num_classes, in_channels=spec.in_channels, **options)
    except (ResNetError, ValueError) as exc:
        report.findings.append(Finding("structure", False, str(exc)))
        return report
    fitting = [] if options else candidates(units, zoo, extended=False)
    if fitting:
        spec = fitting[0]
    elif not options and next(u for u in units if u.kind == "conv").shape[2:] == (3, 3):  # a 3x3 first conv: CIFAR
        spec = next((s for s in zoo_options(units, zoo, extended=False) if s.stem.kind == "cifar"), spec)
    wanted = spec.in_channels if own_channels else get_spec(zoo).in_channels
    if spec.in_channels != wanted:  # the head may differ (the student's classes), the input may not
        text = (
            f"your model takes {spec.in_channels} input channel(s) (its first conv's input), {zoo} takes "
            f"{wanted}: build the stem conv for {wanted}"
        )
        report.findings.append(Finding("stem", False, text))
        return report
    size = input_size or ((32, 40) if spec.stem.kind == "cifar" else (64, 96))
    x = np.random.default_rng(seed).standard_normal((2, spec.in_channels, *size)).astype("float32")
    partial = Trace(x=x)
    try:
        first = reference.trace(model, framework, x, partial)
    except ResNetError as exc:
        report.findings.append(_failed_pass(exc, partial, foreign, model, units, spec))
        return report
    never = _never_runs(units, first)
    if never is not None:
        report.findings.append(never)
        return report
    try:
        by_run, flow = reference.followed(units, first)
        blocks = _their_blocks(model, foreign, by_run)
        problem = _structure(by_run, spec, flow, blocks)
        if problem is not None:
            report.findings.append(problem)
            return report
        mapped, notes = map_units(by_run, spec, f"your {framework} model", flow=flow)
    except ResNetError as exc:
        report.findings.append(Finding("structure", False, str(exc)))
        return report
    m = StructureMap(spec, mapped, view, notes)
    weights = random_weights(spec, seed=seed)
    foreign.load_state(model, _reference_native(m, spec, weights))
    t = reference.trace(model, framework, x)
    m.trace = t
    mod = load_backend(framework)
    ours = mod.forward_blocks(mod.import_weights(mod.create_model(spec), weights), x)
    tol = tolerance("float32", "cpu", "eval").rel
    assert t.logits is not None
    names = [k for k in ours if k not in ("stem", "logits")]
    for name, theirs in _block_outputs(blocks, names, t):
        where = "stem" if name == "stem" else stage_name(name)
        diff = tensor_diff(theirs, ours[name]) if theirs.shape == ours[name].shape else None
        if diff is not None and within(diff, tol):
            report.findings.append(Finding(where, True, f"within {diff.max_rel:.1e}"))
            continue
        other = _other_model(by_run, spec, framework, weights, x, t.logits)
        hint = (
            _layer_hint(foreign, model, blocks, names, name)
            or (_stride_hint(m, t, name) if name != "stem" else None)
            or (_stem_cause(m, t, theirs, ours[name]) if name == "stem" else None)
            or (_stride_cause(m, t, name) if name != "stem" else None)
            or (_relu_cause(m, t, name, theirs) if name != "stem" else None)
            or _hint(theirs, ours[name])
        )
        if theirs.shape != ours[name].shape and "its output is" not in hint:
            hint += f" (its output is {list(theirs.shape)}, the reference's {list(ours[name].shape)})"
        report.findings.append(Finding(where, False, hint + other))
        return report
    diff = tensor_diff(t.logits, ours["logits"]) if t.logits.shape == ours["logits"].shape else None
    if diff is not None and within(diff, tol):
        report.findings.append(Finding("logits", True, f"within {diff.max_rel:.1e} (tolerance {tol:g})"))
    else:
        what = f"differ by {diff.max_rel:.2e}" if diff else f"are {list(t.logits.shape)}"
        report.findings.append(
            Finding("logits", False, f"the logits {what} (every block agreed): the head (pooling, flatten, fc)")
        )
    return report
