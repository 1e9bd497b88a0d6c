"""Data-parallel training on paddle's own engine: ``paddle.DataParallel`` over gloo (CPU) or NCCL (GPU).

Each process is one replica. It runs its shard of every global batch with its own BN batch statistics
(or synchronised ones with ``sync_bn``), ``DataParallel`` averages the gradients during backward, and every
replica applies the same update. The BN running statistics are each replica's own; rank 0's, the ones saved,
follow shard 0 only, as torch's do (DDP broadcasts rank 0's). ``Trainer.step_shards`` computes the same step
in one process.

The process group comes from the environment that ``python -m paddle.distributed.launch`` (or
``resnet train --nproc``) sets: ``PADDLE_TRAINER_ID``, ``PADDLE_TRAINERS_NUM``, ``PADDLE_TRAINER_ENDPOINTS``,
``PADDLE_CURRENT_ENDPOINT``, ``PADDLE_MASTER``.
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.distributed as dist

from resnet_paddle.model import ResNet
from resnet_paddle.runtime import paddle_device
from resnet_paddle.training import Trainer
from resnet_spec.optim import OptimizerConfig


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    """Join the process group (gloo on CPU, NCCL on GPU); (rank, world size). paddle has no rendezvous
    timeout to set: the launcher's deadline stops a run whose peer never comes."""
    paddle.set_device(paddle_device(device))
    dist.init_parallel_env()
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    """paddle's group needs no teardown: it ends with the process."""


class DataParallelTrainer(Trainer):
    """A :class:`Trainer` whose forward runs through ``paddle.DataParallel``; ``sync_bn`` converts the BN
    layers to ``SyncBatchNorm`` (statistics over the global batch) first."""

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu", sync_bn: bool = False) -> None:
        if sync_bn:
            spec = model.spec
            model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model.spec = spec
        super().__init__(model, config, device=device)
        self.replica = paddle.DataParallel(self.model)  # broadcasts rank 0's parameters and buffers once

    @property
    def replicas(self) -> int:
        """How many replicas computed each step (the process group's size)."""
        return dist.get_world_size()

    def forward(self, inp: paddle.Tensor) -> paddle.Tensor:
        return self.replica(inp)


def mean_over_replicas(value: float) -> float:
    """The mean of a number over all replicas (the global batch's loss from each shard's)."""
    if dist.get_world_size() < 2:  # paddle starts no group for one process
        return value
    t = paddle.to_tensor(np.array([value], dtype="float64"))
    dist.all_reduce(t)
    return float(t.numpy()[0]) / dist.get_world_size()
