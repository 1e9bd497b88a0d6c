"""What the data-parallel launcher and worker know about an engine, read from the backend's descriptor: is there
one, is it usable here, how many processes N replicas take, the environment each rank gets; and the job a
launcher hands its workers."""

from __future__ import annotations

import dataclasses
import importlib.util
import socket
import uuid
from pathlib import Path
from typing import Any

from resnet_spec.frameworks import Engine, Rank
from resnet_tools.core.backends import descriptor, descriptors
from resnet_tools.core.errors import UsageError

#: Test-only fault injection: "RANK:STEP" makes that rank SIGKILL itself before that (global, 0-based) step, in
#: the first attempt only (a restarted group runs through).
FAULT_ENV = "RESNET_PARALLEL_FAULT"
#: Which attempt a worker belongs to (0: the first; the launcher counts restarts).
ATTEMPT_ENV = "RESNET_PARALLEL_ATTEMPT"


def engine_of(backend: str) -> Engine:
    """The backend's data-parallel engine (its descriptor's), checked to be usable here: one line otherwise."""
    found = descriptor(backend).engine
    if found is None:
        with_engine = [b for b, d in descriptors().items() if d.engine is not None]
        raise UsageError(f"--nproc needs a data-parallel engine; {backend} has none (known: {', '.join(with_engine)})")
    if found.needs and importlib.util.find_spec(found.needs[0]) is None:
        raise UsageError(f"--nproc with {backend}: {found.needs[0]} is not installed; {found.needs[1]}")
    return found


def processes(backend: str, nproc: int) -> int:
    """How many processes N replicas take on one node: one per replica, or one with N devices (Keras on JAX)."""
    return engine_of(backend).processes(nproc)


def rank_env(
    backend: str, rank: int, world: int, ports: list[int], *, local_rank: int | None = None,
    local_replicas: int | None = None, master: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """The environment the framework's own launcher gives process ``rank`` of ``world`` (``master``: the
    rendezvous ``host:port``, default ``127.0.0.1:ports[0]``; ``ports[1:]``: this node's endpoints)."""
    local = rank if local_rank is None else local_rank
    replicas = world if local_replicas is None else local_replicas
    where = master or f"127.0.0.1:{ports[0]}"
    return engine_of(backend).rank_env(Rank(rank, world, local, replicas, where, tuple(ports[1:]) or (ports[0],)))


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """One line when the rendezvous port is taken, before any worker starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise UsageError(f"--port {port} is in use: pick another, or leave --port out for a free one") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_master(text: str) -> tuple[str, int]:
    """``--master HOST:PORT`` -> (host, port); one line otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--master {text!r}: give HOST:PORT, the address of node 0 (e.g. 10.0.0.1:29500)")
    return host, int(port)


def make_job(
    backend: str, start: str | Path, save: str | Path, config: Any, *, data: str = "digits", size: int = 32,
    batch: int = 32, steps: int = 1, step: int = 0, seed: int = 0, dtype: str = "float32", sync_bn: bool = False,
    timeout: float = 60.0, save_every: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """A job for :func:`resnet_tools.train.launcher.launch` (or a framework's own launcher, with ``nproc`` and
    ``report`` added): train from the checkpoint ``start`` (weights, and the optimizer state when resuming at
    ``step``), write ``save`` (also every ``save_every`` steps, atomically). ``run_id`` names this run in every
    checkpoint it writes: a restart resumes only from its own run's file."""
    return {"run_id": uuid.uuid4().hex, "backend": backend, "start": str(start), "step": step,
            "optimizer": dataclasses.asdict(config),
            "data": data, "size": size, "batch": batch, "steps": steps, "seed": seed, "dtype": dtype,
            "save": str(save), "sync_bn": sync_bn, "timeout": timeout, "save_every": save_every}  # fmt: skip
