"""Deployment artifacts written by paddle's own exporters, and the runtime for its native one.

``paddle-inference``: a folder holding ``paddle.jit.save``'s graph and weights (``model.json`` +
``model.pdiparams``), run by Paddle Inference. ``onnx``: that saved graph converted by paddle2onnx (in a
process of its own). The model
is saved in eval mode, so BN uses its running statistics. The input is NCHW; ``dynamic_batch`` leaves the
batch dimension free (the height and width stay those of ``input_shape``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_paddle.runtime import saved_predictor
from resnet_spec.errors import ResNetError

#: The artifacts this backend writes: format -> what writes it.
ARTIFACTS = {
    "onnx": "paddle.jit.save + paddle2onnx",
    "paddle-inference": "paddle.jit.save (model.json + model.pdiparams), run by Paddle Inference",
}
_PREFIX = "model"  # the file names inside a paddle-inference folder
_PADDLE2ONNX = (
    "import sys, paddle2onnx; g, p, out, opset = sys.argv[1:]; "
    "paddle2onnx.export(g, p, out, opset_version=int(opset), enable_onnx_checker=True)"
)


def _save(model: ResNet, folder: str, input_shape: tuple[int, ...], dynamic_batch: bool) -> str:
    from paddle.static import InputSpec

    model.eval()
    prefix = os.path.join(folder, _PREFIX)
    shape = [None if dynamic_batch else input_shape[0], *input_shape[1:]]
    dtype = str(model.parameters()[0].dtype).split(".")[-1]
    paddle.jit.save(model, prefix, input_spec=[InputSpec(shape, dtype, "input")])
    return prefix


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Write ``model`` as a ``fmt`` artifact at ``path`` (a folder for paddle-inference, else one file)."""
    if fmt == "paddle-inference":
        os.makedirs(path)
        _save(model, str(path), input_shape, dynamic_batch)
        return
    with tempfile.TemporaryDirectory(prefix="resnet_paddle_") as folder:
        prefix = _save(model, folder, input_shape, dynamic_batch)
        graph = next(p for p in (prefix + ".json", prefix + ".pdmodel") if os.path.exists(p))  # PIR or legacy
        # In a process of its own: paddle2onnx's C++ protobuf segfaults in a process that has loaded
        # TensorFlow's (measured: paddle2onnx 2.1.0 + TF 2.21, in Message::GetTypeName).
        args = [graph, prefix + ".pdiparams", str(path), str(opset or 17)]
        done = subprocess.run([sys.executable, "-c", _PADDLE2ONNX, *args], capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(path):
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise ResNetError(f"paddle2onnx failed: {lines[-1] if lines else f'exit status {done.returncode}'}")
    _zero_pad_values(path, model)


def _zero_pad_values(path: str | Path, model: ResNet) -> int:
    """paddle2onnx 2.1.0 writes the value of a constant ``Pad`` (paddle's ``Pad2D``, exported through pad3d)
    from uninitialized memory: resnet50v2's stem zero-pad came out as 0.0787 in one export and 0.0293 in the
    next, which moved the logits 1e-4 to 4e-4 (found by comparing every node's output with paddle's blocks:
    the stem's max-pool was the first to differ). The only constant Pad of our models is the V2 stem's zero
    padding before its max-pool (convs pad inside Conv), so each gets 0.0 back; a graph with another count of
    them is refused, not patched. Returns how many were set."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    initializers = {t.name: t for t in graph.graph.initializer}
    pads = [
        n
        for n in graph.graph.node
        if n.op_type == "Pad"
        and all(a.s in (b"constant", b"") for a in n.attribute if a.name == "mode")
        and len(n.input) > 2
        and n.input[2] in initializers
    ]
    expected = int(model.spec.stem.pool and model.spec.stem.pool_pad == "zero")
    if len(pads) != expected:
        raise ResNetError(
            f"paddle2onnx wrote {len(pads)} constant Pad node(s) where {model.spec.name} has {expected}: "
            f"not the graph whose pad value is known to need repair"
        )
    for node in pads:
        value = initializers[node.input[2]]
        value.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(value)), value.name))
    if pads:
        onnx.save(graph, str(path))
    return len(pads)


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run a native artifact (``paddle-inference``) on NCHW numpy input; the logits."""
    predictor = saved_predictor(os.path.join(path, _PREFIX))

    def run(x: np.ndarray) -> np.ndarray:
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(np.ascontiguousarray(x))
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()  # type: ignore[no-any-return]

    return run
