"""Flax's bench paths: the eager NNX call and ``nnx.jit`` (XLA), fp32 and bf16 compute (CPU and GPU); the
Trainer's step (optax) for training."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from resnet_tools.bench.paths.common import NoMemory, PathEntry, Runner, nchw, trainer_step


def _model(name: str, compute_dtype: str | None) -> Any:
    import resnet_flax

    return resnet_flax.create_model(name, compute_dtype=compute_dtype)


def _eager(name: str, x: np.ndarray) -> Runner:
    import jax.numpy as jnp

    model, inp = _model(name, None), jnp.asarray(x)
    return lambda: model(inp).block_until_ready()


def _jit(name: str, x: np.ndarray, compute_dtype: str | None) -> Runner:
    import jax.numpy as jnp
    from flax import nnx

    model, inp = _model(name, compute_dtype), jnp.asarray(x)
    forward = nnx.jit(lambda m, t: m(t))
    return lambda: forward(model, inp).block_until_ready()


def cpu_paths(name: str, batch: int, size: int, mode: str, threads: int) -> Iterator[PathEntry]:
    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype("float32")  # NHWC, Flax's layout
    if mode == "train":
        yield "Trainer (nnx.jit grads + optax)", "ours", partial(trainer_step, "flax", name, nchw(batch, size))
        return
    yield "eager call", "ours", partial(_eager, name, x)
    yield "nnx.jit fp32", "ours", partial(_jit, name, x, None)
    yield "nnx.jit bf16", "ours", partial(_jit, name, x, "bfloat16")


def gpu_memory() -> NoMemory:
    return NoMemory()


def gpu_paths(name: str, batch: int, size: int, mode: str) -> Iterator[PathEntry]:
    x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype("float32")
    if mode == "train":
        return
    yield "nnx.jit fp32", "ours", partial(_jit, name, x, None)
    yield "nnx.jit bf16", "ours", partial(_jit, name, x, "bfloat16")
