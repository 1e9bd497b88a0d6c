"""Deployment artifacts written by Flax's own exporters: none yet.

jax.export (StableHLO) and a SavedModel/TFLite route through jax2tf are the paths a Flax user would take; they are
not built yet, so this backend's descriptor lists no exports and ``resnet export`` picks another backend's writer
(the weights convert losslessly).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from resnet_flax.model import ResNet
from resnet_spec.errors import ResNetError

#: The artifacts this backend writes: format -> what writes it (none yet).
ARTIFACTS: dict[str, str] = {}


def export_artifact(
    model: ResNet, fmt: str, path: str | Path, *, input_shape: tuple[int, ...], dynamic_batch: bool = False,
    opset: int | None = None,
) -> None:  # fmt: skip
    """Refused in one line: no Flax exporter is built yet."""
    raise ResNetError(f"flax writes no {fmt} artifact yet; export with --backend torch, paddle or keras")


def artifact_runner(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Refused in one line: no Flax artifact format exists yet."""
    raise ResNetError(f"flax runs no {fmt} artifact yet")
