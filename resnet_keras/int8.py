"""Keras' own post-training INT8 path: TFLite full-integer quantization (``tf.lite.TFLiteConverter`` with a
representative dataset and ``TFLITE_BUILTINS_INT8``: every op int8, weights per output channel, activations per
tensor; float input and output, quantized at the edges), run by the TFLite interpreter (XNNPACK).

The drift of each block is read from a twin of the model that also returns every block's output (the layers
``conv{s}_block{i}_out``), converted with the same calibration; the artifact written is the plain model.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_keras.runtime import _block_probe
from resnet_spec.errors import ResNetError
from resnet_spec.layouts import nchw_to_nhwc

#: This framework's own INT8 paths: name -> what quantizes and what runs it.
PATHS = {"tflite": "TFLite full-integer (TFLiteConverter, TFLITE_BUILTINS_INT8), run by the TFLite interpreter"}


def full_integer(model: keras.Model, calibration: np.ndarray, shape: tuple[int, ...], batch: int = 1) -> bytes:
    """``model`` as full-integer TFLite at ``batch``, ranges from ``calibration`` (in the model's layout)."""
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        return ([calibration[i : i + batch]] for i in range(0, len(calibration) - batch + 1, batch))

    with tempfile.TemporaryDirectory(prefix="resnet_keras_int8_") as folder:
        saved = os.path.join(folder, "saved_model")
        spec = keras.InputSpec(shape=(batch, *shape), dtype="float32")
        model.export(saved, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # every op int8, or it fails
        return bytes(converter.convert())


class Quantized:
    """A full-integer TFLite model and its block-probing twin: logits and block outputs on NCHW numpy input."""

    def __init__(self, flat: bytes, probe: bytes, channels_last: bool, threads: int) -> None:
        self.flat, self.probe, self.channels_last, self.threads = flat, probe, channels_last, threads
        self.suffix, self.batch = ".tflite", 1  # converted at batch 1
        self.scheme = "weights per channel, activations per tensor (TFLite full-integer)"

    def _run(self, flat: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
            warnings.simplefilter("ignore")
            runner = tf.lite.Interpreter(model_content=flat, num_threads=self.threads).get_signature_runner()
        name = next(iter(runner.get_input_details()))
        inp = nchw_to_nhwc(x) if self.channels_last else np.ascontiguousarray(x)
        parts = [runner(**{name: inp[i : i + 1]}) for i in range(len(inp))]  # the artifact's batch is 1
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        # back to NCHW, as the other frameworks' blocks
        return {k: (v.transpose(0, 3, 1, 2) if v.ndim == 4 and self.channels_last else v) for k, v in out.items()}

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every block's output from the twin; the logits from the artifact itself."""
        blocks = self._run(self.probe, x)
        logits = next(iter(self._run(self.flat, x).values()))
        return {**{k: v for k, v in blocks.items() if k not in ("logits", "stem")}, "logits": logits}

    def save(self, out: Path) -> None:
        Path(out).write_bytes(self.flat)


def quantize(model: ResNet, calibration: np.ndarray, path: str, per_channel: bool = True, threads: int = 2) -> Any:
    """``model`` quantized by ``path`` ("tflite") with ranges from ``calibration`` (N, C, H, W float32). TFLite's
    full-integer scheme scales conv weights per output channel always (``per_channel`` cannot turn it off)."""
    if path not in PATHS:
        raise ResNetError(f"unknown Keras INT8 path {path!r}; known: {', '.join(PATHS)}")
    if keras.backend.backend() != "tensorflow":
        raise ResNetError(f"TFLite INT8 converts from Keras' TensorFlow backend, not {keras.backend.backend()}")
    channels_last = model.data_format == "channels_last"
    cal = nchw_to_nhwc(calibration) if channels_last else np.ascontiguousarray(calibration)
    shape = tuple(cal.shape[1:])
    return Quantized(
        full_integer(model, cal, shape), full_integer(_block_probe(model), cal, shape), channels_last, threads
    )
