"""INT8 deployment: each framework's post-training INT8 path and ONNX Runtime's, calibrated on real images and
checked against the float model on held-out images (top-1, argmax agreement, logit drift, every block's drift), so
that a collapse is caught, and traced to the block that drifts most, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from resnet_tools.export.int8.report import (
    MAX_TOP1_DROP,
    MIN_AGREEMENT,
    Int8CollapseError,
    Int8Report,
    calibration_split,
)

if TYPE_CHECKING:
    from resnet_tools.export.run import ExportRequest

__all__ = ["MAX_TOP1_DROP", "MIN_AGREEMENT", "Int8CollapseError", "Int8Report", "calibration_split", "export_int8"]


def export_int8(
    request: ExportRequest, calibration: str, per_channel: bool, threads: int, say: Callable[[str], None] = print
) -> Int8Report:
    """``resnet export --int8``: the INT8 path that writes ``request.format``, run on the checkpoint's weights with
    ``calibration``'s images, checked on the held-out images; written to ``request.out`` only when it did not
    collapse (a collapse raises, naming its worst block)."""
    from pathlib import Path

    from resnet_spec.spec import get_preprocessing
    from resnet_tools.core.files import publish, staged
    from resnet_tools.export.formats import parse_format
    from resnet_tools.export.int8.paths import load_for, path_for_format, run_path
    from resnet_tools.export.run import check_input
    from resnet_tools.export.write import MARK, check_output

    path = path_for_format(request.format)
    out = Path(request.out)
    check_output(out, parse_format(request.format), force=request.force)
    spec, weights = load_for(request.ckpt, [path], request.model, request.sha256)
    shape = request.input_shape or (1, spec.in_channels, *(get_preprocessing(spec.preprocessing).crop,) * 2)
    check_input(shape, spec)
    cal, x, y, text = calibration_split(calibration, shape[2], spec.in_channels)
    say(f"quantizing {spec.name} to INT8 with {path.name} ({path.backend}'s float model) on {text}")
    with staged(out) as made:  # published only if it held its accuracy; never half a file or folder
        report = run_path(path, spec, weights, cal, x, y, text, per_channel, threads, made, request.verbose)
        if report.collapsed:
            raise Int8CollapseError(report.verdict(), report)
        if made.is_dir():
            (made / MARK).write_text("written by resnet export --int8; --force may replace this folder\n")
        publish(made, out)
    return report
