"""What ``train`` checks before anything runs, one line per problem: the flags alone, the nodes, the world size
of a resumed run, the hyperparameters; and what a resumed run carries over from its record."""

from __future__ import annotations

import math
from typing import Any

from resnet_tools.core.errors import UsageError
from resnet_tools.train.checkpoint import TrainingState
from resnet_tools.train.request import TrainRequest

#: A new run's defaults for what a training checkpoint records; a resumed run takes the recorded values.
RUN_DEFAULTS: dict[str, Any] = {"data": "digits", "size": 32, "batch": 64, "dtype": "float32", "seed": 0}


def continue_run(r: TrainRequest, resumed: TrainingState | None) -> list[str]:
    """Fill what the user did not give: the resumed run's recorded values (a new run: the defaults), and the
    steps the resumed run has left. Returns the flags that override the record, to be printed."""
    record = resumed.run if resumed is not None else {}
    overridden = []
    for key, default in RUN_DEFAULTS.items():
        given, recorded = getattr(r, key), record.get(key)
        if given is None:
            setattr(r, key, recorded if recorded is not None else default)
        elif recorded is not None and given != recorded:
            overridden.append(f"--{key} {given} (the run had {recorded})")
    if resumed is not None and r.steps is None and r.epochs is None:
        left = resumed.config.total_steps - resumed.step
        if left < 1:
            raise UsageError(
                f"--resume {r.resume}: that run is complete ({resumed.step} of {resumed.config.total_steps} "
                f"steps); give --steps N to train on"
            )
        r.steps = left
    return overridden


def check_request(r: TrainRequest) -> None:
    """One line per problem, before any data is read or any framework imported."""
    if r.steps is not None and r.epochs is not None:
        raise UsageError("give --steps or --epochs, not both")
    if r.nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {r.nproc}")
    if r.port is not None and not 1 <= r.port <= 65535:
        raise UsageError(f"--port must be a TCP port, 1..65535, got {r.port}")
    if not math.isfinite(r.timeout) or r.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {r.timeout}")
    assert r.batch is not None
    check_nodes(r)
    if r.parallel:
        from resnet_tools.train.parallel import check_port, engine_of

        if len(r.backends) != 1:
            raise UsageError("--nproc trains one framework: give --backend, not --backends")
        engine = engine_of(r.backends[0])
        replicas = r.nproc * r.nnodes
        if replicas > r.batch or r.batch % replicas:
            raise UsageError(f"--batch {r.batch} does not split into {replicas} equal shards (--nproc x --nnodes)")
        if r.port is not None:
            check_port(r.port)
        if r.sync_bn and not engine.cpu_sync_bn:  # --nproc runs on the CPU
            raise UsageError(
                f"--sync-bn needs GPUs ({r.backends[0]}'s SyncBatchNorm); on the CPU each replica keeps its BN "
                f"statistics"
            )
    for flag, value in (("--batch", r.batch), ("--size", r.size), ("--steps", r.steps), ("--epochs", r.epochs),
                        ("--save-every", r.save_every)):  # fmt: skip
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if r.save_every is not None and r.save is None:
        raise UsageError("--save-every N saves to the --save file every N steps: give --save FILE too")
    check_hyperparameters(r)


def check_nodes(r: TrainRequest) -> None:
    """--nnodes, --node-rank, --master and --max-restarts fit together: one line otherwise."""
    from resnet_tools.train.engines import parse_master

    if r.nnodes < 1 or not 0 <= r.node_rank < r.nnodes:
        raise UsageError(f"--node-rank {r.node_rank} is not one of the {r.nnodes} nodes (0..{r.nnodes - 1})")
    if r.nnodes > 1 and r.master is None:
        raise UsageError("--nnodes > 1 needs --master HOST:PORT, node 0's address, on every node")
    if r.master is not None:
        parse_master(r.master)
        if r.port is not None:
            raise UsageError("give --master HOST:PORT or --port, not both (--master names the rendezvous port)")
    if r.max_restarts < 0:
        raise UsageError(f"--max-restarts must be 0 or more, got {r.max_restarts}")
    if r.max_restarts and r.nnodes > 1:
        raise UsageError(
            "--max-restarts restarts one node's group; over several nodes use torchrun --max-restarts, whose "
            "rendezvous restarts every node together (docs/training.md)"
        )


def check_world(r: TrainRequest, resumed: TrainingState | None) -> None:
    """A resumed data-parallel run keeps its world size, unless --reshard: the global batches and their order do
    not depend on it (each is split into equal shards), but per-replica BN statistics come from the shards."""
    recorded = resumed.run.get("nproc") if resumed is not None else None
    if recorded is None or r.reshard:
        return
    if recorded != r.nproc * r.nnodes:
        raise UsageError(
            f"--resume {r.resume} was trained on {recorded} replicas, this run has {r.nproc * r.nnodes}: per-replica "
            f"BN statistics would come from other shards; give --nproc {recorded} (or --reshard to accept that)"
        )


def check_hyperparameters(r: TrainRequest) -> None:
    """Finite, in range: a NaN rate would write a NaN checkpoint, a negative one fails deep in a framework."""
    rules: list[tuple[str, float, bool, str]] = [
        ("--lr", r.lr, r.lr > 0, "a positive number"),
        ("--momentum", r.momentum, 0 <= r.momentum < 1, "in [0, 1)"),
        ("--weight-decay", r.weight_decay, r.weight_decay >= 0, "zero or positive"),
        ("--eps", r.eps, r.eps > 0, "a positive number"),
        ("--gamma", r.gamma, 0 < r.gamma <= 1, "in (0, 1]"),
    ]
    for flag, value, ok, what in rules:
        if not math.isfinite(value) or not ok:
            raise UsageError(f"{flag} must be {what}, got {value}")
    if r.step_size is not None and r.step_size < 1:
        raise UsageError(f"--step-size must be at least 1, got {r.step_size}")
