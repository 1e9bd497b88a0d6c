"""A benchmark row: what a worker process measures and prints as one JSON line, plus what the runner
derives once every backend has reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """One benchmark row: a backend, model, execution path and implementation at one batch size."""

    backend: str
    model: str
    path: str
    implementation: str  # "ours" or the official zoo's name
    batch: int
    mode: str
    threads: int
    images_per_s: float = 0.0
    latency_ms_median: float = 0.0
    latency_ms_p90: float = 0.0
    latency_ms_min: float = 0.0
    latency_ms_max: float = 0.0
    spread: float = 0.0  # p90 / median: > 1.2 means the machine was noisy during this row
    samples: int = 0
    one_off_s: float = 0.0  # build + first call (trace / compile / save+load)
    peak_rss_mb: float = 0.0
    gflops: float = 0.0  # achieved (forward MACs x 2; train ~ 3x forward)
    device: str = "cpu"
    precision: str = "fp32"  # math precision of the path: fp32, tf32, bf16, fp16 (selects the peak)
    peak_gpu_mb: float = 0.0  # GPU rows: peak device memory of the implementation (see bench_gpu)
    error: str = ""
    notes: list[str] = field(default_factory=list)
    # Derived by the runner once every backend has reported (resnet_tools.bench.runner.add_derived):
    peak_share: float = 0.0  # achieved GFLOP/s over the measured peak of the row's precision
    noisy: bool = False  # spread > NOISY_SPREAD
    ours_over_official: float | None = None  # time ours / official, same backend, model, path, batch, mode

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """A row as the worker printed it (JSON); unknown keys are an error, not silently dropped."""
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
