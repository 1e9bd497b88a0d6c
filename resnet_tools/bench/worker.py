"""One backend's benchmark rows, run in its own process (``python -m resnet_tools.bench.worker``).

A separate process per backend pins threads before the framework loads, keeps paddle and
TensorFlow apart, and lets each row measure its own peak memory. Prints one JSON object per row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from resnet_tools.bench.allocator import MODES, set_malloc
from resnet_tools.bench.gpu import path_precision
from resnet_tools.bench.paths import paths_of
from resnet_tools.bench.paths.common import MemoryProbe, Runner
from resnet_tools.bench.rows import Row
from resnet_tools.core.threads import threads_env

# keras.applications models with the same architecture as ours (names, biases, strides, eps).


def set_threads_env(threads: int) -> None:
    """Pin every math library in this process before any framework is imported."""
    os.environ.update(threads_env(threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, the peak resident set size."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_group(
    rows: list[Row],
    builds: list[Callable[[], Runner]],
    macs: int,
    warmup: int,
    repeats: int,
    min_time: float,
    gpu_memory: MemoryProbe | None = None,
) -> None:
    """Time the implementations of one path INTERLEAVED (round-robin), so that their ratio is fair on a
    shared machine; one-off cost and peak memory are measured per implementation before the rounds.
    GPU runners synchronise the device themselves; ``gpu_memory`` resets and reads its peak counter."""
    runners: list[Runner | None] = []
    for row, build in zip(rows, builds, strict=True):
        reset_peak_rss()
        start = time.perf_counter()
        try:
            if gpu_memory is not None:
                gpu_memory.begin()
            run = build()
            run()  # the first call traces / compiles (and autotunes cuDNN: its trial workspaces are not counted)
            row.one_off_s = time.perf_counter() - start
            if gpu_memory is not None:
                gpu_memory.reset()
            for _ in range(warmup):
                run()
            row.peak_rss_mb = peak_rss_mb()
            if gpu_memory is not None:
                row.peak_gpu_mb = getattr(run, "peak_mb", 0.0) or gpu_memory.peak_mb()
            runners.append(run)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            runners.append(None)
    live = [(row, run) for row, run in zip(rows, runners, strict=True) if run is not None]
    times: dict[int, list[float]] = {id(row): [] for row, _ in live}
    deadline = time.perf_counter() + min_time
    rounds = 0
    while live and (rounds < repeats or (time.perf_counter() < deadline and rounds < 10 * repeats)):
        for row, run in live:
            t0 = time.perf_counter()
            run()
            times[id(row)].append(time.perf_counter() - t0)
        rounds += 1
    for row, _ in live:
        ts = sorted(times[id(row)])
        med = statistics.median(ts)
        row.samples = len(ts)
        row.latency_ms_median = med * 1000
        row.latency_ms_p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))] * 1000
        row.latency_ms_min, row.latency_ms_max = ts[0] * 1000, ts[-1] * 1000
        row.spread = row.latency_ms_p90 / row.latency_ms_median
        row.images_per_s = row.batch / med
        row.gflops = 2 * macs * (3 if row.mode == "train" else 1) * row.images_per_s / 1e9


# Each backend's paths: (path, implementation, build). ``build()`` makes the model and returns the timed
# callable; the builders below are module functions bound with functools.partial (no nested closures).


# ---- paddle ---------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True, help="a backend with bench paths (resnet_tools/bench/paths/), or peak")
    p.add_argument("--models", default="resnet50")
    p.add_argument("--batches", default="1")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--mode", default="eval")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--min-time", type=float, default=3.0)
    p.add_argument("--paths", default="", help="comma-separated path names to keep (default: all)")
    p.add_argument("--malloc", choices=MODES, default="kept")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--ours-only", action="store_true", help="skip the official zoo's model beside ours")
    args = p.parse_args(argv)
    set_threads_env(args.threads)
    set_malloc(args.malloc)  # before any framework allocates: "kept" spares re-faulting big activations
    if args.backend == "peak":
        if args.device == "gpu":
            from resnet_tools.bench.gpu import gpu_info, gpu_peaks

            peaks = gpu_peaks()
            print(
                json.dumps({"peak_gflops": peaks["fp32"], "peaks": peaks, "gpu": gpu_info(), "threads": args.threads}),
                flush=True,
            )
            return 0
        from resnet_tools.bench.ceiling import cpu_ceiling

        print(json.dumps({**cpu_ceiling(args.threads), "threads": args.threads}), flush=True)
        return 0
    from resnet_spec import count_macs, get_spec

    keep = {s.strip() for s in args.paths.split(",") if s.strip()}
    for name in args.models.split(","):
        macs = count_macs(get_spec(name), args.size, args.size)
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                if args.device == "gpu":
                    paths = list(paths_of(args.backend).gpu_paths(name, batch, args.size, args.mode))
                else:
                    paths = list(paths_of(args.backend).cpu_paths(name, batch, args.size, args.mode, args.threads))
            except Exception as exc:
                row = Row(args.backend, name, "setup", "ours", batch, args.mode, args.threads, error=repr(exc)[:200])
                print(json.dumps(asdict(row)), flush=True)
                continue
            groups: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
            for path, impl, build in paths:
                if (not keep or path in keep) and (impl == "ours" or not args.ours_only):
                    groups.setdefault(path, []).append((impl, build))
            for path, members in groups.items():
                rows = [
                    Row(
                        args.backend,
                        name,
                        path,
                        impl,
                        batch,
                        args.mode,
                        args.threads,
                        device=args.device,
                        precision=path_precision(path),
                    )
                    for impl, _ in members
                ]
                try:
                    measure_group(
                        rows,
                        [b for _, b in members],
                        macs,
                        args.warmup,
                        args.repeats,
                        args.min_time,
                        gpu_memory=paths_of(args.backend).gpu_memory() if args.device == "gpu" else None,
                    )
                except Exception:
                    for row in rows:
                        row.error = row.error or traceback.format_exc(limit=1).splitlines()[-1][:200]
                for row in rows:
                    print(json.dumps(asdict(row)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
