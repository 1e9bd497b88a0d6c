"""The ResNet model and ``create_model`` (Flax NNX, NHWC). Built only from the spec."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from resnet_flax.blocks import Block, conv, norm
from resnet_spec.model_spec import ModelSpec
from resnet_spec.naming import flax_block_name, flax_module_name
from resnet_spec.numerics import linear_init_bound
from resnet_spec.plan import feature_channels, feature_names, plan_stages, stem_layers
from resnet_spec.spec import AMP_DTYPES, check_dtype, get_spec

Array = jax.Array


def enable_float64(dtype: str) -> None:
    """float64 needs JAX's 64-bit mode (off by default: float64 arrays silently become float32)."""
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)


# --8<-- [start:flax-pool]
def stem_pool(x: Array, spec: ModelSpec) -> Array:
    """The stem's 3x3/2 max-pool: -inf padding as torch's (Flax's max_pool pads with -inf), or keras.applications'
    zero padding."""
    if not spec.stem.pool:
        return x
    if spec.padding == "same":  # TensorFlow's SAME, as Flax's examples/imagenet pools
        return nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    if spec.stem.pool_pad == "zero":
        x = jnp.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        return nnx.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    return nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


# --8<-- [end:flax-pool]


# --8<-- [start:model]
class ResNet(nnx.Module):
    """ResNet v1 / v1.5 / v2 from a :class:`resnet_spec.ModelSpec` (NHWC in, logits out).

    Attribute names are Flax's examples/imagenet's (``conv_init``, ``bn_init``, ``ResNetBlock_N`` /
    ``BottleneckResNetBlock_N``, ``Dense_0``), so ``nnx.state(model)`` has that example's parameter paths.

    Example:
        >>> model = ResNet(get_spec("resnet18"), rngs=nnx.Rngs(0))
        >>> model(jnp.zeros((2, 97, 131, 3))).shape
        (2, 1000)
    """

    def __init__(
        self, spec: ModelSpec, *, dtype: Any = jnp.float32, param_dtype: Any = jnp.float32, rngs: nnx.Rngs
    ) -> None:
        self.spec = spec
        stem_names: list[tuple[str, str | None]] = []
        for conv_name, bn_name, plan in stem_layers(spec):
            names = (flax_module_name(conv_name, spec), None if bn_name is None else flax_module_name(bn_name, spec))
            setattr(self, names[0], conv(plan, dtype, param_dtype, rngs))
            if names[1] is not None:
                setattr(self, names[1], norm(plan.out_channels, spec, dtype, param_dtype, rngs))
            stem_names.append(names)
        self.stem_names = tuple(stem_names)  # static: tuples of names (hashable, as nnx.jit's graph needs)
        stages: list[tuple[str, ...]] = []
        for blocks in plan_stages(spec):
            names_ = [flax_block_name(spec, p.stage, p.index) for p in blocks]
            for name, plan in zip(names_, blocks, strict=True):
                setattr(self, name, Block(plan, spec, dtype, param_dtype, rngs))
            stages.append(tuple(names_))
        self.stages = tuple(stages)
        if spec.post_norm:
            self.norm_post = norm(feature_channels(spec), spec, dtype, param_dtype, rngs)
        if spec.num_classes > 0:
            bound = linear_init_bound(feature_channels(spec))
            init = nnx.initializers.uniform(2 * bound)  # [0, 2b): shifted to [-b, b) below, as torch's init

            def shifted(key: Array, shape: Any, dtype: Any = jnp.float32) -> Array:
                return init(key, shape, dtype) - jnp.asarray(bound, dtype)

            self.Dense_0 = nnx.Linear(
                feature_channels(spec), spec.num_classes, kernel_init=shifted, bias_init=shifted, dtype=dtype,
                param_dtype=param_dtype, rngs=rngs,
            )  # fmt: skip

    def forward_stem(self, x: Array, train: bool = False) -> Array:
        """The stem: its conv(s), BN and ReLU, and its max-pool."""
        for conv_name, bn_name in self.stem_names:
            x = getattr(self, conv_name)(x)
            if bn_name is not None:
                x = getattr(self, bn_name)(x, use_running_average=not train)
                if self.spec.stem.relu or bn_name != "bn_init":  # tutorial models without a stem ReLU: relu False
                    x = nnx.relu(x)
        return stem_pool(x, self.spec)

    def forward_features(self, x: Array, train: bool = False) -> dict[str, Array]:
        """The stem output and each stage's output, keyed by ``resnet_spec.plan.feature_names``."""
        x = self.forward_stem(x, train)
        names = feature_names(self.spec)
        features = {names[0]: x}
        for i, stage in enumerate(self.stages):
            for name in stage:
                x = getattr(self, name)(x, train)
            features[names[i + 1]] = x
        return features

    def forward_head(self, x: Array, train: bool = False) -> Array:
        """Post-norm (V2), global average pooling and the classifier (if any)."""
        if self.spec.post_norm:
            x = nnx.relu(self.norm_post(x, use_running_average=not train))
        x = jnp.mean(x, axis=(1, 2))
        return self.Dense_0(x) if self.spec.num_classes > 0 else x

    def __call__(self, x: Array, train: bool = False) -> Array:
        return self.forward_head(self.forward_features(x, train)[feature_names(self.spec)[-1]], train)


# --8<-- [end:model]


def create_model(
    name: str | ModelSpec,
    *,
    num_classes: int | None = None,
    dtype: str = "float32",
    seed: int = 0,
    compute_dtype: str | None = None,
    **overrides: Any,
) -> ResNet:
    """Build a zoo model by name (or from a ``ModelSpec``) with random weights.

    Args:
        name: a name from ``resnet_spec.list_models()`` or a resolved ``ModelSpec``.
        num_classes: classifier outputs (default: the spec's); 0 returns the pooled features.
        dtype: parameter dtype, "float32" or "float64" (float64 switches on JAX's 64-bit mode).
        seed: the ``nnx.Rngs`` seed of the random init.
        compute_dtype: "bfloat16" / "float16" computes in that dtype with float32 parameters (mixed precision).
        **overrides: ``zero_init_residual``, ``replace_stride_with_dilation``, ``stem``, ``in_channels``.

    Example:
        >>> create_model("resnet50", num_classes=10).Dense_0.out_features
        10
    """
    spec = get_spec(name, num_classes=num_classes, **overrides) if isinstance(name, str) else name
    enable_float64(check_dtype(dtype))
    if compute_dtype is not None and compute_dtype not in AMP_DTYPES:
        raise ValueError(f"compute_dtype must be one of {AMP_DTYPES}, got {compute_dtype!r}")
    param = jnp.dtype(dtype)
    return ResNet(spec, dtype=jnp.dtype(compute_dtype or dtype), param_dtype=param, rngs=nnx.Rngs(seed))


def model_spec(model: ResNet) -> ModelSpec:
    """The spec a model was built from."""
    return model.spec
