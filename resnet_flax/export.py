"""Deployment artifacts written by JAX's own exporter, and the runtime for them.

``jax-export``: the model's eval-mode forward serialized by ``jax.export`` (StableHLO with its calling convention,
the weights folded in as constants), run again by ``jax.export.deserialize(...).call``: what a JAX service loads
without the model's Python code. The input is NHWC (Flax's layout); ``dynamic_batch`` leaves the batch dimension
symbolic (the height and width stay those of ``input_shape``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from resnet_flax.model import ResNet
from resnet_spec.layouts import nchw_to_nhwc

#: The artifacts this backend writes: format -> what writes it.
ARTIFACTS = {"jax-export": "jax.export.export of the nnx forward (StableHLO, weights as constants)"}


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Write ``model`` as a ``fmt`` artifact at ``path`` (one file). ``input_shape`` is NCHW, as every exporter's."""
    n, c, h, w = input_shape
    graphdef, state = nnx.split(model)
    dtype = jax.tree.leaves(state)[0].dtype

    def forward(x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    batch = jax.export.symbolic_shape("b")[0] if dynamic_batch else n
    exported = jax.export.export(jax.jit(forward))(jax.ShapeDtypeStruct((batch, h, w, c), dtype))
    Path(path).write_bytes(exported.serialize())


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run a ``jax-export`` artifact on NCHW numpy input; the logits."""
    exported = jax.export.deserialize(bytearray(Path(path).read_bytes()))
    (aval,) = exported.in_avals

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(exported.call(jnp.asarray(nchw_to_nhwc(x), dtype=aval.dtype)))

    return run
