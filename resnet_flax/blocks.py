"""Residual blocks built from a :class:`resnet_spec.BlockPlan` (Flax NNX, NHWC).

Module attributes carry the names of Flax's examples/imagenet (``Conv_0``, ``BatchNorm_0``, ``conv_proj``,
``norm_proj``), so a block's state paths are that example's parameter paths. Every padded conv pads explicitly and
symmetrically as the spec says (torch's padding): Flax's ``'SAME'`` pads a stride-2 conv at the end only on an even
input, which is other numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from resnet_spec.model_spec import ModelSpec
from resnet_spec.numerics import bn_momentum, conv_init_std
from resnet_spec.plan import BlockPlan, ConvPlan, channel_padding

Array = jax.Array


# --8<-- [start:helpers]
def conv(plan: ConvPlan, dtype: Any, param_dtype: Any, rngs: nnx.Rngs, zero: bool = False) -> nnx.Conv:
    """A conv from its plan, He-normal (fan_out) init or zeros; padding explicit and symmetric."""
    pad = plan.padding
    init = nnx.initializers.zeros_init() if zero else nnx.initializers.normal(conv_init_std(plan))
    return nnx.Conv(
        plan.in_channels,
        plan.out_channels,
        (plan.kernel, plan.kernel),
        strides=plan.stride,
        padding="SAME" if plan.same else [(pad, pad), (pad, pad)],  # Flax's "SAME" is TensorFlow's
        kernel_dilation=plan.dilation,
        feature_group_count=plan.groups,
        use_bias=plan.bias,
        kernel_init=init,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
    )


def norm(
    channels: int, spec: ModelSpec, dtype: Any, param_dtype: Any, rngs: nnx.Rngs, zero: bool = False
) -> nnx.BatchNorm:
    """BatchNorm with the spec's eps and momentum (Flax's convention: the weight of the OLD statistic)."""
    layer = nnx.BatchNorm(
        channels,
        momentum=bn_momentum(spec, "flax"),
        epsilon=spec.bn_eps,
        use_fast_variance=False,  # E[(x - mean)^2], as torch computes it (E[x^2] - mean^2 loses digits in float32)
        scale_init=nnx.initializers.zeros_init() if zero else nnx.initializers.ones_init(),
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
    )
    for stat in (layer.mean, layer.var):  # nnx.BatchNorm keeps its running statistics in float32 whatever param_dtype
        stat.set_value(stat.get_value().astype(param_dtype))
    return layer


def avg_pool_ceil(x: Array, s: int) -> Array:
    """ResNet-D's shortcut pool: s x s, stride s, ceil mode, padding left out of the mean (torch's
    ``AvgPool2d(s, s, ceil_mode=True, count_include_pad=False)``): 'SAME' pads an odd edge at the end only."""
    return nnx.avg_pool(x, (s, s), strides=(s, s), padding="SAME", count_include_pad=False)


# --8<-- [end:helpers]


# --8<-- [start:block]
def pick(x: Array, stride: int) -> Array:
    """Every ``stride``-th row and column (``x[:, ::s, ::s]``) as one strided slice: indexing lowers to a gather
    when the batch is symbolic (jax2tf), which TFLite's converter cannot translate."""
    return jax.lax.slice(x, (0, 0, 0, 0), x.shape, (1, stride, stride, 1))


class Block(nnx.Module):
    """One residual block of any kind: the plan says which convs, where the stride sits and the shortcut."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec, dtype: Any, param_dtype: Any, rngs: nnx.Rngs) -> None:
        self.preact, self.kind = spec.preact, plan.shortcut
        self.stride, self.pool = plan.stride, plan.shortcut_pool
        self.pad = channel_padding(spec, plan) if plan.shortcut == "zero_pad" else (0, 0)
        n = len(plan.convs)
        if spec.preact:
            self.norm_preact = norm(plan.in_channels, spec, dtype, param_dtype, rngs)
        for i, c in enumerate(plan.convs):
            last = i == n - 1
            setattr(
                self,
                f"Conv_{i}",
                conv(c, dtype, param_dtype, rngs, zero=last and spec.preact and spec.zero_init_residual),
            )
            if not (spec.preact and last):
                zero = last and spec.zero_init_residual
                setattr(self, f"BatchNorm_{i}", norm(c.out_channels, spec, dtype, param_dtype, rngs, zero=zero))
        self.n = n
        if plan.shortcut in ("conv_bn", "conv"):
            assert plan.shortcut_conv is not None
            self.conv_proj = conv(plan.shortcut_conv, dtype, param_dtype, rngs)
            if plan.shortcut == "conv_bn":
                self.norm_proj = norm(plan.out_channels, spec, dtype, param_dtype, rngs)

    def shortcut(self, x: Array, train: bool) -> Array:
        if self.kind in ("conv_bn", "conv"):
            y = self.conv_proj(avg_pool_ceil(x, self.stride) if self.pool and self.stride > 1 else x)
            return self.norm_proj(y, use_running_average=not train) if self.kind == "conv_bn" else y
        if self.kind == "pool":  # a 1x1 max-pool's pick
            return pick(x, self.stride)
        if self.kind == "zero_pad":
            x = pick(x, self.stride)
            return jnp.pad(x, [(0, 0), (0, 0), (0, 0), self.pad])
        return x

    def __call__(self, x: Array, train: bool = False) -> Array:
        if self.preact:
            pre = nnx.relu(self.norm_preact(x, use_running_average=not train))
            identity = self.shortcut(pre if self.kind == "conv" else x, train)  # keras.applications V2's rule
            out = pre
            for i in range(self.n):
                out = getattr(self, f"Conv_{i}")(out)
                if i < self.n - 1:
                    out = nnx.relu(getattr(self, f"BatchNorm_{i}")(out, use_running_average=not train))
            return identity + out
        identity = self.shortcut(x, train)
        out = x
        for i in range(self.n):
            out = getattr(self, f"BatchNorm_{i}")(getattr(self, f"Conv_{i}")(out), use_running_average=not train)
            if i < self.n - 1:
                out = nnx.relu(out)
        return nnx.relu(identity + out)


# --8<-- [end:block]
