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
with the step and the optimizer settings beside it; rank 0 writes a training checkpoint, atomically.
A worker that fails or dies stops the others at once, and a run past its deadline is stopped; neither
leaves a half-written checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from resnet_spec.errors import ResNetError
from resnet_spec.frameworks import Engine
from resnet_tools.core.backends import descriptor, descriptors
from resnet_tools.core.errors import UsageError
from resnet_tools.core.threads import threads_env

#: Test-only fault injection: "RANK:STEP" makes that rank die (exit 9) before that step.
FAULT_ENV = "RESNET_PARALLEL_FAULT"


def engine_of(backend: str) -> Engine:
    """The backend's data-parallel engine (its descriptor's), checked to be usable here: one line otherwise."""
    found = descriptor(backend).engine
    if found is None:
        with_engine = [b for b, d in descriptors().items() if d.engine is not None]
        raise UsageError(f"--nproc needs a data-parallel engine; {backend} has none (known: {', '.join(with_engine)})")
    if found.needs and importlib.util.find_spec(found.needs[0]) is None:
        raise UsageError(f"--nproc with {backend}: {found.needs[0]} is not installed; {found.needs[1]}")
    return found


def check_engine(backend: str) -> None:
    engine_of(backend)


def processes(backend: str, nproc: int) -> int:
    """How many processes N replicas take: one per replica, or one with N devices (Keras on JAX)."""
    return engine_of(backend).processes(nproc)


def rank_env(backend: str, rank: int, nproc: int, ports: list[int]) -> dict[str, str]:
    """The environment the framework's own launcher gives process ``rank`` (``ports[0]``: the rendezvous)."""
    return engine_of(backend).rank_env(rank, nproc, ports)


def check_port(port: int) -> None:
    """One line when the rendezvous port is taken, before any worker starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"--port {port} is in use: pick another, or leave --port out for a free one") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_job(
    backend: str, start: str | Path, save: str | Path, config: Any, *, data: str = "digits", size: int = 32,
    batch: int = 32, steps: int = 1, step: int = 0, seed: int = 0, dtype: str = "float32", sync_bn: bool = False,
    timeout: float = 60.0,
) -> dict[str, Any]:  # fmt: skip
    """A job for :func:`launch` (or a framework's own launcher, with ``nproc`` and ``report`` added): train from
    the checkpoint ``start`` (weights, and the optimizer state when resuming at ``step``), write ``save``."""
    import dataclasses

    return {"backend": backend, "start": str(start), "step": step, "optimizer": dataclasses.asdict(config),
            "data": data, "size": size, "batch": batch, "steps": steps, "seed": seed, "dtype": dtype,
            "save": str(save), "sync_bn": sync_bn, "timeout": timeout}  # fmt: skip


def launch(job: dict[str, Any], nproc: int, *, port: int | None = None, timeout_s: float = 600.0) -> dict[str, Any]:
    """Run ``job`` on ``nproc`` local processes; rank 0's report (per-step records). Raises ResNetError with
    the failing rank's last error line, or on the deadline, after stopping every worker."""
    check_engine(job["backend"])
    if port is not None:
        check_port(port)
    ports = [port or free_port(), *(free_port() for _ in range(nproc))]
    count = processes(job["backend"], nproc)
    threads = max(1, len(os.sched_getaffinity(0)) // count)  # the cores, shared by the processes
    with tempfile.TemporaryDirectory(prefix="resnet-dp-") as tmp_name:
        tmp = Path(tmp_name)
        job_path, report = tmp / "job.json", tmp / "report.json"
        job_path.write_text(json.dumps({**job, "nproc": nproc, "report": str(report)}))
        procs, logs = [], []
        for rank in range(count):
            env = {**os.environ, **rank_env(job["backend"], rank, nproc, ports), **threads_env(threads)}
            log = (tmp / f"rank{rank}.log").open("wb")
            logs.append(log)
            cmd = [sys.executable, "-m", "resnet_tools.train.parallel", str(job_path)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                running = [p.poll() is None for p in procs]
                failed = [r for r, p in enumerate(procs) if p.returncode not in (None, 0)]
                if failed:
                    raise ResNetError(_first_failure(failed, count, tmp))
                if not any(running):
                    break
                if time.monotonic() > deadline:
                    raise ResNetError(f"the data-parallel run passed its deadline ({timeout_s:.0f} s) and was stopped")
                time.sleep(0.1)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()
        return json.loads(report.read_text())  # type: ignore[no-any-return]


def _first_failure(failed: list[int], nproc: int, tmp: Path) -> str:
    """The failure to report: a rank that died on its own before one that lost its peer (gloo's
    connection error in the survivor is the consequence, not the cause)."""
    lines = {r: _last_line(tmp / f"rank{r}.log") for r in failed}
    cause = sorted(failed, key=lambda r: ("gloo" in lines[r] or "onnection" in lines[r], r))[0]
    return f"rank {cause} of {nproc} failed: {lines[cause]}"


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "it exited without a message (killed?)"


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
    check_engine(job["backend"])
    mod = load_backend(job["backend"])
    use_cpu_cores({job["backend"]: mod})  # paddle: the threads the launcher gave this process, not one
    engine = load_submodule(job["backend"], "distributed")
    rank, world = engine.init_from_env(job.get("device", "cpu"), job.get("timeout", 60.0))
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
        fault = os.environ.get(FAULT_ENV, "")
        records = []
        for i in range(job["steps"]):
            if fault == f"{rank}:{i}":
                os._exit(9)  # a killed worker, for the tests
            shard = np.array_split(next(order), world)[rank]
            lr = config.lr_at(job["step"] + i)
            began = time.perf_counter()
            out = trainer.step(data.x_train[shard].astype(job["dtype"]), data.y_train[shard], lr)
            seconds = time.perf_counter() - began  # this rank's step, gradient all-reduce included
            records.append({"step": job["step"] + i, "lr": lr, "loss": engine.mean_over_replicas(out["loss"]),
                            "grad_norm": out["grad_norm"], "seconds": seconds})  # fmt: skip
        if rank == 0:
            run = {"backend": job["backend"], "nproc": job["nproc"], "replicas": trainer.replicas,
                   "dtype": job["dtype"], "data": data.name, "seed": job["seed"], "batch": job["batch"],
                   "size": job["size"]}  # fmt: skip
            if job.get("save"):
                state = TrainingState(spec, mod.export_weights(trainer.model), trainer.export_state(),
                                      job["step"] + job["steps"], config, run)  # fmt: skip
                save_training_checkpoint(job["save"], state)
            report = json.dumps({"records": records, "world": world, "replicas": trainer.replicas}).encode()
            atomic_write(job["report"], lambda fh: fh.write(report))
    finally:
        engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
