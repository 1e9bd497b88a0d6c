"""Deployment artifacts written by Keras' and TensorFlow's own exporters, and the runtimes for its native ones.

``onnx``: ``Model.export(format="onnx")`` (tf2onnx on TensorFlow). ``saved-model``: ``Model.export(
format="tf_saved_model")``. ``tflite``: that SavedModel converted by ``tf.lite.TFLiteConverter``. All three need
TensorFlow (Keras' JAX backend exports through jax2tf). The artifacts take the model's own layout: NHWC for
channels_last models (the default), and return the logits. All three are shared formats (Flax writes SavedModel
and TFLite too), run by ``resnet_tools.export.runtimes``. ``dynamic_batch`` leaves the batch dimension free
(height and width stay fixed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_spec.errors import ResNetError

#: The artifacts this backend writes: format -> what writes it.
ARTIFACTS = {
    "onnx": "keras Model.export(format='onnx') (tf2onnx)",
    "saved-model": "keras Model.export(format='tf_saved_model'), run by tf.saved_model.load",
    "tflite": "tf.lite.TFLiteConverter on that SavedModel, run by the TFLite interpreter",
}


def _signature(model: ResNet, input_shape: tuple[int, ...], dynamic_batch: bool) -> list[keras.InputSpec]:
    n, c, h, w = input_shape
    shape = (h, w, c) if model.data_format == "channels_last" else (c, h, w)
    return [keras.InputSpec(shape=(None if dynamic_batch else n, *shape), dtype=model.dtype_policy.variable_dtype)]


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Write ``model`` as a ``fmt`` artifact at ``path`` (a folder for saved-model, else one file)."""
    if keras.backend.backend() not in ("tensorflow", "jax"):
        raise ResNetError(f"Keras exports {fmt} from its TensorFlow or JAX backend, not {keras.backend.backend()}")
    signature = _signature(model, input_shape, dynamic_batch)
    if fmt == "onnx":
        model.export(str(path), format="onnx", input_signature=signature, opset_version=opset, verbose=False)
    elif fmt == "saved-model":
        model.export(str(path), format="tf_saved_model", input_signature=signature, verbose=False)
    else:
        import tensorflow as tf

        with tempfile.TemporaryDirectory(prefix="resnet_keras_") as folder:
            saved = os.path.join(folder, "saved_model")
            model.export(saved, format="tf_saved_model", input_signature=signature, verbose=False)
            flat = tf.lite.TFLiteConverter.from_saved_model(saved).convert()
        Path(path).write_bytes(flat)


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Keras writes only shared formats (ONNX, SavedModel, TFLite), which ``resnet_tools.export.runtimes`` runs
    whoever wrote them: there is no format of Keras' own to run."""
    raise ResNetError(f"{fmt} is not a format of Keras' own: run it with resnet_tools.export.runtimes.artifact_runner")
