"""Paddle's own post-training INT8 path: the static graph's ``PostTrainingQuantization`` (paddle's PTQ for
deployment: int8 weights per output channel, activations per tensor, absmax ranges from calibration images), saved
as a Paddle Inference folder (``model.pdmodel`` + ``model.pdiparams``, batch free) and run by Paddle Inference on
oneDNN's int8 kernels (``resnet_paddle.runtime.saved_predictor`` turns them on for a quantized graph).

Paddle Inference returns only the logits. Each block's drift comes from ``paddle.quantization.PTQ``, paddle's eager
PTQ, on the same weights and calibration images (absmax, per tensor): the same scheme simulated, not the int8
kernels' numbers, so the report says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from resnet_paddle.model import ResNet
from resnet_paddle.runtime import forward_blocks
from resnet_spec.errors import ResNetError

#: This framework's own INT8 paths: name -> what quantizes and what runs it.
PATHS = {"paddle-ptq": "paddle.static PostTrainingQuantization, run by Paddle Inference on oneDNN int8 kernels"}
_PREFIX = "model"  # the file names inside the folder, as in a paddle-inference artifact


class Quantized:
    """A static PTQ graph (a folder) and the eager PTQ twin that gives the blocks' outputs."""

    def __init__(self, folder: tempfile.TemporaryDirectory[str], twin: paddle.nn.Layer) -> None:
        self.tmp, self.folder, self.twin = folder, os.path.join(folder.name, "int8"), twin  # removed with self
        self.suffix, self.batch = "", 64  # a folder; its batch is free
        self.scheme = "weights per channel, activations per tensor; blocks from paddle's eager PTQ (per tensor)"

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts = [forward_blocks(self.twin, x[i : i + 64]) for i in range(0, len(x), 64)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def save(self, out: Path) -> None:
        shutil.copytree(self.folder, out)


def _eager_twin(model: ResNet, calibration: np.ndarray) -> paddle.nn.Layer:
    """``paddle.quantization.PTQ`` (absmax observers, per tensor) of ``model``, calibrated and converted."""
    from paddle.quantization import PTQ, QuantConfig
    from paddle.quantization.observers import AbsmaxObserver

    ptq = PTQ(QuantConfig(activation=AbsmaxObserver(quant_bits=8), weight=AbsmaxObserver(quant_bits=8)))
    observed = ptq.quantize(model, inplace=False)
    observed.eval()
    with paddle.no_grad():
        for i in range(0, len(calibration), 16):
            observed(paddle.to_tensor(np.ascontiguousarray(calibration[i : i + 16])))
    converted = ptq.convert(observed, inplace=False)
    converted.eval()
    return converted


def _static_ptq(model: ResNet, calibration: np.ndarray, folder: str) -> None:
    """``model`` saved as a legacy static graph, quantized by ``PostTrainingQuantization``, written to ``folder``."""
    from paddle.pir_utils import DygraphOldIrGuard, OldIrGuard

    def batches() -> Iterator[dict[str, np.ndarray]]:
        return ({"input": calibration[i : i + 16]} for i in range(0, len(calibration), 16))

    from paddle.static import InputSpec
    from paddle.static.quantization import PostTrainingQuantization

    with tempfile.TemporaryDirectory(prefix="resnet_paddle_ptq_") as source:
        with DygraphOldIrGuard():  # the static PTQ reads legacy programs (.pdmodel), not PIR ones (.json)
            spec = [InputSpec([None, *calibration.shape[1:]], "float32", "input")]
            paddle.jit.save(model, os.path.join(source, _PREFIX), input_spec=spec)
        paddle.enable_static()
        try:
            with OldIrGuard():
                ptq = PostTrainingQuantization(
                    executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=source,
                    model_filename=f"{_PREFIX}.pdmodel", params_filename=f"{_PREFIX}.pdiparams",
                    data_loader=batches, batch_size=16, batch_nums=-(-len(calibration) // 16), algo="abs_max",
                    quantizable_op_type=["conv2d", "depthwise_conv2d", "matmul_v2"],
                    onnx_format=True,  # quantize_linear/dequantize_linear pairs, the form Paddle Inference converts
                )  # fmt: skip
                ptq.quantize()
                ptq.save_quantized_model(folder, model_filename=f"{_PREFIX}.pdmodel",
                                         params_filename=f"{_PREFIX}.pdiparams")  # fmt: skip
        finally:
            paddle.disable_static()


def quantize(model: ResNet, calibration: np.ndarray, path: str, per_channel: bool = True, threads: int = 2) -> Any:
    """``model`` quantized by ``path`` ("paddle-ptq") with ranges from ``calibration`` (N, C, H, W float32)."""
    if path not in PATHS:
        raise ResNetError(f"unknown Paddle INT8 path {path!r}; known: {', '.join(PATHS)}")
    model.eval()
    folder = tempfile.TemporaryDirectory(prefix="resnet_paddle_int8_")
    _static_ptq(model, calibration, os.path.join(folder.name, "int8"))
    return Quantized(folder, _eager_twin(model, calibration))
