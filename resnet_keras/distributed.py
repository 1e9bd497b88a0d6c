"""Data-parallel training on Keras' own engine: ``keras.distribution.DataParallel`` on JAX.

One process holds N devices (GPUs, or host devices on the CPU: ``XLA_FLAGS=
--xla_force_host_platform_device_count=N``). The variables are replicated on every device, each global
batch is sharded over them along the batch axis, and one jitted step computes the loss, the gradients and the
update; XLA inserts the all-reduces. JAX computes BN statistics over the global batch (the mean of a sharded
axis is global), so this engine is synchronised BN, always: its single-process reference is the plain
full-batch ``Trainer.step``. ``init_from_env`` must run before the model is built, so that its variables
are created replicated.

Over several processes (nodes: ``RESNET_JAX_COORDINATOR``, ``RESNET_JAX_PROCESSES``, ``RESNET_JAX_PROCESS_ID``,
set by ``resnet train --nnodes``), JAX's distributed runtime joins them (``keras.distribution.initialize``; CPU
collectives over gloo). Each process keeps its own copy of the variables; every step, its shard of the global
batch becomes its part of one global array over every process's devices, and one jitted step computes the
global loss, gradients and BN statistics (XLA's all-reduces cross the processes). Every process then applies
the same update to its copy, so the copies stay equal.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from resnet_keras.model import ResNet
from resnet_keras.training import Trainer
from resnet_spec.errors import ResNetError
from resnet_spec.optim import OptimizerConfig


def init_from_env(device: str = "cpu", timeout_s: float = 60.0) -> tuple[int, int]:
    """Spread the next models over every device JAX sees; (process index, process count): (0, 1) on one host.
    ``timeout_s`` is unused: one process has no peer to wait for."""
    if keras.backend.backend() != "jax":
        raise ResNetError(
            f"Keras' data-parallel engine here runs on JAX (KERAS_BACKEND=jax), not {keras.backend.backend()}"
        )
    import jax

    coordinator = os.environ.get("RESNET_JAX_COORDINATOR")
    if coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across CPU processes
        count, index = int(os.environ["RESNET_JAX_PROCESSES"]), int(os.environ["RESNET_JAX_PROCESS_ID"])
        keras.distribution.initialize(coordinator, count, index)
        return jax.process_index(), jax.process_count()  # variables stay local: see DataParallelTrainer
    devices = jax.devices("gpu" if device in ("gpu", "cuda") else "cpu")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return jax.process_index(), jax.process_count()


def shutdown() -> None:
    keras.distribution.set_distribution(None)


class DataParallelTrainer(Trainer):
    """A :class:`Trainer` whose loss and gradients come from one jitted step over the batch sharded on the
    distribution's devices (eager collectives on host devices can deadlock: measured on 2 cores)."""

    def __init__(self, model: ResNet, config: OptimizerConfig, *, device: str = "cpu", sync_bn: bool = False) -> None:
        super().__init__(model, config, device=device)
        import jax

        self.distribution = keras.distribution.distribution()
        self.processes = jax.process_count()
        if self.distribution is None and self.processes == 1:
            raise ResNetError("no Keras distribution is set: call init_from_env() before building the model")
        self._step: Any = jax.jit(jax.value_and_grad(self._loss, has_aux=True))
        self.replicas = 0  # how many devices the last batch was sharded over (measured, not assumed)

    def _loss(self, params: list, state: list, x: Any, labels: Any) -> tuple:
        logits, new_state = self.model.stateless_call(params, state, x, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        return loss, new_state

    def loss_and_grads(self, inp: np.ndarray, labels: np.ndarray) -> tuple:
        if self.processes > 1:
            return self._across_processes(inp, labels)
        layout = self.distribution.get_data_layout(inp.shape)
        x = keras.distribution.distribute_tensor(keras.ops.convert_to_tensor(inp), layout)
        y = keras.distribution.distribute_tensor(
            keras.ops.convert_to_tensor(labels), self.distribution.get_data_layout(labels.shape)
        )
        self.replicas = len(x.sharding.device_set)
        params = [v.value for v in self.model.trainable_variables]
        state = [v.value for v in self.model.non_trainable_variables]
        (loss, new_state), grads = self._step(params, state, x, y)
        for var, value in zip(self.model.non_trainable_variables, new_state, strict=True):
            var.assign(value)  # the BN moving statistics, as a stateful train-mode call writes them
        by_id = {id(v): g for v, g in zip(self.model.trainable_variables, grads, strict=True)}
        return loss, [by_id[id(v)] for v in self.variables]

    def _across_processes(self, inp: np.ndarray, labels: np.ndarray) -> tuple:
        """This process's shard as its part of one global batch over every process's devices; the variables
        enter as host arrays (the same in every process, so replicated), and the replicated results come back as
        this process's copy."""
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(jax.devices()), ("batch",))
        x = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("batch")), inp)
        y = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("batch")), labels)
        self.replicas = len(x.sharding.device_set)
        params = [np.asarray(v.value) for v in self.model.trainable_variables]
        state = [np.asarray(v.value) for v in self.model.non_trainable_variables]
        (loss, new_state), grads = self._step(params, state, x, y)

        def local(a: Any) -> Any:
            return a.addressable_data(0)  # a replicated global array: this process's copy

        for var, value in zip(self.model.non_trainable_variables, new_state, strict=True):
            var.assign(local(value))
        by_id = {id(v): local(g) for v, g in zip(self.model.trainable_variables, grads, strict=True)}
        return local(loss), [by_id[id(v)] for v in self.variables]


def mean_over_replicas(value: float) -> float:
    """The loss is already the global batch's: one process computes it over every device's shard."""
    return value
