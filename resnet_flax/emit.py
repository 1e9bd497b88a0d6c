"""``resnet convert --emit-code`` for Flax: not built yet (refused in one line, nothing written)."""

from __future__ import annotations

from resnet_spec.errors import ResNetError
from resnet_spec.model_spec import ModelSpec


def source(spec: ModelSpec, weights: str, assumptions: list[str]) -> str:
    """Refused in one line: the standalone Flax model file is not built yet."""
    raise ResNetError("--emit-code writes no Flax model file yet; emit torch, paddle or keras code")
