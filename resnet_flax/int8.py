"""Flax's own post-training INT8 path: none is installable here. JAX has no calibrated static INT8 flow of its own
(AQT trains with quantization; ``jax2tf`` then TFLite's converter is Keras' path, ``resnet_keras.int8``); Flax
weights reach INT8 through conversion to another framework (the same weights, lossless)."""

from __future__ import annotations

from typing import Any

import numpy as np

from resnet_spec.errors import ResNetError

#: This framework's own INT8 paths: none.
PATHS: dict[str, str] = {}


def quantize(model: Any, calibration: np.ndarray, path: str, per_channel: bool = True, threads: int = 2) -> Any:
    """Refused: Flax has no INT8 path here (convert the weights to torch, paddle or keras and quantize there)."""
    raise ResNetError(f"flax has no INT8 path ({path!r}); convert the weights to torch, paddle or keras first")
