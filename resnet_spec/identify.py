"""Which zoo model a set of canonical tensors belongs to (by names and shapes, never by position)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resnet_spec.errors import CheckpointError, SpecError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.params import canonical_table
from resnet_spec.spec import get_spec, list_models, unknown_model_message

Shapes = Mapping[str, tuple[int, ...]]


#: Options a checkpoint may imply beyond the head, input channels and stem. A model is built with them only where
#: no zoo entry fits without them: resnet50v1's weights (a bias on every conv) are not read as resnet50's.
EXTENDED = ("conv_bias", "shortcut")


def _overrides_for(shapes: Shapes, spec: ModelSpec) -> dict[str, Any]:
    """Options the checkpoint implies: head size, input channels, CIFAR stem; for a V1.5 model also a bias on
    every conv and shortcut convs without BN (d2l's ResNet)."""
    out: dict[str, Any] = {"num_classes": shapes["fc.weight"][0] if "fc.weight" in shapes else 0}
    conv1 = shapes.get("conv1.weight")
    if conv1 is not None and len(conv1) == 4:
        out["in_channels"] = conv1[1]
        if conv1[2] != spec.stem.kernel:
            out["stem"] = "cifar"
    if "layer1.0.conv1.bias" in shapes and not spec.conv_bias.inner:
        out["conv_bias"] = True
    projections = [k for k in shapes if ".downsample." in k]
    if projections and spec.shortcut == "projection_when_needed" and all(".downsample.0." in k for k in projections):
        out["shortcut"] = "conv_when_needed"
    return out


def _table(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    return {e.name: e.shape for e in canonical_table(spec)}


def candidate_spec(name: str, shapes: Shapes, *, extended: bool = True) -> ModelSpec | None:
    """``name``'s spec with the options ``shapes`` imply (``extended``: EXTENDED ones too), or None if those
    options do not apply."""
    try:
        base = get_spec(name)
        options = _overrides_for(shapes, base)
        return get_spec(name, **{k: v for k, v in options.items() if extended or k not in EXTENDED})
    except ValueError:
        return None


def identify(shapes: Shapes) -> ModelSpec:
    """The one zoo model whose canonical table equals ``shapes`` exactly (with implied options; EXTENDED ones
    only where nothing fits without them)."""
    for extended in (False, True):
        matches = [
            s
            for n in list_models()
            if (s := candidate_spec(n, shapes, extended=extended)) and _table(s) == dict(shapes)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(s.name for s in matches)
            raise CheckpointError(f"checkpoint matches several models ({names}); use --model")
    derived = derived_spec(shapes)
    if derived is not None:
        return derived
    best, score = closest(shapes)
    detail = diff_detail(_table(candidate_spec(best, shapes) or get_spec(best)), shapes)
    raise CheckpointError(
        f"checkpoint matches no zoo model exactly ({len(shapes)} tensors); closest is {best} "
        f"({score:.0%} of names and shapes agree); against {best}: {detail}"
    )


def derived_spec(shapes: Shapes) -> ModelSpec | None:
    """The derived spec (``resnet_spec.derive``) of a file in the zoo's canonical names that no zoo model fits, where
    one reproduces its tensors exactly; else None."""
    from resnet_spec.derive import canonical_layers, derive

    try:
        spec = derive(canonical_layers(shapes))
    except (SpecError, ValueError):
        return None
    return spec if _table(spec) == dict(shapes) else None


def diff_detail(expected: Shapes, shapes: Shapes) -> str:
    """Missing, unexpected and wrong-shape keys of ``shapes`` against ``expected`` (first few of each)."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if tuple(expected[k]) != tuple(shapes[k]))
    wrong = [f"{k} {list(shapes[k])} (expected {list(expected[k])})" for k in wrong]
    return "; ".join(
        f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if keys
    )


def closest(shapes: Shapes) -> tuple[str, float]:
    """The zoo model sharing the most (name, shape) pairs with ``shapes``, and the share."""
    given = set(dict(shapes).items())
    scored = []
    for name in list_models():
        spec = candidate_spec(name, shapes) or get_spec(name)
        table = set(_table(spec).items())
        scored.append((len(given & table) / max(len(given | table), 1), name))
    score, name = max(scored)
    return name, score


def check_architecture(name: str, shapes: Shapes) -> ModelSpec:
    """The spec for ``name`` with implied options; a mismatch names the model the checkpoint really is."""
    if name not in list_models():
        raise CheckpointError(unknown_model_message(name))
    spec = candidate_spec(name, shapes)
    if spec is not None and _table(spec) == dict(shapes):
        return spec
    try:
        actual = identify(shapes).name
        hint = f"it is a {actual} checkpoint"
    except CheckpointError:
        best, score = closest(shapes)
        hint = f"closest zoo model is {best} ({score:.0%} of names and shapes agree)"
    detail = diff_detail(_table(spec or get_spec(name)), shapes)
    raise CheckpointError(f"checkpoint does not fit {name}: {hint}; {detail}")
