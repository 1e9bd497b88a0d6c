"""How an INT8 model computes against its float source on held-out real images, the bounds that call it a
collapse, and the calibration images (seeded, from the training split; the test split held out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from resnet_spec.errors import ResNetError
from resnet_tools.core.diffs import tensor_diff

#: Below this argmax agreement with the float model on held-out images, an INT8 artifact is refused (a collapse).
MIN_AGREEMENT = 0.99
#: ... and below this top-1, in points, under the float model's.
MAX_TOP1_DROP = 0.5
CALIBRATION_COUNT = 128  # images drawn (seeded) from the calibration set's training split
SEED = 0


@dataclass
class Int8Report:
    """One INT8 path's model against the float model it came from, on held-out images."""

    path: str  # the INT8 path (onnxruntime, pt2e, paddle-ptq, tflite)
    backend: str  # the framework whose float model it quantized
    scheme: str  # weights per channel or per tensor, as the path did it
    calibration: str  # where the calibration images came from, and how many
    images: int  # held-out images compared
    top1_float: float
    top1_int8: float
    agreement: float  # share of images whose argmax is the same
    logit_drift: float  # max |int8 - float| / max |float| over the logits
    blocks: dict[str, float] = field(default_factory=dict)  # block -> the same relative drift of its output
    file_vs_memory: float = 0.0  # the written artifact's logits in its runtime against the quantized model's
    speed: dict[str, Any] = field(default_factory=dict)  # float and INT8 img/s in the same runtime, side by side

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
            f"INT8 collapse ({self.path}): {head} (needs agreement >= {MIN_AGREEMENT:.0%} and top-1 within "
            f"{MAX_TOP1_DROP} points); the block that drifts most is {self.worst_block} "
            f"({self.blocks.get(self.worst_block, 0):.1e})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worst_block": self.worst_block, "collapsed": self.collapsed}


def measure(
    path: str, backend: str, scheme: str, calibration: str, y: np.ndarray,
    float_out: dict[str, np.ndarray], int8_out: dict[str, np.ndarray],
) -> Int8Report:  # fmt: skip
    """The report from both models' logits and residual blocks' outputs (``layer1.0`` ...) on the same images."""
    f, q = float_out["logits"], int8_out["logits"]
    blocks = [b for b in float_out if b.startswith("layer") and b in int8_out]
    return Int8Report(
        path=path,
        backend=backend,
        scheme=scheme,
        calibration=calibration,
        images=len(y),
        top1_float=float((f.argmax(1) == y).mean()),
        top1_int8=float((q.argmax(1) == y).mean()),
        agreement=float((f.argmax(1) == q.argmax(1)).mean()),
        logit_drift=tensor_diff(f, q).max_rel,
        blocks={b: tensor_diff(float_out[b], int8_out[b]).max_rel for b in blocks},
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


class Int8CollapseError(ResNetError):
    """An INT8 model that lost its float model's predictions; ``report`` says where."""

    def __init__(self, message: str, report: Int8Report) -> None:
        super().__init__(message)
        self.report = report
