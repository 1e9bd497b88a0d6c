"""Data-parallel training on a framework's own engine: ``resnet train --nproc N`` runs N replicas, each
with its shard of every global batch (``resnet_<backend>.distributed`` holds each framework's engine).

- torch and paddle: N processes joined in the framework's process group. The launcher sets the environment
  their launchers set (torch: ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``;
  paddle: ``PADDLE_TRAINER_ID``, ``PADDLE_TRAINERS_NUM``, ``PADDLE_TRAINER_ENDPOINTS``,
  ``PADDLE_CURRENT_ENDPOINT``, ``PADDLE_MASTER``), so ``torchrun --nproc-per-node N -m
  resnet_tools.train.parallel JOB.json`` and ``python -m paddle.distributed.launch --nproc_per_node N
  resnet_tools/train/parallel.py JOB.json`` run the same worker (paddle's launcher takes a script path).
- Keras: one process on JAX with N devices (``keras.distribution.DataParallel``); on the CPU the N devices
  are host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``).

A job (:func:`make_job`) starts from a checkpoint (weights, and the optimizer state when resuming)
with the step and the optimizer settings beside it; rank 0 writes a training checkpoint, atomically, at the
end and every ``save_every`` steps. This module is the worker; the launcher (``train/launcher.py``) starts the
group, stops it when a worker fails, and restarts it from the last complete checkpoint when asked to.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from resnet_tools.train.engines import (
    ATTEMPT_ENV,
    FAULT_ENV,
    check_port,
    engine_of,
    free_port,
    make_job,
    processes,
    rank_env,
)
from resnet_tools.train.launcher import Nodes, launch

__all__ = [
    "FAULT_ENV",
    "Nodes",
    "check_port",
    "engine_of",
    "free_port",
    "launch",
    "make_job",
    "processes",
    "rank_env",
    "worker",
]


def worker(job_path: str) -> int:
    """One replica: join the process group, train on this rank's shard of every global batch, and (rank 0)
    write the checkpoint and the report."""
    from resnet_spec.optim import OptimizerConfig
    from resnet_tools.checkpoints.convert import resolve_spec
    from resnet_tools.checkpoints.formats import FORMATS, read_checkpoint
    from resnet_tools.core.backends import load_backend, load_submodule, use_cpu_cores
    from resnet_tools.core.files import atomic_write
    from resnet_tools.train.checkpoint import TrainingState, save_training_checkpoint
    from resnet_tools.train.data import batches, load_dataset

    job = json.loads(Path(job_path).read_text())
    engine_of(job["backend"])
    mod = load_backend(job["backend"])
    use_cpu_cores({job["backend"]: mod})  # paddle: the threads the launcher gave this process, not one
    engine = load_submodule(job["backend"], "distributed")
    rank, world = engine.init_from_env(job.get("device", "cpu"), job.get("timeout", 60.0))
    stack = contextlib.ExitStack()  # rank 0's record log, closed however the run ends
    try:
        ckpt = read_checkpoint(Path(job["start"]), FORMATS["safetensors"])  # weights (+ optimizer state)
        spec = resolve_spec(ckpt, ckpt.metadata.get("model"))
        config = OptimizerConfig(**{**job["optimizer"], "betas": tuple(job["optimizer"]["betas"])})
        data = load_dataset(job["data"], size=job["size"])
        model = mod.import_weights(mod.create_model(spec, dtype=job["dtype"]), ckpt.weights)
        trainer = engine.DataParallelTrainer(model, config, device=job.get("device", "cpu"),
                                             sync_bn=job.get("sync_bn", False))  # fmt: skip
        if ckpt.optimizer:
            trainer.import_state(ckpt.optimizer, steps=job["step"])
        order = batches(len(data.y_train), job["batch"], job["seed"], start=job["step"])
        fault = os.environ.get(FAULT_ENV, "") if os.environ.get(ATTEMPT_ENV, "0") == "0" else ""
        records: list[dict[str, Any]] = []
        log = stack.enter_context(Path(job["records"]).open("a")) if rank == 0 and job.get("records") else None  # noqa: SIM115 (closed by the stack)
        run = {"run_id": job.get("run_id", ""), "backend": job["backend"], "nproc": job["nproc"],
               "replicas": trainer.replicas, "dtype": job["dtype"],
               "data": data.name, "seed": job["seed"], "batch": job["batch"], "size": job["size"]}  # fmt: skip
        for i in range(job["steps"]):
            if fault == f"{rank}:{job['step'] + i}":
                os.kill(os.getpid(), signal.SIGKILL)  # a killed worker, for the tests
            shard = np.array_split(next(order), world)[rank]
            lr = config.lr_at(job["step"] + i)
            began = time.perf_counter()
            out = trainer.step(data.x_train[shard].astype(job["dtype"]), data.y_train[shard], lr)
            seconds = time.perf_counter() - began  # this rank's step, gradient all-reduce included
            records.append({"step": job["step"] + i, "lr": lr, "loss": engine.mean_over_replicas(out["loss"]),
                            "grad_norm": out["grad_norm"], "seconds": seconds})  # fmt: skip
            done = job["step"] + i + 1
            if log is not None:
                log.write(json.dumps(records[-1]) + "\n")
                log.flush()
            every = job.get("save_every", 0)
            if rank == 0 and every and job.get("save") and done % every == 0 and i + 1 < job["steps"]:
                run["replicas"] = trainer.replicas
                state = TrainingState(
                    spec, mod.export_weights(trainer.model), trainer.export_state(), done, config, run
                )
                save_training_checkpoint(job["save"], state)
        if rank == 0:
            run["replicas"] = trainer.replicas
            if job.get("save"):
                state = TrainingState(spec, mod.export_weights(trainer.model), trainer.export_state(),
                                      job["step"] + job["steps"], config, run)  # fmt: skip
                save_training_checkpoint(job["save"], state)
            report = json.dumps({"records": records, "world": world, "replicas": trainer.replicas}).encode()
            atomic_write(job["report"], lambda fh: fh.write(report))
    finally:
        stack.close()
        engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
