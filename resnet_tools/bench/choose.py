"""``resnet choose``: which backend to pick for a task, measured on this machine within a time budget.

Each installed backend's best paths for the task (its descriptor's ``best_paths``) are timed by the same worker
processes as ``resnet bench``, one backend after the other, until the budget is spent; the backends are then ranked
by images/s, with the trade-offs in words and the deployment targets each can reach with proved parity.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from resnet_spec.errors import ResNetError
from resnet_tools.bench.rows import Row
from resnet_tools.bench.runner import WorkerTimeoutError, machine_info, run_bench
from resnet_tools.core.backends import descriptor, known_backends

TASKS = ("train", "serve", "convert")
#: What each task measures by default: (mode of resnet bench, batch, image size). Training at 112x112 keeps a
#: ResNet-50 step of every backend within a 3-minute budget on 2 cores; serving is timed at batch 1 (latency).
DEFAULTS = {"train": ("train", 16, 112), "serve": ("eval", 1, 224), "convert": ("eval", 1, 224)}
#: A backend is started only while this share of the budget is left (its compile and first steps take time).
START_SHARE = 0.15


@dataclass
class Pick:
    """One backend's best measured path for the task, or why it has none."""

    backend: str
    path: str = ""
    images_per_s: float = 0.0
    latency_ms: float = 0.0
    spread: float = 0.0  # p90 / median of the timed calls: the noise of this figure
    peak_mb: float = 0.0
    one_off_s: float = 0.0
    targets: list[str] = field(default_factory=list)  # export formats with a parity check (resnet export --verify)
    missing: str = ""  # not installed: the pip command that installs it
    skipped: str = ""  # installed but not measured: why


@dataclass
class Choice:
    """The ranking of ``resnet choose`` and what it was measured on."""

    task: str
    device: str
    model: str
    batch: int
    size: int
    budget_s: float
    elapsed_s: float
    date: str
    machine: dict[str, Any]
    picks: list[Pick]  # ranked: fastest first, then the unmeasured
    rows: list[dict[str, Any]]  # every bench row timed
    advice: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(
    task: str,
    device: str = "cpu",
    model: str = "resnet50",
    budget_s: float = 180.0,
    threads: int = 2,
    batch: int | None = None,
    size: int | None = None,
    backends: list[str] | None = None,
    on_row: Callable[[Row], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Choice:
    """Time each backend's best paths for ``task`` on ``device`` and rank them (see the module's docstring)."""
    if task not in TASKS:
        raise ResNetError(f"--task {task!r}: choose one of {', '.join(TASKS)}")
    mode, default_batch, default_size = DEFAULTS[task]
    batch, size = batch or default_batch, size or default_size
    start = clock()
    picks: list[Pick] = []
    rows: list[Row] = []
    for name in backends or known_backends():
        d = descriptor(name)
        pick = Pick(name, targets=sorted(d.exports))
        picks.append(pick)
        if importlib.util.find_spec(d.module) is None:
            pick.missing = f"pip install 'resnet-xf[{d.extra}]'"
            continue
        if task == "convert":
            continue  # nothing to time: what each framework reads, writes and exports is listed
        paths = d.best_paths.get(f"{device} {task}", ())
        left = budget_s - (clock() - start)
        if not paths:
            pick.skipped = f"resnet bench has no {device} {task} path for {name}"
            continue
        if left < START_SHARE * budget_s:
            pick.skipped = f"not measured: the budget ({budget_s:.0f} s) was spent before its turn"
            continue
        try:
            result = run_bench(
                [model], [name], [batch], threads=threads, mode=mode, size=size, repeats=3, min_time=0.0,
                paths=",".join(paths), device=device, official=False, on_row=on_row, timeout_s=left,
            )  # fmt: skip
        except WorkerTimeoutError:
            pick.skipped = f"not finished within the {left:.0f} s of the budget left (its compile and first steps)"
            continue
        rows += result.rows
        timed = [r for r in result.rows if not r.error and r.images_per_s > 0]
        if not timed:
            errors = "; ".join(r.error for r in result.rows if r.error)
            pick.skipped = f"its paths failed: {errors[:160]}" if errors else "no path ran"
            continue
        best = max(timed, key=lambda r: r.images_per_s)
        pick.path, pick.images_per_s, pick.latency_ms = best.path, best.images_per_s, best.latency_ms_median
        pick.spread, pick.one_off_s = best.spread, best.one_off_s
        pick.peak_mb = best.peak_gpu_mb if device == "gpu" else best.peak_rss_mb
    picks.sort(key=lambda p: (-p.images_per_s, bool(p.missing)))
    machine = machine_info()  # it records the day
    return Choice(
        task, device, model, batch, size, budget_s, clock() - start, machine["date"], machine, picks,
        [r.as_dict() for r in rows], advice(task, picks, model),
    )  # fmt: skip


def advice(task: str, picks: list[Pick], model: str) -> list[str]:
    """The trade-offs in words, one line per backend, against the fastest measured one."""
    measured = [p for p in picks if p.images_per_s > 0]
    lines = []
    verb = "trains" if task == "train" else "serves"
    for p in picks:
        if p.missing:
            lines.append(f"{p.backend}: not installed ({p.missing})")
        elif p.skipped:
            lines.append(f"{p.backend}: {p.skipped}")
        elif task == "convert":
            lines.append(f"{p.backend}: reads and writes its own files; exports {', '.join(p.targets) or 'none'}")
        else:
            head = f"{p.backend}: {p.path} {verb} {model} at {p.images_per_s:.1f} img/s"
            best = measured[0]
            if p is best:
                lines.append(f"{head}, the fastest here ({p.latency_ms:.0f} ms a batch, {p.peak_mb:.0f} MB)")
            else:
                ratio = best.images_per_s / p.images_per_s
                lines.append(f"{head}: {ratio:.1f}x slower than {best.backend}'s {best.path} on this machine")
        if task != "train" and p.targets and not p.missing:
            lines[-1] += f"; deploys to {', '.join(p.targets)} with a parity check"
    return lines
