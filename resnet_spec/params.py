"""The canonical parameter table: every parameter and BN statistic of a model, by canonical name.

Canonical = torchvision's names and layouts (conv OIHW, Linear [out, in]); for models torchvision
lacks, the names ``resnet_torch`` gives them (``preact_bn``, ``post_bn``, conv biases).
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec.model_spec import ModelSpec
from resnet_spec.plan import ConvPlan, feature_channels, plan_stages, stem_layers

BN_ATTRS = ("weight", "bias", "running_mean", "running_var")
BN_STAT_ATTRS = ("running_mean", "running_var")


@dataclass(frozen=True)
class ParamEntry:
    """One tensor: canonical ``name`` = ``module.attr``; ``kind`` is conv, bn or fc."""

    module: str
    kind: str
    attr: str
    shape: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attr}"

    @property
    def trainable(self) -> bool:
        return self.attr not in BN_STAT_ATTRS


def _conv(module: str, conv: ConvPlan) -> list[ParamEntry]:
    shape = (conv.out_channels, conv.in_channels // conv.groups, conv.kernel, conv.kernel)
    out = [ParamEntry(module, "conv", "weight", shape)]
    if conv.bias:
        out.append(ParamEntry(module, "conv", "bias", (conv.out_channels,)))
    return out


def _bn(module: str, channels: int) -> list[ParamEntry]:
    return [ParamEntry(module, "bn", attr, (channels,)) for attr in BN_ATTRS]


def canonical_table(spec: ModelSpec) -> list[ParamEntry]:
    """All tensors of ``spec`` in module order, with canonical names and shapes."""
    table: list[ParamEntry] = []
    for conv_name, bn_name, conv in stem_layers(spec):
        table += _conv(conv_name, conv)
        if bn_name is not None:
            table += _bn(bn_name, conv.out_channels)
    for blocks in plan_stages(spec):
        for blk in blocks:
            prefix = f"layer{blk.stage}.{blk.index}"
            if spec.preact:
                table += _bn(f"{prefix}.preact_bn", blk.in_channels)
            for k, conv in enumerate(blk.convs, start=1):
                table += _conv(f"{prefix}.conv{k}", conv)
                if not (spec.preact and k == len(blk.convs)):  # pre-activation: no BN after the last conv
                    table += _bn(f"{prefix}.bn{k}", conv.out_channels)
            if blk.shortcut_conv is not None:
                table += _conv(f"{prefix}.downsample.0", blk.shortcut_conv)
                if blk.shortcut == "conv_bn":
                    table += _bn(f"{prefix}.downsample.1", blk.out_channels)
    if spec.post_norm:
        table += _bn("post_bn", feature_channels(spec))
    if spec.num_classes > 0:
        table += [
            ParamEntry("fc", "fc", "weight", (spec.num_classes, feature_channels(spec))),
            ParamEntry("fc", "fc", "bias", (spec.num_classes,)),
        ]
    return table


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def count_params(spec: ModelSpec) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) computed from the canonical table."""
    table = canonical_table(spec)
    trainable = sum(_size(e.shape) for e in table if e.trainable)
    return trainable, sum(_size(e.shape) for e in table if not e.trainable)
