"""``resnet bench``: speed and memory per backend, execution path and batch, ours next to the official zoo.

Each backend runs in its own worker process (``resnet_tools.bench.worker``) with every math library
pinned to the same thread count; ours and the official model of a path are timed interleaved.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resnet_spec.errors import ResNetError
from resnet_tools.bench.rows import Row
from resnet_tools.core import dated
from resnet_tools.core.backends import descriptor, descriptors

NOISY_SPREAD = 1.2


@dataclass
class BenchResult:
    machine: dict[str, Any]
    threads: int
    peak_gflops: float
    rows: list[Row] = field(default_factory=list)
    malloc: str = "kept"  # resnet_tools.bench.allocator mode of the workers
    device: str = "cpu"
    peaks: dict[str, float] = field(default_factory=dict)  # GPU: dense matmul GFLOP/s per precision
    peak_method: str = ""  # CPU: how the ceiling was measured (resnet_tools.bench.ceiling)
    sgemm_gflops: float | None = None  # CPU: numpy's SGEMM, shown beside the ceiling
    complete: bool = True  # False: the rows so far of a run still going (or cut off by a time limit)
    size: int = 224  # the images' side

    def as_dict(self) -> dict[str, Any]:
        method = (
            self.peak_method
            if self.device == "cpu"
            else "8192x8192x8192 matmul per precision (fp32 with TF32 off, tf32, bf16, fp16), best of 10"
        )
        return {
            "machine": self.machine,
            "device": self.device,
            "threads": self.threads,
            "peak_gflops": self.peak_gflops,
            "peaks": self.peaks or {"fp32": self.peak_gflops},
            "peak_method": method,
            "sgemm_gflops": self.sgemm_gflops,
            "malloc": self.malloc,
            "complete": self.complete,
            "size": self.size,
            "rows": [r.as_dict() for r in self.rows],
        }


class WorkerTimeoutError(ResNetError):
    """A worker stopped at its time limit; ``rows``: what it measured before."""

    def __init__(self, message: str, rows: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.rows = rows


def _worker(
    args: list[str],
    on_row: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 3600,
    env_extra: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run one worker process; every JSON line it prints, as it prints it."""
    cmd = [sys.executable, "-m", "resnet_tools.bench.worker", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        proc.kill()

    killer = threading.Timer(timeout, stop)  # the deadline holds while the worker compiles or runs
    killer.start()
    rows = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("{"):
                row = json.loads(line)
                rows.append(row)
                if on_row:
                    on_row(row)
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        killer.cancel()
    if proc.wait() != 0 and stopped.is_set():
        raise WorkerTimeoutError(f"benchmark worker {' '.join(args[:2])} stopped at its {timeout:.0f} s limit", rows)
    if proc.returncode != 0:
        raise ResNetError(f"benchmark worker {' '.join(args[:2])} failed: {stderr.strip().splitlines()[-1:]}")
    return rows


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    dists = [d for rec in descriptors().values() for d in (rec.distribution, *rec.reports)]
    for dist in (*dict.fromkeys(dists), "numpy"):  # each backend's own, and what its descriptor reports beside
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as fh:
        cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    return {
        "date": dated.today(),  # every figure carries the day it was measured
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "device": "cpu",
    }


def _cpu_ceiling_text(data: dict[str, Any]) -> str:
    """What "% peak" is against on CPU, as measured in that run."""
    sgemm = data.get("sgemm_gflops")
    if sgemm and data.get("peak_method", "").startswith("register-only"):  # the probe ran (not its fallback's words)
        int8 = (data.get("peaks") or {}).get("int8")
        return (
            f"% peak is against the FP32 FMA ceiling measured in this run, {data['peak_gflops']:.0f} GFLOP/s "
            f"(register-only FMAs; numpy's SGEMM reached {sgemm:.0f})"
            + (f"; INT8 rows against the INT8 VNNI ceiling measured beside it, {int8:.0f} GOP/s" if int8 else "")
        )
    return f"% peak is against numpy's FP32 SGEMM measured in this run, {data['peak_gflops']:.0f} GFLOP/s"


def add_derived(rows: list[Row], peak: float, peaks: dict[str, float] | None = None) -> None:
    """Share of peak (the peak of the row's precision where measured), ours/official time ratio (same
    backend, model, path, batch and mode), noise flag."""
    for r in rows:
        # the CPU's measured ceiling is FP32's: an INT8 row has no peak of its own here (VNNI's is not measured)
        p = (peaks or {}).get(r.precision, peak if r.precision != "int8" else 0.0)
        r.peak_share = r.gflops / p if p and r.gflops else 0.0
        r.noisy = r.spread > NOISY_SPREAD
        r.ours_over_official = None
    for r in rows:
        if r.implementation == "ours" or r.error or not r.images_per_s:
            continue
        for o in rows:
            same = (o.backend, o.model, o.path, o.batch, o.mode) == (r.backend, r.model, r.path, r.batch, r.mode)
            if same and o.implementation == "ours" and o.images_per_s:
                o.ours_over_official = r.images_per_s / o.images_per_s  # = latency ours / official


def run_bench(
    models: list[str],
    backends: list[str],
    batches: list[int],
    *,
    threads: int,
    mode: str = "eval",
    size: int = 224,
    repeats: int = 10,
    min_time: float = 3.0,
    paths: str = "",
    on_row: Callable[[Row], None] | None = None,
    keras_backends: tuple[str, ...] = (),
    malloc: str = "kept",
    device: str = "cpu",
    on_progress: Callable[[BenchResult], None] | None = None,
    official: bool = True,
    timeout_s: float = 3600,
) -> BenchResult:
    """Every backend's rows, each backend in its own worker process. ``keras_backends``: Keras backends to
    run besides the first (CPU: tensorflow first; GPU: the first of ``keras_backends``). ``on_progress``: the
    result so far (``complete`` False) after every row, so a run cut off by a time limit keeps what it measured.
    ``official``: time the official zoo's model beside ours (False: ours only)."""
    probe = _worker(["--backend", "peak", "--threads", str(threads), "--device", device])[0]
    peak = probe["peak_gflops"]
    machine = machine_info()
    if device == "gpu":
        machine.update(probe.get("gpu", {}), device="gpu")
    rows: list[Row] = []

    def result(complete: bool) -> BenchResult:
        add_derived(rows, peak, probe.get("peaks"))
        return BenchResult(machine, threads, peak, list(rows), malloc, device, probe.get("peaks", {}),
                           probe.get("peak_method", ""), probe.get("sgemm_gflops"), complete, size)  # fmt: skip

    flags = {"models": ",".join(models), "batches": ",".join(map(str, batches)), "size": size, "mode": mode,
             "threads": threads, "repeats": repeats, "min-time": min_time, "paths": paths, "malloc": malloc,
             "device": device}  # fmt: skip
    common = [a for k, v in flags.items() for a in (f"--{k}", str(v))] + ([] if official else ["--ours-only"])

    def run(backend: str, env: dict[str, str], label: str) -> None:
        """One worker's rows, labelled with the compute engine where the backend runs on several."""

        def each(data: dict[str, Any]) -> None:
            rows.append(Row.from_dict({**data, "backend": label}))
            if on_row:
                on_row(rows[-1])
            if on_progress:
                on_progress(result(complete=False))

        _worker(["--backend", backend, *common], each, timeout=timeout_s, env_extra=env)

    for backend in backends:
        d = descriptor(backend)
        if not d.runs_on:
            run(backend, {}, backend)
            continue
        first = d.runs_on[0] if device == "cpu" or not keras_backends else keras_backends[0]
        run(backend, {d.engine_env: first}, f"{backend}[{first}]" if device == "gpu" else backend)
        for other in [k for k in keras_backends if k != first]:
            run(backend, {d.engine_env: other}, f"{backend}[{other}]")  # the same model on another engine
    return result(complete=True)


def plot(result: BenchResult, path: str) -> None:
    """Bar chart of images/s per model and batch: one bar per backend / path / implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_tools.core.files import atomic_write

    ok = [r for r in result.rows if not r.error]
    groups = list(dict.fromkeys((r.model, r.batch) for r in ok))
    if not groups:
        raise ResNetError("no benchmark row succeeded: nothing to plot")
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(10, 0.42 * max(len(ok) / len(groups), 4) + 1.2 * len(groups)), squeeze=False
    )
    for ax, (model, batch) in zip(axes[:, 0], groups, strict=True):
        rows = [r for r in ok if r.model == model and r.batch == batch]
        labels = [f"{r.backend} {r.path} ({r.implementation})" for r in rows]
        values = [r.images_per_s for r in rows]
        errs = [r.images_per_s - r.batch / (r.latency_ms_p90 / 1000) for r in rows]
        colors = ["tab:blue" if r.implementation == "ours" else "tab:gray" for r in rows]
        ax.barh(labels, values, xerr=[errs, [0] * len(errs)], color=colors)
        ax.invert_yaxis()
        ax.set_title(f"{model}, batch {batch}, {result.threads} threads ({result.machine['cpu']})", fontsize=9)
        ax.set_xlabel("images/s (error bar: p90 latency)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def measured_on(machine: dict[str, Any]) -> str:
    """When a run was measured: its recorded date, or for a run that did not record one, the day its JSON file was
    committed (``committed``, set by the renderers from git), said as an upper bound."""
    return dated.measured_on(machine.get("date"), machine.get("committed"))


def _settings(data: dict[str, Any]) -> str:
    """The run's settings a figure depends on: mode and image size (batch and path are columns)."""
    rows = data.get("rows") or [{}]
    mode = rows[0].get("mode", "eval")
    size = data.get("size")
    return f"{'training steps' if mode == 'train' else 'inference'}" + (f", {size}x{size} images" if size else "")


def markdown_table(data: dict[str, Any]) -> str:
    """A Markdown table of a ``resnet bench --json`` file (for the docs)."""
    m = data["machine"]
    gpu = data.get("device") == "gpu"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    settings = _settings(data)
    if gpu:
        peaks = ", ".join(f"{k} {v / 1000:.0f}" for k, v in data["peaks"].items())
        head = (
            f"{measured_on(m)}: {settings}; {m.get('gpu', 'GPU')} (driver {m.get('driver', '?')}, "
            f"CUDA {m.get('cuda', '?')}, cuDNN "
            f"{m.get('cudnn', '?')}); measured dense matmul peaks (TFLOP/s): {peaks}. % peak is against "
            f"the peak of the row's precision. Input on the device, every call synchronised; TF32 off "
            f"except on tf32 rows. Versions: {versions}.\n\n"
        )
    else:
        head = (
            f"{measured_on(m)}: {settings}; {m['cpu']}, {m['cores']} cores, {data['threads']} threads per framework, "
            "malloc "
            f"{data.get('malloc', 'glibc')}; {_cpu_ceiling_text(data)}. Versions: {versions}.\n\n"
        )
    parts: list[str] = []
    errors: list[str] = []
    for backend in dict.fromkeys(r["backend"] for r in data["rows"]):
        mine = [r for r in data["rows"] if r["backend"] == backend]
        errors += [
            f"- {backend} · {r['model']} · batch {r['batch']} · {r['path']} · {r['implementation']}: {r['error']}"
            for r in mine
            if r["error"]
        ]
        ok = [r for r in mine if not r["error"]]
        if not ok:
            continue
        models = list(dict.fromkeys(r["model"] for r in ok))
        one = len(models) == 1  # the model goes into the heading: one column less
        parts += [
            f"**{backend}**" + (f" ({models[0]})" if one else ""),
            "",
            ("" if one else "| model ") + "| batch | path | implementation | img/s | ms median (p90) | peak MB | "
            "% peak | ours / official |",
            ("" if one else "|---") + "|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in ok:
            ratio = "" if r["ours_over_official"] is None else f"{r['ours_over_official']:.2f}"
            noisy = " ⚠" if r["noisy"] else ""
            memory = r.get("peak_gpu_mb", 0) if gpu else r["peak_rss_mb"]
            parts.append(
                ("" if one else f"| {r['model']} ")
                + f"| {r['batch']} | {r['path']} | {r['implementation']} | {r['images_per_s']:.1f} | "
                f"{r['latency_ms_median']:.1f} ({r['latency_ms_p90']:.1f}){noisy} | {memory:.0f} | "
                + (f"{r['peak_share']:.0%}" if r["peak_share"] else "-")  # no peak of its precision (INT8 on CPU)
                + f" | {ratio} |"
            )
        parts.append("")
    notes = ["⚠: p90/median above the noise threshold (the machine was busy during that row)."]
    if errors:
        notes += ["", "Rows that did not run:", "", *errors]
    lines = [*parts, *notes]
    return head + "\n".join(lines) + "\n"
