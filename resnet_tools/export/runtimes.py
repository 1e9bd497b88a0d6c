"""Running an artifact in its runtime: NCHW numpy in, logits out, whatever layout the artifact takes.

ONNX files run in onnxruntime (CPU) here, whichever framework wrote them; the native formats run in their
framework's own runtime (``resnet_<backend>.export.artifact_runner``).
"""

from __future__ import annotations

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


def artifact_runner(fmt: str, path: str | Path, exporter: Any = None) -> Runner:
    """The runner for an artifact of ``fmt``: onnxruntime for ONNX, else the writer backend's ``exporter``
    module (``resnet_<backend>.export``)."""
    if fmt == "onnx":
        return onnx_runner(path)
    return exporter.artifact_runner(path, fmt)  # type: ignore[no-any-return]
