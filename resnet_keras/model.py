"""The ResNet model and ``create_model`` (Keras 3 functional model). Built only from the spec."""

from __future__ import annotations

import functools
from typing import Any, TypedDict

import keras
from keras import layers

from resnet_keras.blocks import BLOCKS, Op, conv, norm
from resnet_spec.errors import SpecError
from resnet_spec.model_spec import FEATURE_NAMES, ModelSpec
from resnet_spec.naming import keras_block_name, keras_layer_name
from resnet_spec.numerics import linear_init_bound
from resnet_spec.plan import feature_channels, feature_names, plan_stages, stem_layers
from resnet_spec.spec import AMP_DTYPES, DTYPES, get_spec

DATA_FORMATS = ("channels_last", "channels_first")


@functools.cache
def nchw_conv_supported() -> bool:
    """Whether this backend runs an NCHW conv here. TensorFlow on CPU does only through oneDNN, which it turns
    off on CPUs without AVX-512 and with ``TF_ENABLE_ONEDNN_OPTS=0`` ("Conv2D only supports NHWC on CPU")."""
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        tf.nn.conv2d(tf.zeros((1, 1, 3, 3)), tf.zeros((1, 1, 1, 1)), 1, "VALID", data_format="NCHW")
    except (tf.errors.OpError, ValueError):
        return False
    return True


class NegInfPadding2D(layers.Layer):
    """Pads H and W by one pixel with -inf, as torch/paddle max-pool padding does."""

    def __init__(self, data_format: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, x: Any) -> Any:
        hw = [(1, 1), (1, 1)]
        widths = [(0, 0), *hw, (0, 0)] if self.data_format == "channels_last" else [(0, 0), (0, 0), *hw]
        return keras.ops.pad(x, widths, constant_values=float("-inf"))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


# --8<-- [start:keras-pool]
def stem_pool(spec: ModelSpec, data_format: str) -> Op:
    """The stem max-pool; keras.applications zero-pads first (differs from -inf only on negative input)."""
    if not spec.stem.pool:
        return lambda x: x
    if spec.padding == "same":  # TensorFlow's SAME (Flax's examples/imagenet)
        return layers.MaxPooling2D(3, strides=2, padding="same", data_format=data_format, name="pool1_pool")
    pool = layers.MaxPooling2D(3, strides=2, data_format=data_format, name="pool1_pool")
    if spec.stem.pool_pad == "zero" or (spec.stem.norm and spec.stem.relu):
        # After BN+ReLU the input is >= 0, so zero padding equals torch's -inf padding exactly.
        pad = layers.ZeroPadding2D(1, data_format=data_format, name="pool1_pad")
    else:
        pad = NegInfPadding2D(data_format, name="pool1_pad")
    return lambda x: pool(pad(x))


# --8<-- [end:keras-pool]


def feature_layer_names(spec: ModelSpec) -> dict[str, str]:
    """Layer whose output is each feature map of ``resnet_spec.FEATURE_NAMES``."""
    last_conv = keras_layer_name(stem_layers(spec)[-1][0])
    after_norm = "conv1_relu" if spec.stem.relu else "conv1_bn"
    stem = "pool1_pool" if spec.stem.pool else after_norm if spec.stem.norm else last_conv
    names = {FEATURE_NAMES[0]: stem}
    for blocks in plan_stages(spec):
        names[feature_names(spec)[blocks[0].stage]] = f"{keras_block_name(blocks[-1].stage, blocks[-1].index)}_out"
    return names


# --8<-- [start:model]
class ResNet(keras.Model):
    """ResNet v1 / v1.5 / v2 from a :class:`resnet_spec.ModelSpec` as a functional Keras model.

    Layer names follow keras.applications (``conv1_conv``, ``conv2_block1_1_conv``, ``post_bn``,
    ``predictions``). Input NHWC ``(None, None, C)`` by default; logits out (no softmax).

    Args:
        spec: the resolved spec (see ``resnet_spec.get_spec``).
        data_format: "channels_last" (NHWC) or "channels_first" (NCHW).
        input_shape: a fixed input shape in ``data_format`` order (default: any height and width).

    Example:
        >>> model = ResNet(get_spec("resnet18"))
        >>> model(np.zeros((2, 97, 131, 3), "float32")).shape
        (2, 1000)
    """

    def __init__(
        self, spec: ModelSpec, data_format: str = "channels_last", input_shape: tuple[int | None, ...] | None = None
    ) -> None:
        if data_format not in DATA_FORMATS:
            raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
        c = spec.in_channels
        shape = (None, None, c) if data_format == "channels_last" else (c, None, None)
        if input_shape is not None:
            if len(input_shape) != 3 or input_shape[shape.index(c)] != c:
                raise ValueError(
                    f"input_shape must be 3 dims in {data_format} order with {c} channels, got {input_shape}"
                )
            shape = tuple(input_shape)
        inputs = keras.Input(shape, dtype=keras.config.dtype_policy().compute_dtype, name="input")
        # TF on a CPU without oneDNN has no NCHW conv: take NCHW in, compute in NHWC (same weights, same math).
        compute = data_format if data_format == "channels_last" or nchw_conv_supported() else "channels_last"
        x = inputs if compute == data_format else layers.Permute((2, 3, 1), name="nchw_to_nhwc")(inputs)
        for conv_name, bn_name, plan in stem_layers(spec):  # one conv, or a deep stem's
            x = conv(plan, conv_name, compute)(x)
            if bn_name is not None:
                x = norm(plan.out_channels, spec, bn_name, compute)(x)
                if spec.stem.relu or bn_name != "bn1":  # tutorial models without a stem ReLU: relu False
                    x = layers.Activation("relu", name=keras_layer_name(bn_name).replace("_bn", "_relu"))(x)
        x = stem_pool(spec, compute)(x)
        block_cls = BLOCKS[(spec.block, spec.preact)]
        for blocks in plan_stages(spec):
            for plan in blocks:
                x = block_cls(plan, spec, compute)(x)
        if spec.post_norm:
            x = norm(feature_channels(spec), spec, "post_bn", compute)(x)
            x = layers.Activation("relu", name="post_relu")(x)
        x = layers.GlobalAveragePooling2D(data_format=compute, name="avg_pool")(x)
        if spec.num_classes > 0:
            bound = linear_init_bound(feature_channels(spec))
            init = keras.initializers.RandomUniform(-bound, bound)
            x = layers.Dense(spec.num_classes, kernel_initializer=init, bias_initializer=init, name="predictions")(x)
        super().__init__(inputs=inputs, outputs=x, name=spec.name)
        self.spec = spec
        self.data_format = data_format  # the layout of the input and of the feature maps a user gets
        self.compute_format = compute  # the layout the layers compute in (NHWC where TF's CPU lacks NCHW)

    def features_model(self) -> keras.Model:
        """A model sharing these layers that returns the stem and stage outputs by feature name, in
        ``data_format``."""
        names = feature_layer_names(self.spec)
        outputs = {k: self.get_layer(v).output for k, v in names.items()}
        if self.compute_format != self.data_format:
            outputs = {k: layers.Permute((3, 1, 2), name=f"{k}_nchw")(v) for k, v in outputs.items()}
        return keras.Model(self.input, outputs)


# --8<-- [end:model]


class KerasOptions(TypedDict, total=False):
    """What ``create_model`` and every builder take besides the name."""

    num_classes: int | None
    dtype: str | None
    data_format: str
    input_shape: tuple[int | None, ...] | None
    zero_init_residual: bool
    replace_stride_with_dilation: list[bool] | tuple[bool, bool, bool]
    stem: str
    in_channels: int


def create_model(
    name: str | ModelSpec,
    *,
    num_classes: int | None = None,
    dtype: str | None = None,
    data_format: str = "channels_last",
    input_shape: tuple[int | None, ...] | None = None,
    **overrides: Any,
) -> ResNet:
    """Build a zoo model by name (or from a ``ModelSpec``) with random weights.

    Args:
        name: a name from ``resnet_spec.list_models()`` or a resolved ``ModelSpec``.
        num_classes: classifier outputs (default: the spec's, 1000 for the ImageNet zoo); 0 returns
            the pooled features.
        dtype: "float32" or "float64" (parameters and compute), a Keras mixed policy
            "mixed_bfloat16" / "mixed_float16" (float32 variables, 16-bit compute), or None: the
            global policy (``keras.config.set_dtype_policy``), as keras.applications does.
        data_format: "channels_last" (NHWC, default) or "channels_first" (NCHW).
        input_shape: fixed input shape as in keras.applications, e.g. ``(224, 224, 3)``; default
            ``(None, None, C)``: any size.
        **overrides: ``zero_init_residual``, ``replace_stride_with_dilation``, ``stem``, ``in_channels``.

    Example:
        >>> create_model("resnet50", num_classes=10).get_layer("predictions").units
        10
    """
    spec = get_spec(name, num_classes=num_classes, **overrides) if isinstance(name, str) else name
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(check_policy(dtype or previous.name))  # every layer built below takes it
    try:
        return ResNet(spec, data_format=data_format, input_shape=input_shape)
    finally:
        keras.config.set_dtype_policy(previous)


# --8<-- [start:jax-float64]
def check_policy(policy: str) -> str:
    """A supported Keras dtype policy. float64 on JAX: switch on JAX's 64-bit mode (off by default:
    float64 arrays silently become float32), and stop Keras' type promotion from demoting float64 to
    float32 on non-TF backends, which makes BatchNormalization compute a float64 model in float32
    (``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``; measured: 1e-7 instead of 1e-15)."""
    known = (*DTYPES, *(f"mixed_{d}" for d in AMP_DTYPES))
    if policy not in known:
        raise SpecError(f"unsupported dtype {policy!r}; supported: {', '.join(known)}")
    if policy == "float64" and keras.backend.backend() == "jax":
        import jax
        from keras.src.backend.common import dtypes as keras_dtypes

        jax.config.update("jax_enable_x64", True)
        keras_dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"  # right once JAX has 64-bit mode on
    return policy


# --8<-- [end:jax-float64]


def model_spec(model: ResNet) -> ModelSpec:
    """The spec a model was built from."""
    return model.spec
