"""Data-parallel training on torch's own engine: ``DistributedDataParallel`` over gloo (CPU) or NCCL (GPU).

Each process is one replica. It runs its shard of every global batch with its own BN batch statistics
(or synchronised ones with ``sync_bn``), DDP averages the gradients during backward, and every replica
applies the same update. The BN running statistics are rank 0's, because DDP broadcasts rank 0's buffers
before each forward. ``Trainer.step_shards`` computes the same step in one process.

The process group comes from the environment that ``torchrun`` (or ``resnet train --nproc``) sets:
``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``.
"""

from __future__ import annotations

import datetime

import torch
from torch.nn.parallel import DistributedDataParallel

from resnet_spec.optim import OptimizerConfig
from resnet_torch.model import ResNet
from resnet_torch.training import Trainer


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    """Join the process group (gloo on CPU, NCCL on GPU); (rank, world size). A peer that does not come
    within ``timeout_s``, or dies mid-collective, is an error, not a hang."""
    backend = "nccl" if device in ("gpu", "cuda") else "gloo"
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def shutdown() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class DataParallelTrainer(Trainer):
    """A :class:`Trainer` whose forward runs through ``DistributedDataParallel``; ``sync_bn`` converts the BN
    layers to ``SyncBatchNorm`` (statistics over the global batch) first."""

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu", sync_bn: bool = False) -> None:
        if sync_bn:
            spec = model.spec
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[assignment]
            model.spec = spec
        super().__init__(model, config, device=device)
        gpu = self.device == "cuda"
        self.replica = DistributedDataParallel(
            self.model, device_ids=[self.device] if gpu else None, broadcast_buffers=True
        )

    @property
    def replicas(self) -> int:
        """How many replicas computed each step (the process group's size)."""
        return torch.distributed.get_world_size()

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return self.replica(inp)  # type: ignore[no-any-return]


def mean_over_replicas(value: float) -> float:
    """The mean of a number over all replicas (the global batch's loss from each shard's)."""
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t.item()) / torch.distributed.get_world_size()
