"""Data-parallel training on JAX's own sharding, one process with N devices (GPUs, or host devices on the CPU:
``XLA_FLAGS=--xla_force_host_platform_device_count=N``).

The model's variables and the optimizer state are replicated on every device, each global batch is sharded over
them along the batch axis, and the one compiled train step (``nnx.jit``) computes the loss, the gradients and the
BN statistics over the global batch: XLA inserts the all-reduces (the mean of a sharded axis is global). So this
engine is synchronised BN, always, as Keras' on JAX: its single-process reference is the plain full-batch
``Trainer.step``.

Over several processes (nodes: ``RESNET_JAX_COORDINATOR``, ``RESNET_JAX_PROCESSES``, ``RESNET_JAX_PROCESS_ID``,
set by ``resnet train --nnodes``), ``jax.distributed`` joins them (CPU collectives over gloo). Each process keeps
its own copy of the variables; every step, its shard of the global batch becomes its part of one global array over
every process's devices, and one compiled step computes the global loss, gradients and BN statistics (XLA's
all-reduces cross the processes). Every process then applies the same update to its copy, so the copies stay equal.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from resnet_flax.model import ResNet
from resnet_flax.runtime import cross_entropy, flat, jax_device
from resnet_flax.training import Trainer, Tree
from resnet_spec.errors import ResNetError
from resnet_spec.optim import OptimizerConfig


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    """(process index, process count): (0, 1) on one host; over several, after joining JAX's coordinator (waiting
    at most ``timeout_s`` for the other processes)."""
    coordinator = os.environ.get("RESNET_JAX_COORDINATOR")
    if coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across CPU processes
        count, index = int(os.environ["RESNET_JAX_PROCESSES"]), int(os.environ["RESNET_JAX_PROCESS_ID"])
        jax.distributed.initialize(coordinator, count, index, initialization_timeout=max(1, int(timeout_s)))
        return jax.process_index(), jax.process_count()
    jax_device(device)  # one line now if there is no such device
    return 0, 1


def shutdown() -> None:
    """Leave JAX's coordinator, if this process joined one."""
    if jax.process_count() > 1:
        jax.distributed.shutdown()


class DataParallelTrainer(Trainer):
    """A :class:`Trainer` whose step shards each batch over every device of its kind; the variables and the
    optimizer state live replicated on all of them."""

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu", sync_bn: bool = False) -> None:
        self.processes = jax.process_count()
        if self.processes > 1:  # every process's devices: the variables stay local (see _across_processes)
            self.mesh = Mesh(np.array(jax.devices()), ("batch",))
        else:
            kind = "gpu" if device in ("gpu", "cuda") else "cpu"
            self.mesh = Mesh(np.array(jax.devices(kind)), ("batch",))
            replicated = NamedSharding(self.mesh, PartitionSpec())
            nnx.update(model, jax.device_put(nnx.state(model), replicated))  # before the optimizer state is made
        super().__init__(model, config, device=device)
        self.batch = NamedSharding(self.mesh, PartitionSpec("batch"))
        self.replicas = 0  # how many devices the last batch was sharded over (measured, not assumed)
        self._global_step: Any = None

    def loss_and_grads(self, inp: np.ndarray, labels: np.ndarray) -> tuple[Any, Tree]:
        if self.processes > 1:
            return self._across_processes(inp, labels)
        if inp.shape[0] % self.mesh.size:
            raise ResNetError(f"a batch of {inp.shape[0]} does not split over {self.mesh.size} devices")
        x, y = jax.device_put(inp, self.batch), jax.device_put(labels, self.batch)
        self.replicas = len(x.sharding.device_set)
        return super().loss_and_grads(x, y)

    def _across_processes(self, inp: np.ndarray, labels: np.ndarray) -> tuple[Any, Tree]:
        """This process's shard as its part of one global batch over every process's devices; the variables
        enter as host arrays (the same in every process, so replicated), and the replicated results come back as
        this process's copy."""
        x = jax.make_array_from_process_local_data(self.batch, np.asarray(inp))
        y = jax.make_array_from_process_local_data(self.batch, np.asarray(labels))
        self.replicas = len(x.sharding.device_set)
        graphdef, state = nnx.split(self.model)
        if self._global_step is None:  # compiled once: the model's structure does not change
            self._global_step = jax.jit(functools.partial(_global_step, graphdef))
        loss, grads, new_state = self._global_step(jax.tree.map(np.asarray, state), x, y)

        def local(a: Any) -> Any:
            return a.addressable_data(0)  # a replicated global array: this process's copy

        nnx.update(self.model, jax.tree.map(local, new_state))  # the BN running statistics of the global batch
        return local(loss), {k: local(g) for k, g in flat(grads).items()}


def _global_step(graphdef: nnx.GraphDef[ResNet], state: nnx.State, x: jax.Array, y: jax.Array) -> tuple[Any, ...]:
    """The train-mode loss, the parameters' gradients and the model's new state (BN statistics) of one global
    batch; a pure function of host arrays, so every process runs it on its own copy."""

    def loss_fn(params: nnx.State, rest: nnx.State) -> tuple[jax.Array, nnx.State]:
        model = nnx.merge(graphdef, params, rest, copy=True)  # its Variables made in this trace, so BN may write them
        logits = model(x, train=True)
        loss = cross_entropy(logits, y)
        return loss, nnx.state(model)

    params, rest = state.split(nnx.Param, ...)
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
    return loss, grads, new_state


def mean_over_replicas(value: float) -> float:
    """The loss is already the global batch's: one process computes it over every device's shard."""
    return value
