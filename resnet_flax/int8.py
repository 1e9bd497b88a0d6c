"""Flax's own post-training INT8 path: none here. Neither Flax nor JAX ships a calibrated post-training INT8 flow
with a CPU runtime that this project installs (Google's AQT library is a separate package, not wired in); Flax
weights reach INT8 through conversion to another framework (the same weights, lossless), then that framework's
path (``resnet export --int8``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from resnet_spec.errors import ResNetError

#: This framework's own INT8 paths: none.
PATHS: dict[str, str] = {}


def quantize(model: Any, calibration: np.ndarray, path: str, per_channel: bool = True, threads: int = 2) -> Any:
    """Refused: Flax has no INT8 path here (convert the weights to torch, paddle or keras and quantize there)."""
    raise ResNetError(f"flax has no INT8 path ({path!r}); convert the weights to torch, paddle or keras first")
