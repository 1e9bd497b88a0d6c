"""Running an artifact in its runtime: NCHW numpy in, logits out, whatever layout the artifact takes.

The shared formats run here, whichever framework wrote them: ONNX files in onnxruntime (CPU), SavedModels in
``tf.saved_model.load`` and TFLite files in the TFLite interpreter. A framework's own formats run in its runtime
(``resnet_<backend>.export.artifact_runner``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec.layouts import nchw_to_nhwc

#: The ONNX metadata key recording the input layout of files we write ("NCHW" / "NHWC").
LAYOUT_KEY = "resnet.input_layout"
Runner = Callable[[np.ndarray], np.ndarray]


def mark_layout(path: str | Path, layout: str) -> None:
    """Record the input layout in an ONNX file's metadata (a Keras model's file takes NHWC)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != LAYOUT_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = LAYOUT_KEY, layout
    onnx.save(proto, str(path))


def onnx_runner(path: str | Path, *, threads: int | None = None) -> Runner:
    """An onnxruntime CPU session on ``path``. The input layout is the file's recorded one, or else the one
    whose channel axis is static (NCHW: axis 1)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings and below are the runtime's chatter
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    layout = session.get_modelmeta().custom_metadata_map.get(LAYOUT_KEY)
    if layout is None:
        layout = "NCHW" if isinstance(inp.shape[1], int) else "NHWC"
    dtype = np.float64 if "double" in inp.type else np.float32

    def run(x: np.ndarray) -> np.ndarray:
        arr = nchw_to_nhwc(x) if layout == "NHWC" else np.ascontiguousarray(x)
        return np.asarray(session.run(None, {inp.name: arr.astype(dtype, copy=False)})[0])

    return run


def _in_layout(x: np.ndarray, last: int) -> np.ndarray:
    """NCHW input for an artifact whose input's last axis is ``last``: NHWC when that is the channel count."""
    return nchw_to_nhwc(x) if last == x.shape[1] else np.ascontiguousarray(x)


def saved_model_runner(path: str | Path) -> Runner:
    """A SavedModel's ``serve`` endpoint (Keras' export and ours through jax2tf both name it so) in TensorFlow."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    spec = loaded.serve.input_signature[0]
    last = spec.shape[-1]

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(loaded.serve(tf.constant(_in_layout(x, last), dtype=spec.dtype)))

    return run


def tflite_runner(path: str | Path, *, threads: int | None = None) -> Runner:
    """A TFLite file in TensorFlow's interpreter (XNNPACK), its input resized to each batch."""
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    last = int(inp["shape_signature"][-1])

    def run(x: np.ndarray) -> np.ndarray:
        arr = _in_layout(x, last)
        if tuple(interpreter.get_input_details()[0]["shape"]) != arr.shape:
            interpreter.resize_tensor_input(inp["index"], list(arr.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], arr.astype(inp["dtype"], copy=False))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))

    return run


#: The shared formats' runners (export.formats.SHARED: the two are kept equal by a test).
RUNNERS: dict[str, Callable[[str | Path], Runner]] = {
    "onnx": onnx_runner, "saved-model": saved_model_runner, "tflite": tflite_runner,
}  # fmt: skip


def artifact_runner(fmt: str, path: str | Path, exporter: Any = None) -> Runner:
    """The runner for an artifact of ``fmt``: a shared format's runtime here, else the writer backend's
    ``exporter`` module (``resnet_<backend>.export``)."""
    if fmt in RUNNERS:
        return RUNNERS[fmt](path)
    return exporter.artifact_runner(path, fmt)  # type: ignore[no-any-return]
