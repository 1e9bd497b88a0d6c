"""INT8 ONNX through ONNX Runtime's static quantization (QDQ, per-channel or per-tensor weights) of the ONNX that
torch's exporter writes: the INT8 path shared by every framework that writes ONNX, run by ONNX Runtime.

The blocks are found in the float ONNX that torch's exporter writes: each node records the module it came from
(``pkg.torch.onnx`` metadata, ``.../layer2.0: ...``); a block's output is the last node inside it. ORT's QDQ pass
keeps those tensors' names, so both models can return them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.core.backends import load_submodule

#: The INT8 path this module adds: ONNX Runtime's, for the ONNX that torch's exporter writes.
PATH = "onnxruntime"
NEEDS = ("onnx", "onnxscript", "onnxruntime")
WHAT = "ONNX Runtime static quantization (QDQ) of torch's ONNX export, run by ONNX Runtime"
BLOCK = re.compile(r"/(layer\d+\.\d+): ")


def block_outputs(model: Any) -> dict[str, str]:
    """block ("layer2.0") -> the name of its output tensor, from torch's exporter's metadata: the last node inside
    the block (its final ReLU; the addition in a pre-activation block, which has no ReLU after it)."""
    found: dict[str, str] = {}
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        m = BLOCK.search(meta.get("namespace", ""))
        if m:
            found[m[1]] = node.output[0]  # the last one in graph order wins
    return found


def dequantized(model: Any, name: str) -> str:
    """The tensor the next layer reads in a QDQ model for the float tensor ``name``: the output of the
    DequantizeLinear after its QuantizeLinear. ORT's quantizer folds a ReLU before a quantize into the quantize's
    range, and ``name`` then holds the values before that ReLU."""
    quantized = {n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == name}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in quantized:
            return str(n.output[0])
    return name


def _with_outputs(model: Any, names: list[str]) -> bytes:
    """The model serialised with ``names`` added as graph outputs (float32, shape left to the runtime)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for name in names:
        copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return bytes(copy.SerializeToString())


def _run(model_bytes: bytes, x: np.ndarray, threads: int, as_written: bool = False) -> list[np.ndarray]:
    """The model's outputs on ``x``. ``as_written``: ORT's graph optimisations off, so each tensor is the one the
    file names (optimised, ORT fuses a QDQ group into one int8 kernel and drops the ReLU before a quantize, and a
    block's output name would then hold another tensor)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: ORT's notes on the QDQ graph are not for the user
    if as_written:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts = [session.run(None, {name: x[i : i + 64]}) for i in range(0, len(x), 64)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def quantize(float_onnx: Path, out: Path, calibration: np.ndarray, per_channel: bool = True) -> None:
    """ONNX Runtime's static quantization of ``float_onnx`` into ``out``: QDQ, int8 weights (per output channel
    or per tensor) and activations, MinMax ranges from ``calibration`` (N, C, H, W, float32, preprocessed)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # ORT's base class has no type information
        def __init__(self, name: str, batch: int) -> None:
            self.batches: Iterator[dict[str, np.ndarray]] = iter(
                {name: calibration[i : i + batch]} for i in range(0, len(calibration) - batch + 1, batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    import onnx

    (inp,) = onnx.load(str(float_onnx), load_external_data=False).graph.input
    first = inp.type.tensor_type.shape.dim[0]
    batch = first.dim_value if first.HasField("dim_value") else 1  # a static batch is fed whole batches
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))  # shapes inferred, graph optimised: ORT's recipe
        quantize_static(
            str(prepared), str(out), Reader(inp.name, batch), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        )  # fmt: skip


class Quantized:
    """An INT8 QDQ ONNX model and the float ONNX it came from: logits (ORT's optimised int8 kernels, as deployed) and
    each block's output (optimisations off, so each tensor is the one the file names) on NCHW numpy input."""

    def __init__(self, float_onnx: Path, int8_onnx: Path, threads: int) -> None:
        import onnx

        self.int8_bytes = int8_onnx.read_bytes()
        source, int8 = onnx.load(str(float_onnx)), onnx.load(str(int8_onnx))
        self.names = {block: dequantized(int8, name) for block, name in block_outputs(source).items()}
        self.probe = _with_outputs(int8, list(self.names.values()))
        self.threads, self.suffix, self.batch = threads, ".onnx", 64  # the batch is free
        self.scheme = ""  # said by the caller, which knows per_channel

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        blocks = _run(self.probe, x, self.threads, as_written=True)[1:]
        logits = _run(self.int8_bytes, x, self.threads)[0]
        return {**dict(zip(self.names, blocks, strict=True)), "logits": logits}

    def save(self, out: Path) -> None:
        Path(out).write_bytes(self.int8_bytes)


def quantize_model(model: Any, calibration: np.ndarray, per_channel: bool, threads: int) -> Quantized:
    """A torch ``model`` exported to ONNX by torch's exporter (batch free), quantized by ONNX Runtime."""
    exporter = load_submodule("torch", "export")
    shape = (2, *calibration.shape[1:])
    with tempfile.TemporaryDirectory(prefix="resnet_int8_") as tmp:
        float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        exporter.export_artifact(model, "onnx", float_path, input_shape=shape, dynamic_batch=True)
        quantize(float_path, int8_path, calibration, per_channel)
        return Quantized(float_path, int8_path, threads)
