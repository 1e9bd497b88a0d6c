"""Numpy-in, numpy-out helpers for tooling and tests (Flax NNX). Activations are NCHW at this boundary."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from resnet_flax.model import ResNet, create_model
from resnet_flax.weights import FRAMEWORK, state_key
from resnet_spec.layouts import nchw_to_nhwc, nhwc_to_nchw
from resnet_spec.model_spec import FEATURE_NAMES
from resnet_spec.naming import to_canonical
from resnet_spec.plan import block_names
from resnet_spec.spec import check_amp

#: JAX logs "Unable to initialize backend 'tpu'" at INFO; paddle's import sets the root logger to INFO with a
#: handler, so the line would show wherever paddle is loaded too. Chatter, not a finding: kept at WARNING.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


def jax_device(device: str) -> jax.Device:
    """The project's device names ("cpu", "gpu") as this process's first JAX device of that kind."""
    kind = "gpu" if device in ("gpu", "cuda") else "cpu"
    return jax.local_devices(backend=kind)[0]


@contextmanager
def on(device: str) -> Iterator[None]:
    """Run what follows on ``device`` (JAX's default device; the model's arrays follow the computation)."""
    with jax.default_device(jax_device(device)):
        yield


def _to_numpy(t: Any) -> np.ndarray:
    """numpy has no bfloat16: low-precision outputs come back as float32 (exactly representable); NHWC -> NCHW."""
    out = np.asarray(t.astype(jnp.float32) if t.dtype in (jnp.bfloat16, jnp.float16) else t)
    return nhwc_to_nchw(out) if out.ndim == 4 else out


_TWINS: weakref.WeakKeyDictionary[ResNet, dict[str, ResNet]] = weakref.WeakKeyDictionary()


# --8<-- [start:amp]
def mixed_twin(model: ResNet, amp: str) -> ResNet:
    """The same network computing in ``amp`` (bfloat16 / float16) with float32 parameters (Flax's mixed precision
    is the layers' ``dtype``, a build-time property), holding ``model``'s current weights."""
    twins = _TWINS.setdefault(model, {})
    if amp not in twins:
        twins[amp] = create_model(model.spec, compute_dtype=check_amp(amp))
    nnx.update(twins[amp], nnx.state(model))
    return twins[amp]


# --8<-- [end:amp]


def _features_and_logits(model: ResNet, x: jax.Array) -> dict[str, jax.Array]:
    features = model.forward_features(x)
    return {**features, "logits": model.forward_head(features[list(features)[-1]])}


def forward_numpy(
    model: ResNet, x: np.ndarray, *, features: bool = False, device: str = "cpu", amp: str | None = None
) -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: ``{"logits": ...}`` plus the stem/stage outputs if asked."""
    if amp is not None:
        model = mixed_twin(model, amp)
    with on(device):
        inp = jnp.asarray(nchw_to_nhwc(x))
        out = _features_and_logits(model, inp) if features else {"logits": model(inp)}
    return {k: _to_numpy(v) for k, v in out.items()}


# --8<-- [start:fast]
def fast_forward(
    model: ResNet, *, features: bool = False, device: str = "cpu"
) -> tuple[str, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """The fast eval path as (name, run): the forward under ``nnx.jit`` (XLA). The compiled function takes the
    model's state at each call: later ``import_weights`` calls are seen. ``run`` takes and gives NCHW numpy."""

    @nnx.jit
    def compiled(m: ResNet, x: jax.Array) -> dict[str, jax.Array]:
        return _features_and_logits(m, x) if features else {"logits": m(x)}

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with on(device):
            out = compiled(model, jnp.asarray(nchw_to_nhwc(x)))
        return {k: _to_numpy(v) for k, v in out.items()}

    return "nnx.jit (XLA)", run


# --8<-- [end:fast]


def forward_blocks(model: ResNet, x: np.ndarray, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """Eval-mode forward of an NCHW batch: the stem, every residual block's output (``layer1.0`` ...) and the
    logits, in forward order, NCHW."""
    names = iter(block_names(model.spec))
    with on(device):
        h = model.forward_stem(jnp.asarray(nchw_to_nhwc(x)))
        out: dict[str, jax.Array] = {FEATURE_NAMES[0]: h}
        for stage in model.stages:
            for block in stage:
                h = getattr(model, block)(h)
                out[next(names)] = h
        out["logits"] = model.forward_head(h)
    return {k: _to_numpy(v) for k, v in out.items()}


def param_counts(model: ResNet) -> tuple[int, int]:
    """(trainable parameters, BN running statistics) as Flax counts them (``nnx.Param``, ``nnx.BatchStat``)."""
    count = lambda kind: sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, kind)))  # noqa: E731
    return count(nnx.Param), count(nnx.BatchStat)


def native_shapes(model: ResNet) -> dict[str, tuple[int, ...]]:
    """Every variable of the model by its state path with its shape."""
    return {state_key(path): tuple(v.get_value().shape) for path, v in nnx.state(model).flat_state()}


def gpu_available() -> bool:
    """True when JAX sees a GPU."""
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # no GPU backend in this jaxlib
        return False


def amp_supported(device: str) -> bool:
    """Whether ``forward_numpy(amp=...)`` runs mixed precision on ``device``: XLA runs bf16/fp16 on CPU and GPU."""
    return device == "cpu" or (device in ("gpu", "cuda") and gpu_available())


def release_caches() -> None:
    """Free what the framework keeps between models in a long run: JAX's caches of traced and compiled
    functions, which keep every compiled model's executable (measured: GBs after the zoo's fast paths)."""
    jax.clear_caches()


def use_all_cores() -> None:
    """Every core for long CPU runs: XLA takes them by default (nothing to do)."""


def set_tf32(enabled: bool) -> None:
    """TF32 on GPU matmuls and convs: JAX's default precision uses it; 'highest' does not."""
    jax.config.update("jax_default_matmul_precision", "default" if enabled else "highest")


def loss_and_grads(model: ResNet, x: jax.Array, labels: np.ndarray) -> tuple[Any, Any, Any, nnx.State]:
    """Train-mode logits and cross-entropy, its gradients w.r.t. the input and the parameters (an ``nnx.State``);
    the BN running statistics of the train-mode pass are written back into ``model``. Compiled (``nnx.jit``)."""
    return _loss_and_grads(model, x, jnp.asarray(labels))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The training loss every Flax step uses: mean softmax cross-entropy over integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@nnx.jit
def _loss_and_grads(model: ResNet, x: jax.Array, y: jax.Array) -> tuple[Any, Any, Any, nnx.State]:
    def loss_fn(m: ResNet, inp: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = m(inp, train=True)  # nnx writes the BN running statistics back into ``model``
        return cross_entropy(logits, y), logits

    grad = nnx.value_and_grad(loss_fn, argnums=(nnx.DiffState(0, nnx.Param), 1), has_aux=True)
    (loss, logits), (param_grads, input_grad) = grad(model, x)
    return logits, loss, input_grad, param_grads


def flat(state: nnx.State) -> dict[str, Any]:
    """An ``nnx.State`` (or a tree of its shape, an optimizer's) as ``{native key: array}``."""
    return {state_key(path): getattr(v, "get_value", lambda v=v: v)() for path, v in state.flat_state()}


def train_step_numpy(
    model: ResNet, x: np.ndarray, labels: np.ndarray, *, lr: float, device: str = "cpu"
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One SGD step on cross-entropy in train mode (batch statistics; running stats update).

    Returns the train-mode ``logits``, ``loss``, ``input_grad`` (NCHW) and canonical ``grads``."""
    with on(device):
        logits, loss, input_grad, grads = loss_and_grads(model, jnp.asarray(nchw_to_nhwc(x)), labels)
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p, g: p - lr * g, params, grads))
    native = {k: np.asarray(v) for k, v in flat(grads).items()}
    return {
        "logits": np.asarray(logits),
        "loss": np.asarray(loss).reshape(1),
        "input_grad": nhwc_to_nchw(np.asarray(input_grad)),
        "grads": to_canonical(model.spec, FRAMEWORK, native),
    }
