"""INT8 ONNX through ONNX Runtime's static quantization (QDQ, per-channel or per-tensor weights), calibrated on real
images, and its parity against the float model it came from: top-1 and argmax agreement on held-out images, the
logit drift, and the drift of every residual block, so that a collapse is caught, and traced to the block that
drifts most, before anything is written.

The blocks are found in the float ONNX that torch's exporter writes: each node records the module it came from
(``pkg.torch.onnx`` metadata, ``.../layer2.0: ...``); a block's output is the last ReLU inside it. ORT's QDQ pass
keeps those tensors' names, so both models can return them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_spec.errors import ResNetError
from resnet_tools.core.diffs import tensor_diff

if TYPE_CHECKING:
    from resnet_tools.export.run import ExportRequest, ExportResult

#: Below this argmax agreement with the float model on held-out images, an INT8 artifact is refused (a collapse).
MIN_AGREEMENT = 0.99
#: ... and below this top-1, in points, under the float model's.
MAX_TOP1_DROP = 0.5
CALIBRATION_COUNT = 128  # images drawn (seeded) from the calibration set's training split
SEED = 0
BLOCK = re.compile(r"/(layer\d+\.\d+): ")


@dataclass
class Int8Report:
    """How an INT8 model computes against its float source on held-out images."""

    per_channel: bool
    calibration: str  # where the calibration images came from, and how many
    images: int  # held-out images compared
    top1_float: float
    top1_int8: float
    agreement: float  # share of images whose argmax is the same
    logit_drift: float  # max |int8 - float| / max |float| over the logits
    blocks: dict[str, float] = field(default_factory=dict)  # block -> the same relative drift of its output

    @property
    def worst_block(self) -> str:
        return max(self.blocks, key=self.blocks.__getitem__) if self.blocks else "logits"

    @property
    def collapsed(self) -> bool:
        return self.agreement < MIN_AGREEMENT or (self.top1_float - self.top1_int8) * 100 > MAX_TOP1_DROP

    def verdict(self) -> str:
        head = (
            f"top-1 {self.top1_float:.2%} float -> {self.top1_int8:.2%} INT8, argmax agreement {self.agreement:.2%}, "
            f"logit drift {self.logit_drift:.1e} on {self.images} held-out images"
        )
        if not self.collapsed:
            return head
        return (
            f"INT8 collapse: {head} (needs agreement >= {MIN_AGREEMENT:.0%} and top-1 within {MAX_TOP1_DROP} points); "
            f"the block that drifts most is {self.worst_block} ({self.blocks.get(self.worst_block, 0):.1e})"
        )


def block_outputs(model: Any) -> dict[str, str]:
    """block ("layer2.0") -> the name of its output tensor (its last ReLU), from torch's exporter's metadata."""
    found: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "Relu":
            continue
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
        def __init__(self, name: str) -> None:
            self.batches: Iterator[dict[str, np.ndarray]] = iter(
                {name: calibration[i : i + 1]} for i in range(len(calibration))
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    import onnx

    name = onnx.load(str(float_onnx), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_onnx), str(prepared))  # shapes inferred, graph optimised: ORT's recipe
        quantize_static(
            str(prepared), str(out), Reader(name), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        )  # fmt: skip


def compare(
    float_onnx: Path, int8_onnx: Path, x: np.ndarray, y: np.ndarray, per_channel: bool, calibration: str, threads: int
) -> Int8Report:
    """The INT8 model against the float one on ``x`` (held out), block by block."""
    import onnx

    source = onnx.load(str(float_onnx))
    blocks = block_outputs(source)
    names = list(blocks.values())
    float_out = _run(_with_outputs(source, names), x, threads)
    int8 = onnx.load(str(int8_onnx))
    int8_names = [dequantized(int8, name) for name in names]
    int8_out = _run(_with_outputs(int8, int8_names), x, threads, as_written=True)  # per block
    f_logits, q_logits = float_out[0], _run(int8_onnx.read_bytes(), x, threads)[0]  # the deployed int8 kernels
    return Int8Report(
        per_channel=per_channel,
        calibration=calibration,
        images=len(x),
        top1_float=float((f_logits.argmax(1) == y).mean()),
        top1_int8=float((q_logits.argmax(1) == y).mean()),
        agreement=float((f_logits.argmax(1) == q_logits.argmax(1)).mean()),
        logit_drift=tensor_diff(f_logits, q_logits).max_rel,
        blocks={b: tensor_diff(f, q).max_rel for b, q, f in zip(blocks, int8_out[1:], float_out[1:], strict=True)},
    )


def calibration_split(source: str, size: int, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(calibration images, held-out images, their labels, a description) from ``digits`` or an ImageFolder DIR:
    ``CALIBRATION_COUNT`` images drawn with a fixed seed from the training split, the test split held out."""
    from resnet_tools.train.data import load_dataset

    data = load_dataset(source, size=size)
    if data.in_channels != channels:
        raise ResNetError(
            f"--calibration {source}: its images have {data.in_channels} channel(s), the model takes {channels}"
        )
    pick = np.random.default_rng(SEED).choice(len(data.x_train), min(CALIBRATION_COUNT, len(data.x_train)), False)
    text = f"{len(pick)} images of the training split of {data.name} (seed {SEED})"
    return data.x_train[np.sort(pick)], data.x_test, data.y_test, text


def export_int8(
    request: ExportRequest, calibration: str, per_channel: bool, threads: int, say: Callable[[str], None] = print
) -> tuple[ExportResult, Int8Report]:
    """``resnet export --int8``: the float ONNX from torch's exporter, quantized with ``calibration``'s images,
    compared with the float model on the held-out images; written to ``request.out`` only when it did not collapse.
    Returns the float export's result and the INT8 report (a collapse raises, naming its worst block)."""
    import dataclasses

    from resnet_tools.core.files import atomic_write
    from resnet_tools.export.formats import parse_format
    from resnet_tools.export.run import export
    from resnet_tools.export.write import check_output

    if request.format != "onnx":
        raise ResNetError(f"--int8 goes with --format onnx (ONNX Runtime's static quantization), not {request.format}")
    check_output(Path(request.out), parse_format("onnx"), force=request.force)
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        exported = export(dataclasses.replace(request, out=str(float_path), backend="torch", force=False), say)
        channels, size = exported.input_shape[1], exported.input_shape[2]
        cal, x, y, text = calibration_split(calibration, size, channels)
        say(f"quantizing to INT8 (ONNX Runtime, QDQ, {'per-channel' if per_channel else 'per-tensor'}) on {text}")
        quantize(float_path, int8_path, cal, per_channel)
        report = compare(float_path, int8_path, x, y, per_channel, text, threads)
        if report.collapsed:
            raise Int8CollapseError(report.verdict(), report)
        data = int8_path.read_bytes()
        atomic_write(request.out, lambda fh: fh.write(data))  # only one that held its accuracy; never half a file
    exported.out = Path(request.out)
    return exported, report


class Int8CollapseError(ResNetError):
    """An INT8 model that lost its float model's predictions; ``report`` says where."""

    def __init__(self, message: str, report: Int8Report) -> None:
        super().__init__(message)
        self.report = report
