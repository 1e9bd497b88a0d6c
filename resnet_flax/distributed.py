"""Data-parallel training on JAX's own sharding: not built yet.

This backend's descriptor has no engine, so ``resnet train --backend flax --nproc N`` is refused in one line
before anything starts; the names below exist so that every backend has the same files and public names.
"""

from __future__ import annotations

from resnet_flax.training import Trainer
from resnet_spec.errors import ResNetError

_NOT_YET = "flax has no data-parallel engine yet; train with --nproc 1, or with --backend torch, paddle or keras"


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    raise ResNetError(_NOT_YET)


def shutdown() -> None:
    """Nothing to shut down."""


class DataParallelTrainer(Trainer):
    """Refused in one line (no engine yet)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ResNetError(_NOT_YET)


def mean_over_replicas(value: float) -> float:
    """One process, one replica: the value itself."""
    return value
