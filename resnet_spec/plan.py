"""The block-by-block plan of a model: channels, strides, dilations and shortcut kinds.

Every backend builds its layers from this plan, so the rules of where strides sit (V1 / V1.5 / V2),
how dilation replaces stride and when a shortcut needs a projection live here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec.model_spec import ModelSpec


@dataclass(frozen=True)
class ConvPlan:
    """One convolution of a block."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    dilation: int
    groups: int
    bias: bool
    #: TensorFlow's SAME padding (``ModelSpec.padding == "same"``, strided convs only): see :func:`same_padding`.
    same: bool = False

    @property
    def padding(self) -> int:
        """Symmetric zero padding that keeps 'same' geometry for odd kernels (explicit everywhere)."""
        return self.dilation * (self.kernel - 1) // 2


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding of one side of ``size`` (before, after): ``ceil(size / stride)`` outputs, the
    padding split with the odd pixel after. A 3x3 stride-2 conv pads (0, 1) on an even side, (1, 1) on an odd one;
    symmetric padding is (1, 1) on both, so the two agree on odd sides only."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class BlockPlan:
    """One residual block: ``convs`` in order; ``shortcut`` in identity | conv_bn | conv | pool | zero_pad
    (option A: the input subsampled by the stride, its new channels zeros, placed as ``ModelSpec.channel_pad``)."""

    stage: int  # 1-based
    index: int  # 0-based within the stage
    in_channels: int
    out_channels: int
    stride: int
    convs: tuple[ConvPlan, ...]
    shortcut: str
    shortcut_bias: bool
    #: ResNet-D: a 2x2 average pool (stride ``stride``, ceil mode, padding not counted) before the projection conv,
    #: which then runs at stride 1 (``ModelSpec.downsample == "avg_pool"``, strided blocks only).
    shortcut_pool: bool = False

    @property
    def shortcut_conv(self) -> ConvPlan | None:
        """The 1x1 projection conv of the shortcut, if any."""
        if self.shortcut not in ("conv_bn", "conv"):
            return None
        stride = 1 if self.shortcut_pool else self.stride
        return ConvPlan(self.in_channels, self.out_channels, 1, stride, 1, 1, bias=self.shortcut_bias)


def stem_convs(spec: ModelSpec) -> tuple[ConvPlan, ...]:
    """The stem's convolutions: one k x k conv, or a deep stem's 3x3 convs (the first strides)."""
    st = spec.stem
    widths = (spec.in_channels, *st.deep, st.width)
    kernel = 3 if st.deep else st.kernel
    return tuple(
        ConvPlan(widths[i], widths[i + 1], kernel, st.stride if i == 0 else 1, 1, 1, bias=spec.conv_bias.stem)
        for i in range(len(widths) - 1)
    )


def stem_conv(spec: ModelSpec) -> ConvPlan:
    """The stem's first convolution (its only one but in a deep stem): what the input meets."""
    return stem_convs(spec)[0]


def stem_layers(spec: ModelSpec) -> list[tuple[str, str | None, ConvPlan]]:
    """(conv name, BN name or None, conv) of each stem conv, canonical names: ``conv1``, ``bn1``; a deep stem's as
    timm's ``nn.Sequential`` numbers them, ReLUs between (``conv1.0``, ``conv1.1``, ``conv1.3``, ``conv1.4``,
    ``conv1.6``), its last BN ``bn1``."""
    convs = stem_convs(spec)
    last_bn = "bn1" if spec.stem.norm else None
    if not spec.stem.deep:
        return [("conv1", last_bn, convs[0])]
    out: list[tuple[str, str | None, ConvPlan]] = [
        (f"conv1.{3 * i}", f"conv1.{3 * i + 1}", c) for i, c in enumerate(convs)
    ]
    out[-1] = (out[-1][0], last_bn, convs[-1])
    return out


def inner_width(spec: ModelSpec, planes: int) -> int:
    """Bottleneck inner width (ResNeXt / wide rule); the basic block's width is ``planes``."""
    if spec.block == "basic":
        return planes
    return int(planes * (spec.width_per_group / 64.0)) * spec.groups


# --8<-- [start:stride-placement]
def _block_convs(spec: ModelSpec, cin: int, width: int, cout: int, stride: int, dilation: int) -> tuple[ConvPlan, ...]:
    bias_inner, bias_last = spec.conv_bias.inner, spec.conv_bias.last
    same = spec.padding == "same"  # a strided 3x3 pads TensorFlow's SAME (Flax's examples/imagenet)
    if spec.block == "basic":
        mid = cin if spec.widen_on == "conv2" else width  # the first conv keeps its input's width, or widens
        return (
            ConvPlan(cin, mid, 3, stride, 1, 1, bias_inner, same=same and stride > 1),
            ConvPlan(mid, cout, 3, 1, 1, 1, bias_last),
        )
    s1, s3 = (stride, 1) if spec.stride_on == "conv1x1" else (1, stride)
    return (
        ConvPlan(cin, width, 1, s1, 1, 1, bias_inner),
        ConvPlan(width, width, 3, s3, dilation, spec.groups, bias_inner, same=same and s3 > 1),
        ConvPlan(width, cout, 1, 1, 1, 1, bias_last),
    )


# --8<-- [end:stride-placement]


# --8<-- [start:shortcuts]
def _shortcut_kind(spec: ModelSpec, index: int, stride: int, cin: int, cout: int) -> str:
    if spec.shortcut == "projection_when_needed":
        return "conv_bn" if stride != 1 or cin != cout else "identity"
    if spec.shortcut == "conv_when_needed":  # a 1x1 conv alone, no BN (d2l's ResNet and tutorials after it)
        return "conv" if stride != 1 or cin != cout else "identity"
    if spec.shortcut == "zero_pad_when_needed":  # option A of He et al. (CIFAR ResNets): no weights
        return "zero_pad" if stride != 1 or cin != cout else "identity"
    if spec.shortcut == "conv_bn_first_block":
        return "conv_bn" if index == 0 else "identity"
    # conv_first_block (pre-activation V2): stride elsewhere is a 1x1 max-pool on the raw input.
    if index == 0:
        return "conv"
    return "pool" if stride > 1 else "identity"


# --8<-- [end:shortcuts]


def plan_stages(spec: ModelSpec) -> list[list[BlockPlan]]:
    """The blocks of each of the four stages.

    ``replace_stride_with_dilation[i]`` applies to the i-th stage that downsamples (stages 2-4 for
    V1/V1.5, stages 1-3 for V2). As in torchvision, the block that would have strided keeps the
    previous dilation and every later block uses the multiplied one.
    """
    strided_stages = [i for i, s in enumerate(spec.stage_strides) if s > 1]
    # Specs with fewer than three downsampling stages ignore the extra flags.
    dilate = dict(zip(strided_stages, spec.replace_stride_with_dilation, strict=False))
    cin, dilation = spec.stem.width, 1
    stages: list[list[BlockPlan]] = []
    stage_args = zip(spec.depths, spec.widths, spec.stage_strides, strict=True)
    for s_idx, (depth, planes, stage_stride) in enumerate(stage_args):
        cout, width = planes * spec.expansion, inner_width(spec, planes)
        blocks = []
        for b in range(depth):
            strided_block = b == (0 if spec.stride_block == "first" else depth - 1)
            stride, conv_dilation = (stage_stride if strided_block else 1), dilation
            if strided_block and dilate.get(s_idx, False):
                dilation *= stride
                stride = 1
            kind = _shortcut_kind(spec, b, stride, cin, cout)
            pooled = spec.downsample == "avg_pool" and stride > 1 and kind in ("conv_bn", "conv")
            blocks.append(
                BlockPlan(
                    stage=s_idx + 1,
                    index=b,
                    in_channels=cin,
                    out_channels=cout,
                    stride=stride,
                    convs=_block_convs(spec, cin, width, cout, stride, conv_dilation),
                    shortcut=kind,
                    shortcut_bias=spec.conv_bias.shortcut,
                    shortcut_pool=pooled,
                )
            )
            cin = cout
        stages.append(blocks)
    return stages


def channel_padding(spec: ModelSpec, block: BlockPlan) -> tuple[int, int]:
    """Zeros before and after the input's channels in an option-A shortcut (``ModelSpec.channel_pad``)."""
    extra = block.out_channels - block.in_channels
    return (extra // 2, extra - extra // 2) if spec.channel_pad == "split" else (0, extra)


def feature_names(spec: ModelSpec) -> tuple[str, ...]:
    """The feature maps a model exposes: ``stem``, then ``stage1`` ... one per stage."""
    return ("stem", *(f"stage{i + 1}" for i in range(len(spec.depths))))


def feature_channels(spec: ModelSpec) -> int:
    """Channels of the pooled features (the classifier's input)."""
    return spec.widths[-1] * spec.expansion


def block_names(spec: ModelSpec) -> list[str]:
    """Every residual block's canonical name in forward order: ``layer1.0``, ``layer1.1``, ..., ``layer4.2``."""
    return [f"layer{b.stage}.{b.index}" for stage in plan_stages(spec) for b in stage]
