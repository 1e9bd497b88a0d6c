"""Deployment artifacts written by Keras' and TensorFlow's own exporters, and the runtimes for its native ones.

``onnx``: ``Model.export(format="onnx")`` (tf2onnx on TensorFlow). ``saved-model``: ``Model.export(
format="tf_saved_model")``, run by ``tf.saved_model.load``. ``tflite``: that SavedModel converted by
``tf.lite.TFLiteConverter``, run by the TFLite interpreter. All three need Keras' TensorFlow backend (JAX
exports through jax2tf, which needs TensorFlow too). The artifacts take the model's own layout: NHWC for
channels_last models (the default), and return the logits; the runners here take NCHW and transpose
(``resnet_spec.layouts``). ``dynamic_batch`` leaves the batch dimension free (height and width stay fixed).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_spec.errors import ResNetError
from resnet_spec.layouts import nchw_to_nhwc

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


def _nhwc(x: np.ndarray, channels: int) -> np.ndarray:
    """NCHW input for an artifact whose input is NHWC (its channel count last)."""
    return nchw_to_nhwc(x) if x.shape[1] == channels else np.ascontiguousarray(x)


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run a native artifact (``saved-model``, ``tflite``) on NCHW numpy input; the logits."""
    import tensorflow as tf

    if fmt == "saved-model":
        loaded = tf.saved_model.load(str(path))
        spec = loaded.serve.input_signature[0]
        last = spec.shape[-1]

        def run_saved(x: np.ndarray) -> np.ndarray:
            inp = nchw_to_nhwc(x) if last == x.shape[1] else np.ascontiguousarray(x)
            return np.asarray(loaded.serve(tf.constant(inp, dtype=spec.dtype)))

        return run_saved
    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    last = int(inp["shape_signature"][-1])

    def run_tflite(x: np.ndarray) -> np.ndarray:
        arr = nchw_to_nhwc(x) if last == x.shape[1] else np.ascontiguousarray(x)
        if tuple(interpreter.get_input_details()[0]["shape"]) != arr.shape:
            interpreter.resize_tensor_input(inp["index"], list(arr.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], arr.astype(inp["dtype"], copy=False))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))

    return run_tflite
