"""Deployment artifacts written by torch's own exporters, and the runtime for its native one.

``onnx``: ``torch.onnx.export`` (the dynamo exporter, through onnxscript). ``torch-export``: a
``torch.export`` program saved as ``.pt2``, run again by ``torch.export.load``. Both trace the model in eval
mode, so BN uses its running statistics. The input is NCHW; ``dynamic_batch`` leaves the batch dimension
free (the height and width stay those of ``input_shape``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from resnet_torch.model import ResNet

#: The artifacts this backend writes: format -> what writes it.
ARTIFACTS = {
    "onnx": "torch.onnx.export (dynamo exporter, onnxscript)",
    "torch-export": "torch.export.export + torch.export.save (.pt2)",
}


def _program(model: ResNet, input_shape: tuple[int, ...], dynamic_batch: bool) -> torch.export.ExportedProgram:
    batch = max(2, input_shape[0]) if dynamic_batch else input_shape[0]  # torch.export specialises a size of 1
    example = torch.zeros((batch, *input_shape[1:]), dtype=next(model.parameters()).dtype)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    return torch.export.export(model.eval(), (example,), dynamic_shapes=shapes)


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Write ``model`` as a ``fmt`` artifact at ``path`` (one file)."""
    program = _program(model, input_shape, dynamic_batch)
    if fmt == "torch-export":
        torch.export.save(program, str(path))
        return
    onnx_program = torch.onnx.export(
        program, dynamo=True, input_names=["input"], output_names=["logits"], opset_version=opset, verbose=False
    )
    assert onnx_program is not None
    onnx_program.save(str(path))


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Run a native artifact (``torch-export``) on NCHW numpy input; the logits."""
    module = torch.export.load(str(path)).module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()  # type: ignore[no-any-return]

    return run
