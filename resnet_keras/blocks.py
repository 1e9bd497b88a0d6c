"""Residual blocks built from a :class:`resnet_spec.BlockPlan` (Keras 3, keras.layers/keras.ops only).

A block's ``__init__`` creates its named layers (the names are the checkpoint format, see
``resnet_spec.naming``) and ``__call__`` wires them, as ``forward`` does in the torch backend.
Every block adds ``[identity, out]`` in that order, as keras.applications does: Keras orders a model's
layers by that (``resnet_spec.naming.keras_order``), and a ``.weights.h5`` numbers layers by that order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from resnet_spec.model_spec import ModelSpec
from resnet_spec.naming import keras_block_name, keras_layer_name
from resnet_spec.numerics import bn_momentum, conv_init_std
from resnet_spec.plan import BlockPlan, ConvPlan, channel_padding

Tensor = keras.KerasTensor
Op = Callable[[Tensor], Tensor]


# --8<-- [start:helpers]
# --8<-- [start:keras-padding]
def conv(plan: ConvPlan, module: str, data_format: str, zero: bool = False) -> Op:
    """A conv from its plan, with He-normal (fan_out) init (or zeros).

    Every padded conv is explicit symmetric ZeroPadding2D + 'valid' (as keras.applications V2 does):
    with stride 2, Keras 'same' pads bottom/right only, which gives torch's output shape but different
    numbers; with stride 1 'same' is the same math, but XLA runs a 'same' 3x3 conv in bfloat16 at
    about half the speed of pad + 'valid' (measured: ``bench/keras_padding.py``).
    """
    init = "zeros" if zero else keras.initializers.RandomNormal(0.0, conv_init_std(plan))
    name = keras_layer_name(module)
    layer = layers.Conv2D(
        plan.out_channels,
        plan.kernel,
        strides=plan.stride,
        padding="same" if plan.same else "valid",  # Keras' "same" is TensorFlow's SAME (ModelSpec.padding)
        dilation_rate=plan.dilation,
        groups=plan.groups,
        use_bias=plan.bias,
        kernel_initializer=init,
        bias_initializer="zeros",
        data_format=data_format,
        name=name,
    )
    if plan.padding == 0 or plan.same:
        return layer
    pad = layers.ZeroPadding2D(plan.padding, data_format=data_format, name=name.replace("_conv", "_pad"))
    return lambda x: layer(pad(x))


# --8<-- [end:keras-padding]


def norm(
    channels: int, spec: ModelSpec, module: str, data_format: str, zero: bool = False
) -> layers.BatchNormalization:
    """BatchNorm with the spec's eps and momentum (keras convention: weight of the OLD statistic);
    ``zero`` starts gamma at 0 (zero_init_residual). ``channels`` is inferred by Keras."""
    axis = -1 if data_format == "channels_last" else 1
    layer = layers.BatchNormalization(
        axis=axis,
        momentum=bn_momentum(spec, "keras"),
        epsilon=spec.bn_eps,
        gamma_initializer="zeros" if zero else "ones",
        name=keras_layer_name(module),
    )
    return layer


def shortcut(plan: BlockPlan, spec: ModelSpec, data_format: str) -> Op | None:
    """The shortcut branch: conv+BN, conv alone (each after ResNet-D's average pool where the plan has one), 1x1
    max-pool, zero padding (option A), or None (identity)."""
    prefix = f"layer{plan.stage}.{plan.index}"
    if plan.shortcut in ("conv_bn", "conv"):
        sc_conv = conv(plan.shortcut_conv, f"{prefix}.downsample.0", data_format)
        sc_norm = (
            norm(plan.out_channels, spec, f"{prefix}.downsample.1", data_format) if plan.shortcut == "conv_bn" else None
        )
        pool = None
        if plan.shortcut_pool:
            # 'same' pads an odd edge at the end only and leaves the padding out of the mean: torch's
            # AvgPool2d(s, s, ceil_mode=True, count_include_pad=False) and paddle's exclusive ceil-mode pool
            name = f"{keras_block_name(plan.stage, plan.index)}_0_pool"
            pool = layers.AveragePooling2D(plan.stride, plan.stride, "same", data_format=data_format, name=name)

        def branch(x: Tensor) -> Tensor:
            x = sc_conv(x if pool is None else pool(x))
            return x if sc_norm is None else sc_norm(x)

        return branch
    if plan.shortcut == "pool":
        name = f"{keras_block_name(plan.stage, plan.index)}_pool"
        return layers.MaxPooling2D(1, strides=plan.stride, data_format=data_format, name=name)
    if plan.shortcut == "zero_pad":
        name = f"{keras_block_name(plan.stage, plan.index)}_0_zero_pad"
        return ZeroPadShortcut(plan.stride, *channel_padding(spec, plan), data_format=data_format, name=name)
    return None


@keras.saving.register_keras_serializable(package="resnet_keras")
class ZeroPadShortcut(layers.Layer):
    """Option A of He et al. (CIFAR ResNets): the input subsampled by the stride (a 1x1 max-pool's pick), its new
    channels zeros (``before`` ahead of the input's, ``after`` behind them); no weights."""

    def __init__(self, stride: int, before: int, after: int, data_format: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stride, self.before, self.after, self.data_format = stride, before, after, data_format

    def call(self, x: Any) -> Any:
        s = self.stride
        if self.data_format == "channels_last":
            x = x[:, ::s, ::s, :]
            widths = [(0, 0), (0, 0), (0, 0), (self.before, self.after)]
        else:
            x = x[:, :, ::s, ::s]
            widths = [(0, 0), (self.before, self.after), (0, 0), (0, 0)]
        return keras.ops.pad(x, widths)

    def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        out = list(shape)
        axis, spatial = (3, (1, 2)) if self.data_format == "channels_last" else (1, (2, 3))
        for i in spatial:
            out[i] = None if shape[i] is None else (shape[i] + self.stride - 1) // self.stride
        out[axis] = None if shape[axis] is None else shape[axis] + self.before + self.after
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        extra = {"stride": self.stride, "before": self.before, "after": self.after, "data_format": self.data_format}
        return {**super().get_config(), **extra}


# --8<-- [end:helpers]


# --8<-- [start:basic]
class BasicBlock:
    """Two 3x3 convs, each followed by BN; ReLU after the first and after the residual sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec, data_format: str) -> None:
        c1, c2 = plan.convs
        prefix, name = f"layer{plan.stage}.{plan.index}", keras_block_name(plan.stage, plan.index)
        self.conv1 = conv(c1, f"{prefix}.conv1", data_format)
        self.bn1 = norm(c1.out_channels, spec, f"{prefix}.bn1", data_format)
        self.conv2 = conv(c2, f"{prefix}.conv2", data_format)
        self.bn2 = norm(c2.out_channels, spec, f"{prefix}.bn2", data_format, zero=spec.zero_init_residual)
        self.relu1 = layers.Activation("relu", name=f"{name}_1_relu")
        self.add = layers.Add(name=f"{name}_add")
        self.relu_out = layers.Activation("relu", name=f"{name}_out")
        self.downsample = shortcut(plan, spec, data_format)

    def __call__(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(self.add([identity, out]))


# --8<-- [end:basic]


# --8<-- [start:bottleneck]
class Bottleneck:
    """1x1 -> 3x3 (grouped, dilated) -> 1x1, each followed by BN; the stride sits where the plan says."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec, data_format: str) -> None:
        c1, c2, c3 = plan.convs
        prefix, name = f"layer{plan.stage}.{plan.index}", keras_block_name(plan.stage, plan.index)
        self.conv1 = conv(c1, f"{prefix}.conv1", data_format)
        self.bn1 = norm(c1.out_channels, spec, f"{prefix}.bn1", data_format)
        self.conv2 = conv(c2, f"{prefix}.conv2", data_format)
        self.bn2 = norm(c2.out_channels, spec, f"{prefix}.bn2", data_format)
        self.conv3 = conv(c3, f"{prefix}.conv3", data_format)
        self.bn3 = norm(c3.out_channels, spec, f"{prefix}.bn3", data_format, zero=spec.zero_init_residual)
        self.relu1 = layers.Activation("relu", name=f"{name}_1_relu")
        self.relu2 = layers.Activation("relu", name=f"{name}_2_relu")
        self.add = layers.Add(name=f"{name}_add")
        self.relu_out = layers.Activation("relu", name=f"{name}_out")
        self.downsample = shortcut(plan, spec, data_format)

    def __call__(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu_out(self.add([identity, out]))


# --8<-- [end:bottleneck]


class PreActBasicBlock:
    """Pre-activation: BN-ReLU, then 3x3 -> BN-ReLU -> 3x3; no activation after the sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec, data_format: str) -> None:
        c1, c2 = plan.convs
        prefix, name = f"layer{plan.stage}.{plan.index}", keras_block_name(plan.stage, plan.index)
        self.preact_bn = norm(plan.in_channels, spec, f"{prefix}.preact_bn", data_format)
        self.conv1 = conv(c1, f"{prefix}.conv1", data_format)
        self.bn1 = norm(c1.out_channels, spec, f"{prefix}.bn1", data_format)
        self.conv2 = conv(c2, f"{prefix}.conv2", data_format, zero=spec.zero_init_residual)
        self.relu_pre = layers.Activation("relu", name=f"{name}_preact_relu")
        self.relu1 = layers.Activation("relu", name=f"{name}_1_relu")
        self.add = layers.Add(name=f"{name}_out")
        self.downsample = shortcut(plan, spec, data_format)
        self.shortcut_on_preact = plan.shortcut == "conv"  # keras.applications V2: conv shortcut sees preact

    def __call__(self, x: Tensor) -> Tensor:
        preact = self.relu_pre(self.preact_bn(x))
        source = preact if self.shortcut_on_preact else x
        identity = source if self.downsample is None else self.downsample(source)
        out = self.relu1(self.bn1(self.conv1(preact)))
        out = self.conv2(out)
        return self.add([identity, out])


# --8<-- [start:preact]
class PreActBottleneck:
    """Pre-activation: BN-ReLU, then 1x1 -> BN-ReLU -> 3x3 -> BN-ReLU -> 1x1; no activation after the sum."""

    def __init__(self, plan: BlockPlan, spec: ModelSpec, data_format: str) -> None:
        c1, c2, c3 = plan.convs
        prefix, name = f"layer{plan.stage}.{plan.index}", keras_block_name(plan.stage, plan.index)
        self.preact_bn = norm(plan.in_channels, spec, f"{prefix}.preact_bn", data_format)
        self.conv1 = conv(c1, f"{prefix}.conv1", data_format)
        self.bn1 = norm(c1.out_channels, spec, f"{prefix}.bn1", data_format)
        self.conv2 = conv(c2, f"{prefix}.conv2", data_format)
        self.bn2 = norm(c2.out_channels, spec, f"{prefix}.bn2", data_format)
        self.conv3 = conv(c3, f"{prefix}.conv3", data_format, zero=spec.zero_init_residual)
        self.relu_pre = layers.Activation("relu", name=f"{name}_preact_relu")
        self.relu1 = layers.Activation("relu", name=f"{name}_1_relu")
        self.relu2 = layers.Activation("relu", name=f"{name}_2_relu")
        self.add = layers.Add(name=f"{name}_out")
        self.downsample = shortcut(plan, spec, data_format)
        self.shortcut_on_preact = plan.shortcut == "conv"  # keras.applications V2: conv shortcut sees preact

    def __call__(self, x: Tensor) -> Tensor:
        preact = self.relu_pre(self.preact_bn(x))
        source = preact if self.shortcut_on_preact else x
        identity = source if self.downsample is None else self.downsample(source)
        out = self.relu1(self.bn1(self.conv1(preact)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.conv3(out)
        return self.add([identity, out])


# --8<-- [end:preact]


BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}
