"""Data-parallel training on this framework's own engine: not wired in yet.

The engine would be ``paddle.DataParallel`` over gloo (CPU) or NCCL (GPU), launched by
``python -m paddle.distributed.launch``.
``resnet train --nproc`` refuses this backend with one line (``resnet_tools.train.parallel.NOT_HERE``).
The names below match ``resnet_torch.distributed``, so the three backends keep the same files; until
the engine is wired in, each says so instead of training.
"""

from __future__ import annotations

from typing import Any, NoReturn

from resnet_spec.errors import ResNetError

ENGINE = "paddle.DataParallel over gloo (CPU) / NCCL (GPU), launched by python -m paddle.distributed.launch"


def _not_yet() -> NoReturn:
    raise ResNetError(f"data-parallel training is not wired in for this backend yet ({ENGINE}); torch's is")


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    _not_yet()


def shutdown() -> None:
    """Nothing to shut down: no process group was joined."""


def mean_over_replicas(value: float) -> float:
    _not_yet()


class DataParallelTrainer:
    """Not wired in yet: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _not_yet()
