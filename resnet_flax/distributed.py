"""Data-parallel training on JAX's own sharding, one process with N devices (GPUs, or host devices on the CPU:
``XLA_FLAGS=--xla_force_host_platform_device_count=N``).

The model's variables and the optimizer state are replicated on every device, each global batch is sharded over
them along the batch axis, and the one compiled train step (``nnx.jit``) computes the loss, the gradients and the
BN statistics over the global batch: XLA inserts the all-reduces (the mean of a sharded axis is global). So this
engine is synchronised BN, always, as Keras' on JAX: its single-process reference is the plain full-batch
``Trainer.step``. Several processes (``resnet train --nnodes``) are not built for Flax yet: refused in one line.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from resnet_flax.model import ResNet
from resnet_flax.runtime import jax_device
from resnet_flax.training import Trainer, Tree
from resnet_spec.errors import ResNetError
from resnet_spec.optim import OptimizerConfig


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    """(process index, process count): (0, 1). ``timeout_s`` is unused: one process has no peer to wait for."""
    if os.environ.get("RESNET_JAX_COORDINATOR"):
        raise ResNetError("flax's data-parallel engine runs one process with several devices; --nnodes > 1 is not "
                          "built for flax yet (use --backend keras, torch or paddle)")  # fmt: skip
    jax_device(device)  # one line now if there is no such device
    return 0, 1


def shutdown() -> None:
    """Nothing to shut down: one process."""


class DataParallelTrainer(Trainer):
    """A :class:`Trainer` whose step shards each batch over every device of its kind; the variables and the
    optimizer state live replicated on all of them."""

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu", sync_bn: bool = False) -> None:
        kind = "gpu" if device in ("gpu", "cuda") else "cpu"
        self.mesh = Mesh(np.array(jax.devices(kind)), ("batch",))
        replicated = NamedSharding(self.mesh, PartitionSpec())
        nnx.update(model, jax.device_put(nnx.state(model), replicated))  # before the optimizer state is made
        super().__init__(model, config, device=device)
        self.batch = NamedSharding(self.mesh, PartitionSpec("batch"))
        self.replicas = 0  # how many devices the last batch was sharded over (measured, not assumed)

    def loss_and_grads(self, inp: np.ndarray, labels: np.ndarray) -> tuple[Any, Tree]:
        if inp.shape[0] % self.mesh.size:
            raise ResNetError(f"a batch of {inp.shape[0]} does not split over {self.mesh.size} devices")
        x, y = jax.device_put(inp, self.batch), jax.device_put(labels, self.batch)
        self.replicas = len(x.sharding.device_set)
        return super().loss_and_grads(x, y)


def mean_over_replicas(value: float) -> float:
    """The loss is already the global batch's: one process computes it over every device's shard."""
    return value
