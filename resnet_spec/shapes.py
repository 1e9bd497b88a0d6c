"""Output shapes and multiply-accumulate counts computed from the spec alone."""

from __future__ import annotations

from dataclasses import dataclass

from resnet_spec.model_spec import FEATURE_NAMES, ModelSpec
from resnet_spec.plan import BlockPlan, ConvPlan, feature_channels, plan_stages, stem_convs, stem_layers


def conv_out(size: int, conv: ConvPlan) -> int:
    """Spatial output size of a conv with symmetric padding (torch's formula)."""
    return (size + 2 * conv.padding - conv.dilation * (conv.kernel - 1) - 1) // conv.stride + 1


def pool_out(size: int) -> int:
    """The stem's 3x3 stride-2 max-pool with one pixel of padding."""
    return (size + 2 - 3) // 2 + 1


def feature_shapes(spec: ModelSpec, height: int, width: int) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of the stem output and of each stage's output for an input of height x width."""
    h, w = height, width
    for conv in stem_convs(spec):
        h, w = conv_out(h, conv), conv_out(w, conv)
    if spec.stem.pool:
        h, w = pool_out(h), pool_out(w)
    if h < 1 or w < 1:
        raise ValueError(f"{spec.name}: input {height}x{width} is too small")
    shapes = {FEATURE_NAMES[0]: (spec.stem.width, h, w)}
    for blocks in plan_stages(spec):
        for blk in blocks:
            for c in blk.convs:
                h, w = conv_out(h, c), conv_out(w, c)
        shapes[FEATURE_NAMES[blocks[0].stage]] = (blocks[-1].out_channels, h, w)
    return shapes


def logits_shape(spec: ModelSpec, batch: int) -> tuple[int, int]:
    """Output shape: (batch, num_classes), or (batch, features) without a head."""
    return (batch, spec.num_classes if spec.num_classes > 0 else feature_channels(spec))


def shortcut_in(blk: BlockPlan, size: int) -> int:
    """The size the shortcut's conv sees: the block input's, or after ResNet-D's 2x2 average pool (ceil mode)."""
    return -(-size // blk.stride) if blk.shortcut_pool else size


def _conv_macs(conv: ConvPlan, h_out: int, w_out: int) -> int:
    return h_out * w_out * conv.out_channels * (conv.in_channels // conv.groups) * conv.kernel**2


@dataclass(frozen=True)
class ConvSite:
    """One convolution of the network with its input size (H, W) for a given input image."""

    conv: ConvPlan
    height: int
    width: int

    @property
    def macs(self) -> int:
        return _conv_macs(self.conv, conv_out(self.height, self.conv), conv_out(self.width, self.conv))


def conv_sites(spec: ModelSpec, height: int = 224, width: int = 224) -> list[ConvSite]:
    """Every convolution in execution order (stem, then each block's convs and projection)."""
    sites, h, w = [], height, width
    for conv in stem_convs(spec):
        sites.append(ConvSite(conv, h, w))
        h, w = conv_out(h, conv), conv_out(w, conv)
    if spec.stem.pool:
        h, w = pool_out(h), pool_out(w)
    for blocks in plan_stages(spec):
        for blk in blocks:
            h_in, w_in = h, w
            for c in blk.convs:
                sites.append(ConvSite(c, h, w))
                h, w = conv_out(h, c), conv_out(w, c)
            if blk.shortcut_conv is not None:
                sites.append(ConvSite(blk.shortcut_conv, shortcut_in(blk, h_in), shortcut_in(blk, w_in)))
    return sites


def count_macs(spec: ModelSpec, height: int = 224, width: int = 224) -> int:
    """Multiply-accumulates of one forward pass (convs and the classifier; BN/ReLU/pool excluded)."""
    macs = sum(site.macs for site in conv_sites(spec, height, width))
    if spec.num_classes > 0:
        macs += feature_channels(spec) * spec.num_classes
    return macs


def module_shapes(spec: ModelSpec, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Output shape (C, H, W) of every conv and BN module, and (classes,) of the classifier, in order.

    A BN's shape is that of its input; a pre-activation BN sees the block input.
    """
    h, w = height, width
    shapes: dict[str, tuple[int, ...]] = {}
    for conv_name, bn_name, conv in stem_layers(spec):
        h, w = conv_out(h, conv), conv_out(w, conv)
        shapes[conv_name] = (conv.out_channels, h, w)
        if bn_name is not None:
            shapes[bn_name] = (conv.out_channels, h, w)
    if spec.stem.pool:
        h, w = pool_out(h), pool_out(w)
    for blocks in plan_stages(spec):
        for blk in blocks:
            prefix = f"layer{blk.stage}.{blk.index}"
            if spec.preact:
                shapes[f"{prefix}.preact_bn"] = (blk.in_channels, h, w)
            h_in, w_in = h, w
            for k, c in enumerate(blk.convs, start=1):
                h, w = conv_out(h, c), conv_out(w, c)
                shapes[f"{prefix}.conv{k}"] = (c.out_channels, h, w)
                if not (spec.preact and k == len(blk.convs)):  # pre-activation: no BN after the last conv
                    shapes[f"{prefix}.bn{k}"] = (c.out_channels, h, w)
            sc = blk.shortcut_conv
            if sc is not None:
                out = (sc.out_channels, conv_out(shortcut_in(blk, h_in), sc), conv_out(shortcut_in(blk, w_in), sc))
                shapes[f"{prefix}.downsample.0"] = out
                if blk.shortcut == "conv_bn":
                    shapes[f"{prefix}.downsample.1"] = out
    if spec.post_norm:
        shapes["post_bn"] = (feature_channels(spec), h, w)
    if spec.num_classes > 0:
        shapes["fc"] = (spec.num_classes,)
    return shapes


def bn_counts(spec: ModelSpec, batch: int, height: int, width: int) -> dict[str, int]:
    """Elements per channel that each BN module normalises over (N * H * W of its input).

    Needed to translate torch's unbiased running variance (see ``resnet_spec.numerics``).
    """
    from resnet_spec.naming import module_kind

    shapes = module_shapes(spec, height, width)
    return {m: batch * s[1] * s[2] for m, s in shapes.items() if module_kind(m) == "bn"}
