"""Deployment artifacts written by JAX's own exporter, and the runtime for them.

``jax-export``: the model's eval-mode forward serialized by ``jax.export`` (StableHLO with its calling convention,
the weights folded in as constants), run again by ``jax.export.deserialize(...).call``: what a JAX service loads
without the model's Python code. ``saved-model`` and ``tflite``: the same forward converted by ``jax2tf`` (its
StableHLO inside an ``XlaCallModule`` op) into a TensorFlow SavedModel with a ``serve`` endpoint, as Keras' export
names it, and that SavedModel converted by ``tf.lite.TFLiteConverter``; both are shared formats, run by
``resnet_tools.export.runtimes``. The input is NHWC (Flax's layout); ``dynamic_batch`` leaves the batch dimension
symbolic (the height and width stay those of ``input_shape``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from resnet_flax.model import ResNet
from resnet_spec.layouts import nchw_to_nhwc

#: The artifacts this backend writes: format -> what writes it.
ARTIFACTS = {
    "jax-export": "jax.export.export of the nnx forward (StableHLO, weights as constants)",
    "saved-model": "jax2tf.convert of that forward, saved by tf.saved_model.save (a serve endpoint)",
    "tflite": "tf.lite.TFLiteConverter on that SavedModel",
}


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Write ``model`` as a ``fmt`` artifact at ``path`` (a folder for saved-model, else one file).
    ``input_shape`` is NCHW, as every exporter's."""
    n, c, h, w = input_shape
    graphdef, state = nnx.split(model)
    dtype = jax.tree.leaves(state)[0].dtype

    def forward(x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(x)

    if fmt != "jax-export":
        _write_tensorflow(forward, fmt, Path(path), (None if dynamic_batch else n, h, w, c), dtype)
        return
    batch = jax.export.symbolic_shape("b")[0] if dynamic_batch else n
    exported = jax.export.export(jax.jit(forward))(jax.ShapeDtypeStruct((batch, h, w, c), dtype))
    Path(path).write_bytes(exported.serialize())


def _write_tensorflow(
    forward: Callable[[jax.Array], jax.Array], fmt: str, path: Path, shape: tuple[int | None, ...], dtype: Any
) -> None:
    """The forward through jax2tf as a SavedModel at ``path`` (``saved-model``), or that SavedModel, written in a
    temp folder, as one TFLite file (``tflite``). A ``None`` batch is symbolic."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    batch = "b" if shape[0] is None else str(shape[0])
    converted = jax2tf.convert(forward, polymorphic_shapes=[f"({batch}, {', '.join(map(str, shape[1:]))})"])
    module = tf.Module()
    signature = [tf.TensorSpec(shape, tf.as_dtype(np.dtype(dtype)), name="inputs")]
    module.serve = tf.function(converted, autograph=False, input_signature=signature)
    if fmt == "saved-model":
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
        return
    with tempfile.TemporaryDirectory(prefix="resnet_flax_") as folder:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.serve})
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(folder).convert())


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run a ``jax-export`` artifact (Flax's own format) on NCHW numpy input; the logits."""
    exported = jax.export.deserialize(bytearray(Path(path).read_bytes()))
    (aval,) = exported.in_avals

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(exported.call(jnp.asarray(nchw_to_nhwc(x), dtype=aval.dtype)))

    return run
