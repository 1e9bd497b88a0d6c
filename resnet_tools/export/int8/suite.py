"""``resnet parity --targets int8``: one checkpoint through every INT8 path installed here, side by side: each
artifact against its float source on held-out real images (top-1, argmax agreement, logit drift, every block's
drift) and, measured in the same run, its speed against the same format's float artifact in the same runtime."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnet_spec.errors import ResNetError
from resnet_tools.export.int8.paths import Int8Path, load_for, run_path
from resnet_tools.export.int8.report import Int8Report, calibration_split


def int8_parity(
    ckpt: str, calibration: str, paths: list[Int8Path], *, per_channel: bool = True, threads: int = 2,
    speed: bool = True, size: int | None = None, model: str | None = None, verbose: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """The run's record: its day, machine, versions, model, calibration and one report per path (collapses
    included: they are results here, nothing is deployed)."""
    from resnet_spec.spec import get_preprocessing
    from resnet_tools.core import dated
    from resnet_tools.core.backends import descriptors
    from resnet_tools.export.formats import FORMATS

    spec, weights = load_for(ckpt, paths, model)
    side = size or get_preprocessing(spec.preprocessing).crop
    cal, x, y, text = calibration_split(calibration, side, spec.in_channels)
    reports: list[Int8Report] = []
    failed: list[dict[str, str]] = []
    for path in paths:
        say(f"{path.name}: quantizing {spec.name} ({path.backend}'s float model) on {text}")
        with tempfile.TemporaryDirectory(prefix="resnet_int8_") as tmp:
            artifact = Path(tmp) / f"int8{FORMATS[path.format].suffix}"
            try:
                reports.append(run_path(path, spec, weights, cal, x, y, text, per_channel, threads,
                                        artifact, verbose, speed))  # fmt: skip
            except ResNetError as exc:  # one path's failure (a quantizer's error, Keras not on TF) is a result
                failed.append({"path": path.name, "backend": path.backend, "error": str(exc)})
                say(f"{path.name}: {exc}")
                continue
        say(f"{path.name}: {reports[-1].verdict()}")
    table = descriptors()
    dists = [table[b].distribution for b in dict.fromkeys(p.backend for p in paths)]
    return {
        "date": dated.today(),
        "machine": platform.platform(),
        "cores": len(os.sched_getaffinity(0)),
        "versions": dated.versions(*dists, "onnxruntime", "torchao", "tensorflow-cpu"),
        "model": spec.name,
        "input": f"{spec.in_channels}x{side}x{side}",
        "weights": ckpt,
        "calibration": text,
        "threads": threads,
        "reports": [r.as_dict() for r in reports],
        "failed": failed,
    }
