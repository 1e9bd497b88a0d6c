"""What ``resnet train`` is asked to do, as a library call takes it (:mod:`run` carries it out, :mod:`checks`
checks it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainRequest:
    """What to train, as ``resnet train``'s flags say it (None: the default, or the resumed run's value)."""

    model: str | None = None
    backends: list[str] = field(default_factory=lambda: ["torch"])
    data: str | None = None
    size: int | None = None
    stem: str = "cifar"
    steps: int | None = None
    epochs: int | None = None
    batch: int | None = None
    optimizer: str | None = None
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eps: float = 1e-8
    schedule: str = "cosine"
    step_size: int | None = None
    gamma: float = 0.1
    dtype: str | None = None
    seed: int | None = None
    save: str | None = None
    save_every: int | None = None  # None: only at the end (given, at least 1, with --save)
    resume: str | None = None
    nproc: int = 1
    sync_bn: bool = False
    port: int | None = None
    timeout: float = 120.0
    max_restarts: int = 0  # --nproc: restarts after a failed worker, from the last --save-every checkpoint
    nnodes: int = 1
    node_rank: int = 0
    master: str | None = None  # node 0's HOST:PORT (several nodes)
    reshard: bool = False  # resume on another world size (per-replica BN statistics then come from other shards)

    @property
    def parallel(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1
