"""Look-alikes: ResNets with the same tensors that compute differently. The weights cannot tell them apart, so a
checkpoint mapped without its names deciding (or the user's code proving it) must not pick one silently.

Each :class:`Axis` is one such setting, a build option of ``resnet_spec.get_spec``:

- ``stride_on``: a bottleneck strides on its first 1x1 conv (ResNet v1: keras.applications, Caffe) or on its 3x3
  (v1.5: torchvision, paddle.vision, timm, Hugging Face);
- ``stride_block``: a pre-activation stage strides in its last block, with a 1x1 max-pool shortcut
  (keras.applications' V2) or in its first (timm's resnetv2, He et al.'s pre-activation code);
- ``pool_pad``: a stem max-pool that follows the conv directly (no BN + ReLU in between, as in V2) pads with zeros
  (keras.applications) or with -inf (torch's ``MaxPool2d(3, 2, padding=1)``). After BN + ReLU the two are equal;
- ``channel_pad``: an option-A shortcut (CIFAR ResNets) puts its zero channels around the input's or after them;
- ``downsample``: a strided projection shortcut strides its 1x1 conv (He et al.'s B) or a 2x2 average pool before
  it (ResNet-D). Open where the stem is deep, as the two are common there (timm's resnet50c and resnet50d); with a
  single-conv stem every published checkpoint strides the conv, which is taken (``--reference`` proves either);
- ``derived``: a derived spec (``resnet_spec.derive``) takes what no layer shows as He et al. build it (the stride
  in the first block of each stage after the first, the stem's stride and pool read off its kernel, a ReLU after
  the stem's BN). Its one value is no choice among look-alikes but a word the user must give (``--assume
  derived=he2016``), where their code (``--reference``, which reads these off the run) or names that decide do not;
- ``padding``: a strided 3x3 conv and the stem max-pool pad symmetrically (every zoo: torchvision, paddle.vision,
  keras.applications, timm) or as TensorFlow's SAME (Flax's examples/imagenet). Every naming but Flax's decides it
  (symmetric), so it is open only on a model read as SAME: a Flax file that is not ours is read so, and
  ``--assume padding=symmetric`` says an NNX model of the user's pads both sides.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from resnet_spec.errors import SpecError
from resnet_spec.model_spec import ModelSpec
from resnet_spec.spec import PROJECTIONS, apply_overrides, is_zoo_model


@dataclass(frozen=True)
class Axis:
    """One setting the weights cannot show: its option name, its values (with who uses each), when it matters."""

    name: str
    values: Mapping[str, str]  # value -> what it means and who builds it so
    matters: Callable[[ModelSpec], bool]
    current: Callable[[ModelSpec], str]
    #: Where a value may be set (a file's record, ``--assume``) though the axis is not open; None: where it matters.
    applies: Callable[[ModelSpec], bool] | None = None

    def can_apply(self, spec: ModelSpec) -> bool:
        return (self.applies or self.matters)(spec)

    def describe(self, value: str) -> str:
        return f"{self.name}={value} ({self.values[value]})"


def _strides(spec: ModelSpec) -> bool:
    return any(s > 1 for s in spec.stage_strides)


AXES = (
    Axis(
        "stride_on",
        {
            "conv3x3": "the stride on each bottleneck's 3x3 conv: v1.5 and V2; torchvision, paddle.vision, timm, "
            "Hugging Face, keras.applications' V2",
            "conv1x1": "the stride on each bottleneck's first 1x1 conv: ResNet v1; keras.applications' ResNet50, Caffe",
        },
        lambda s: s.block == "bottleneck" and _strides(s),
        lambda s: s.stride_on,
    ),
    Axis(
        "stride_block",
        {
            "last": "the stride in the last block of each stage, a 1x1 max-pool shortcut: keras.applications' V2",
            "first": "the stride in the first block of each stage: timm's resnetv2, He et al.'s pre-activation code",
        },
        lambda s: s.shortcut == "conv_first_block" and _strides(s) and max(s.depths) > 1,
        lambda s: s.stride_block,
    ),
    Axis(
        "pool_pad",
        {
            "zero": "the stem max-pool pads with zeros: keras.applications",
            "neg_inf": "the stem max-pool pads with -inf: torch's MaxPool2d(3, 2, padding=1), paddle's MaxPool2D",
        },
        lambda s: s.stem.pool and not (s.stem.norm and s.stem.relu),  # after BN + ReLU (>= 0) zeros equal -inf
        lambda s: s.stem.pool_pad,
    ),
    Axis(
        "channel_pad",
        {
            "split": "option A's zeros half before, half after the input's channels: F.pad(x, (0, 0, 0, 0, p, p)), "
            "as the common CIFAR ResNet code",
            "end": "option A's zeros after the input's channels: torch.cat([x, zeros], 1)",
        },
        lambda s: s.shortcut == "zero_pad_when_needed" and len(set(s.widths)) > 1,
        lambda s: s.channel_pad,
    ),
    Axis(
        "downsample",
        {
            "conv": "a strided shortcut's 1x1 conv strides: He et al.'s B, torchvision, timm's resnet50c",
            "avg_pool": "a 2x2 average pool strides a shortcut, its 1x1 conv does not: ResNet-D, timm's resnet50d, "
            "PaddleClas' ResNet50_vd",
        },
        lambda s: bool(s.stem.deep) and s.shortcut in PROJECTIONS and _strides(s),
        lambda s: s.downsample,
    ),
    Axis(
        "derived",
        {
            "he2016": "a derived spec's strides, stem and ReLUs as He et al. build them: stride 2 in the first block "
            "of each stage after the first, a 3x3 stem at stride 1 without pool or a larger one at stride 2 with a "
            "3x3 max-pool, a ReLU after the stem's BN and after each addition",
        },
        lambda s: not is_zoo_model(s.name) and as_he2016(s),
        lambda s: "he2016",
    ),
    Axis(
        "padding",
        {
            "symmetric": "strided 3x3 convs and the stem max-pool pad one pixel on every side: torchvision, "
            "paddle.vision, keras.applications, timm",
            "same": "strided 3x3 convs and the stem max-pool pad as TensorFlow's SAME (on an even side one pixel "
            "after, none before): Flax's examples/imagenet",
        },
        lambda s: s.padding == "same",
        lambda s: s.padding,
        applies=lambda s: _strides(s) or s.stem.pool,
    ),
)
AXIS_NAMES = tuple(a.name for a in AXES)


def as_he2016(spec: ModelSpec) -> bool:
    """Whether what no layer shows is as He et al. build it (what a derived spec takes without the user's code)."""
    strides = (1, *([2] * (len(spec.stage_strides) - 1)))
    cifar = spec.stem.kernel == 3 and not spec.stem.deep
    stem = (spec.stem.stride, spec.stem.pool) == ((1, False) if cifar else (2, True))
    return spec.stage_strides == strides and spec.stride_block == "first" and stem and spec.stem.relu


def axis(name: str) -> Axis:
    for a in AXES:
        if a.name == name:
            return a
    raise SpecError(f"unknown assumption {name!r}; known: {', '.join(AXIS_NAMES)}")


def open_axes(spec: ModelSpec) -> list[Axis]:
    """The settings where ``spec`` has look-alikes (same tensors, other numbers)."""
    return [a for a in AXES if a.matters(spec)]


def check_assumptions(assume: Mapping[str, str]) -> dict[str, str]:
    """``{axis: value}`` as given by a user (``--assume stride_on=conv3x3``), each checked; one line if not."""
    for name, value in assume.items():
        a = axis(name)
        if value not in a.values:
            raise SpecError(f"--assume {name}={value}: {name} is one of {', '.join(a.values)}")
    return dict(assume)


def variants(spec: ModelSpec, fixed: Mapping[str, str] | None = None) -> list[ModelSpec]:
    """``spec`` and each look-alike of it: every combination of values of its open axes, those in ``fixed`` held
    (``spec``'s own values first). A fixed axis that does not matter for ``spec`` changes nothing."""
    fixed = fixed or {}
    choices = []
    for a in open_axes(spec):
        if a.name in fixed:
            choices.append([(a.name, fixed[a.name])])
        else:
            own = a.current(spec)
            choices.append([(a.name, own)] + [(a.name, v) for v in a.values if v != own])
    out = []
    for combo in itertools.product(*choices):
        changes = {k: v for k, v in combo if v != axis(k).current(spec)}
        out.append(apply_overrides(spec, **changes) if changes else spec)
    return out


def differences(specs: list[ModelSpec]) -> list[str]:
    """The axes on which ``specs`` differ, each with its values described (for a refusal's message)."""
    out = []
    for a in AXES:
        values = list(dict.fromkeys(a.current(s) for s in specs))
        if len(values) > 1:
            out.append(f"{a.name}: " + " or ".join(f"{v} ({a.values[v]})" for v in values))
    return out


def settings(spec: ModelSpec) -> dict[str, str]:
    """``{axis: value}`` of ``spec`` on each open axis: what a file of another naming must be read as to be it."""
    return {a.name: a.current(spec) for a in open_axes(spec)}


def assumed(spec: ModelSpec) -> list[str]:
    """What ``spec`` holds on each open axis, described: the assumptions a conversion onto it makes."""
    return [a.describe(a.current(spec)) for a in open_axes(spec)]
