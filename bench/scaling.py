"""Data-parallel scaling on the CPU: the same training steps on 1 and 2 replicas of each framework's own
engine (torch DDP and paddle.DataParallel over gloo, Keras' DataParallel on JAX), on the same cores.
Writes docs/generated/bench_parallel.{json,md}.

    python bench/scaling.py [--steps 8] [--batch 32] [--size 32] [--backends torch,paddle,keras]

Each run gets every core: 1 replica with all of them, 2 replica processes with half each (``launch`` pins
the threads; Keras' 2 replicas are 2 JAX devices in one process). Step times are rank 0's, the gradient
all-reduce included, without the first ``--warmup`` steps (JAX compiles its step in the first); the two
replica counts run back to back, and the ratio is the figure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_spec import get_spec  # noqa: E402
from resnet_spec.optim import OptimizerConfig  # noqa: E402
from resnet_spec.random_weights import initial_weights  # noqa: E402
from resnet_tools.train.checkpoint import TrainingState, save_training_checkpoint  # noqa: E402
from resnet_tools.train.parallel import engine_of, launch, make_job, processes  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--backends", default="torch,paddle,keras")
    p.add_argument("--out", default=str(ROOT / "docs" / "generated" / "bench_parallel"))
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    spec = get_spec("resnet18", stem="cifar", in_channels=1, num_classes=10)
    config = OptimizerConfig("sgd", lr=0.01, momentum=0.9)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = tmp / "start.safetensors"
        save_training_checkpoint(
            start,
            TrainingState(spec, initial_weights(spec, seed=0), {}, 0, config, {"backend": "torch", "dtype": "float32"}),
        )
        for backend in args.backends.split(","):
            for nproc in (1, 2):
                job = make_job(backend, start, tmp / "end.safetensors", config, size=args.size, batch=args.batch,
                               steps=args.warmup + args.steps)  # fmt: skip
                began = time.perf_counter()
                report = launch(job, nproc, timeout_s=1800)
                wall = time.perf_counter() - began
                times = [r["seconds"] for r in report["records"][args.warmup :]]
                median = statistics.median(times)
                rows.append({"backend": backend, "replicas": nproc, "engine": engine_of(backend).name,
                             "processes": processes(backend, nproc),
                             "threads per process": max(1, cores // processes(backend, nproc)),
                             "step s (median)": median,
                             "step s (min)": min(times), "step s (max)": max(times),
                             "images/s": args.batch / median, "wall s": wall})  # fmt: skip
                print(rows[-1], flush=True)
    for r in rows:
        one = next(o for o in rows if o["backend"] == r["backend"] and o["replicas"] == 1)
        r["speed-up"] = one["step s (median)"] / r["step s (median)"]
    out = Path(args.out)
    doc = {"date": datetime.date.today().isoformat(), "rows": rows, "cores": cores, "batch": args.batch,
           "size": args.size, "steps": args.steps,
           "warmup": args.warmup, "model": "resnet18 (CIFAR stem)", "dtype": "float32"}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = [
        f"Measured {doc['date']}: resnet18 (CIFAR stem) on the digits at {args.size}x{args.size}, "
        f"global batch {args.batch}, float32, SGD; "
        f"{args.steps} timed steps after {args.warmup} warm-up steps, rank 0's step times; {cores} cores shared by "
        "the replicas (`bench/scaling.py`).",
        "",
        "| framework | replicas | processes x threads | step (s), median [min-max] | images/s | speed-up vs 1 |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['replicas']} | {r['processes']} x {r['threads per process']} | "
            f"{r['step s (median)']:.3f} "
            f"[{r['step s (min)']:.3f}-{r['step s (max)']:.3f}] | {r['images/s']:.1f} | {r['speed-up']:.2f}x |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
