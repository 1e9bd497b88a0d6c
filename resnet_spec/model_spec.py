"""The spec's types: what a backend needs to build one model. Framework-free and below everything else in
resnet_spec (plan, params and the YAML loader in ``spec`` build on it; it imports none of them)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

#: Names of the feature maps a model exposes, in order (stem output, then each stage's output).
FEATURE_NAMES = ("stem", "stage1", "stage2", "stage3", "stage4")


@dataclass(frozen=True)
class ConvBias:
    """Which convolutions carry a bias: the stem, the shortcut, inner block convs, the last one."""

    stem: bool
    shortcut: bool
    inner: bool
    last: bool


@dataclass(frozen=True)
class StemSpec:
    """The stem: one k x k conv (or a deep stem's 3x3 convs), optional BN+ReLU, optional 3x3/2 max-pool."""

    kind: str
    width: int
    kernel: int
    stride: int
    norm: bool
    pool: bool
    pool_pad: str  # "neg_inf" (torch/paddle MaxPool padding) or "zero" (keras.applications)
    # A deep stem (ResNet-C/D of Bag of Tricks, timm's resnet*d, PaddleClas' *_vd): the widths of the 3x3 convs
    # before the last one, each with BN + ReLU; the first strides. () = one k x k conv.
    deep: tuple[int, ...] = ()
    relu: bool = True  # a ReLU after the stem's BN (tutorial models without one: False)


@dataclass(frozen=True)
class ModelSpec:
    """Everything a backend needs to build one model; built only by :func:`get_spec`."""

    name: str
    variant: str
    preprocessing: str  # a key of the YAML's preprocessing: (see :func:`get_preprocessing`)
    block: str
    expansion: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    groups: int
    width_per_group: int
    preact: bool
    stride_on: str
    stride_block: str
    stage_strides: tuple[int, ...]
    conv_bias: ConvBias
    bn_eps: float
    bn_momentum: float  # torch convention (weight of the new batch); see resnet_spec.numerics
    stem: StemSpec
    shortcut: str
    post_norm: bool
    num_classes: int
    in_channels: int
    expected_trainable: int
    expected_bn_stats: int
    # Option A's zero padding of the shortcut's new channels: "split" (half before, half after the input's, as
    # F.pad(x, (0, 0, 0, 0, p, p)) in the common CIFAR code) or "end" (torch.cat([x, zeros])).
    channel_pad: str = "split"
    # A projection shortcut in a strided block: its 1x1 conv strides ("conv": He et al.'s B, torchvision) or a 2x2
    # average pool does and the conv follows at stride 1 ("avg_pool": ResNet-D, timm's resnet*d, PaddleClas' *_vd).
    downsample: str = "conv"
    # The conv of a basic block that changes the width: its first (He et al.: cin -> w -> w) or its second, the first
    # keeping its input's (cin -> cin -> w, as some tutorial models write it).
    widen_on: str = "conv1"
    # How a strided 3x3 conv of a block and the stem's max-pool pad: "symmetric" (k // 2 on every side: torchvision,
    # paddle.vision, keras.applications, timm) or "same" (TensorFlow's SAME, Flax's examples/imagenet: on an even
    # side, nothing before and one after). Equal on odd sides; same output sizes; other numbers on even ones.
    padding: str = "symmetric"
    # Build options (overridable through create_model(**overrides)).
    zero_init_residual: bool = False
    replace_stride_with_dilation: tuple[bool, bool, bool] = (False, False, False)
    overridden: tuple[str, ...] = field(default=())

    @property
    def is_zoo_default(self) -> bool:
        """True when no override changed the architecture (expected counts then apply)."""
        return not set(self.overridden) & {
            "num_classes", "stem", "in_channels", "conv_bias", "shortcut", "stride_on", "stride_block"
        }  # fmt: skip

    def options_text(self, skip: tuple[str, ...] = ()) -> str:
        """The build options that differ from the zoo's entry, as ``create_model`` takes them
        (``num_classes=10, conv_bias=True, in_channels=1, shortcut='conv_when_needed'``)."""
        values = {
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "stem": self.stem.kind,
            "conv_bias": self.conv_bias.inner,
            "shortcut": self.shortcut,
            "stride_on": self.stride_on,
            "stride_block": self.stride_block,
            "pool_pad": self.stem.pool_pad,
            "channel_pad": self.channel_pad,
            "downsample": self.downsample,
            "padding": self.padding,
            "zero_init_residual": self.zero_init_residual,
            "replace_stride_with_dilation": list(self.replace_stride_with_dilation),
        }
        return ", ".join(f"{k}={values[k]!r}" for k in self.overridden if k in values and k not in skip)

    def spec_hash(self) -> str:
        """A short stable hash of the architecture (stored in checkpoint metadata)."""
        arch = dataclasses.asdict(self)
        for key in (
            "name",
            "preprocessing",
            "expected_trainable",
            "expected_bn_stats",
            "zero_init_residual",
            "overridden",
        ):
            arch.pop(key)
        if arch["padding"] == "symmetric":  # the default: files written before the option keep their hash
            arch.pop("padding")
        return hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:16]
