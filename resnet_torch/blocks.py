"""Residual blocks built from a :class:`resnet_spec.BlockPlan` (PyTorch)."""

from __future__ import annotations

import torch
from torch import nn

from resnet_spec.model_spec import ModelSpec
from resnet_spec.numerics import bn_momentum, conv_init_std
from resnet_spec.plan import BlockPlan, ConvPlan, channel_padding, same_padding


def pad_same(x: torch.Tensor, kernel: int, stride: int, dilation: int = 1, value: float = 0.0) -> torch.Tensor:
    """``x`` padded as TensorFlow's SAME pads before a ``kernel`` x ``kernel`` window at ``stride``, by its size."""
    top, bottom = same_padding(x.shape[-2], kernel, stride, dilation)
    left, right = same_padding(x.shape[-1], kernel, stride, dilation)
    return nn.functional.pad(x, (left, right, top, bottom), value=value)


class SameConv2d(nn.Conv2d):
    """A conv padded as TensorFlow's SAME (``ModelSpec.padding == "same"``: Flax's examples/imagenet) by the input's
    size: torch's ``padding='same'`` refuses strides. Its state_dict is a Conv2d's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size[0], self.stride[0], self.dilation[0]))


# --8<-- [start:helpers]
def conv(plan: ConvPlan, zero: bool = False) -> nn.Conv2d:
    """A conv from its plan, with explicit symmetric padding (or TF's SAME where the plan says) and He-normal
    (fan_out) init (or zeros)."""
    layer = (SameConv2d if plan.same else nn.Conv2d)(
        plan.in_channels,
        plan.out_channels,
        plan.kernel,
        stride=plan.stride,
        padding=0 if plan.same else plan.padding,
        dilation=plan.dilation,
        groups=plan.groups,
        bias=plan.bias,
    )
    if zero:
        nn.init.zeros_(layer.weight)
    else:
        nn.init.normal_(layer.weight, 0.0, conv_init_std(plan))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def norm(channels: int, spec: ModelSpec, zero: bool = False) -> nn.BatchNorm2d:
    """BatchNorm with the spec's eps and momentum (torch convention: weight of the new batch);
    ``zero`` starts gamma at 0 (zero_init_residual)."""
    layer = nn.BatchNorm2d(channels, eps=spec.bn_eps, momentum=bn_momentum(spec, "torch"))
    if zero:
        nn.init.zeros_(layer.weight)
    return layer


def shortcut(plan: BlockPlan, spec: ModelSpec) -> nn.Module | None:
    """The shortcut branch: conv+BN, conv alone (each after ResNet-D's average pool where the plan has one), 1x1
    max-pool, zero padding (option A), or None (identity)."""
    if plan.shortcut in ("conv_bn", "conv"):
        layers = [conv(plan.shortcut_conv)] + ([norm(plan.out_channels, spec)] if plan.shortcut == "conv_bn" else [])
        return AvgPoolFirst(plan.stride, *layers) if plan.shortcut_pool else nn.Sequential(*layers)
    if plan.shortcut == "pool":
        return nn.MaxPool2d(1, stride=plan.stride)
    if plan.shortcut == "zero_pad":
        return ZeroPadShortcut(plan.stride, *channel_padding(spec, plan))
    return None


class AvgPoolFirst(nn.Sequential):
    """ResNet-D's shortcut: a ``stride`` x ``stride`` average pool (ceil mode, padding not counted, as timm's
    ``downsample_avg``), then its layers; numbered from 0 as the plain shortcut's (no weights in the pool)."""

    def __init__(self, stride: int, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.stride = stride  # a plain attribute: a registered pool would join the Sequential's layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(x, self.stride, self.stride, ceil_mode=True, count_include_pad=False)
        return super().forward(x)


class ZeroPadShortcut(nn.Module):
    """Option A of He et al. (CIFAR ResNets): the input subsampled by the stride (a 1x1 max-pool's pick), its new
    channels zeros (``before`` ahead of the input's, ``after`` behind them); no weights."""

    def __init__(self, stride: int, before: int, after: int) -> None:
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.before, self.after))  # (W, H, C) pairs: zeros on C only


# --8<-- [end:helpers]


# --8<-- [start:basic]
class BasicBlock(nn.Module):
    """Two 3x3 convs, each followed by BN; ReLU after the first and after the residual sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec) -> None:
        super().__init__()
        c1, c2 = plan.convs
        self.conv1 = conv(c1)
        self.bn1 = norm(c1.out_channels, spec)
        self.conv2 = conv(c2)
        self.bn2 = norm(c2.out_channels, spec, zero=spec.zero_init_residual)
        self.relu = nn.ReLU()
        self.downsample = shortcut(plan, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


# --8<-- [end:basic]


# --8<-- [start:bottleneck]
class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped, dilated) -> 1x1, each followed by BN; the stride sits where the plan says."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec) -> None:
        super().__init__()
        c1, c2, c3 = plan.convs
        self.conv1 = conv(c1)
        self.bn1 = norm(c1.out_channels, spec)
        self.conv2 = conv(c2)
        self.bn2 = norm(c2.out_channels, spec)
        self.conv3 = conv(c3)
        self.bn3 = norm(c3.out_channels, spec, zero=spec.zero_init_residual)
        self.relu = nn.ReLU()
        self.downsample = shortcut(plan, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# --8<-- [end:bottleneck]


class PreActBasicBlock(nn.Module):
    """Pre-activation: BN-ReLU, then 3x3 -> BN-ReLU -> 3x3; no activation after the sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec) -> None:
        super().__init__()
        c1, c2 = plan.convs
        self.preact_bn = norm(plan.in_channels, spec)
        self.conv1 = conv(c1)
        self.bn1 = norm(c1.out_channels, spec)
        self.conv2 = conv(c2, zero=spec.zero_init_residual)
        self.relu = nn.ReLU()
        self.downsample = shortcut(plan, spec)
        self.shortcut_on_preact = plan.shortcut == "conv"  # keras.applications V2: conv shortcut sees preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.relu(self.preact_bn(x))
        source = preact if self.shortcut_on_preact else x
        identity = source if self.downsample is None else self.downsample(source)
        out = self.relu(self.bn1(self.conv1(preact)))
        out = self.conv2(out)
        return out + identity


# --8<-- [start:preact]
class PreActBottleneck(nn.Module):
    """Pre-activation: BN-ReLU, then 1x1 -> BN-ReLU -> 3x3 -> BN-ReLU -> 1x1; no activation after the sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec) -> None:
        super().__init__()
        c1, c2, c3 = plan.convs
        self.preact_bn = norm(plan.in_channels, spec)
        self.conv1 = conv(c1)
        self.bn1 = norm(c1.out_channels, spec)
        self.conv2 = conv(c2)
        self.bn2 = norm(c2.out_channels, spec)
        self.conv3 = conv(c3, zero=spec.zero_init_residual)
        self.relu = nn.ReLU()
        self.downsample = shortcut(plan, spec)
        self.shortcut_on_preact = plan.shortcut == "conv"  # keras.applications V2: conv shortcut sees preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.relu(self.preact_bn(x))
        source = preact if self.shortcut_on_preact else x
        identity = source if self.downsample is None else self.downsample(source)
        out = self.relu(self.bn1(self.conv1(preact)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.conv3(out)
        return out + identity


# --8<-- [end:preact]


BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}
