"""`make gpu-check`: the GPU figures in one call that fits a 10-minute lease (about 8 minutes on an H100).

One plan, in order of what matters most: the GPU tests, parity on a sample of the zoo in every mode (eval fp32,
train float64, bf16, fp16), `resnet bench --device gpu` on resnet50 (eager, channels_last bf16, torch.compile with
CUDA graphs beside torchvision, a training step, Keras on JAX), then the paths that could pass 30k img/s (they
take whatever time is left), then the rendered tables and chart. Each step has an estimate and a time limit;
``--budget`` keeps the steps whose estimates fit, says which it left out, and is a hard deadline: a step still
running then is stopped with its workers (SIGTERM, then SIGKILL), so the call never outlives its lease. The bench
writes its JSON after every row, so a step cut off keeps what it measured; ``gpu-check.md`` says how each ended.

    python bench/gpu_check.py                      # on a CUDA machine: figures into docs/generated/gpu
    python bench/gpu_check.py --dry-run --out DIR  # the same plan on CPU with tiny sizes (CI runs this)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU_OUT = ROOT / "docs" / "generated" / "gpu"


#: Seconds kept for rendering at the end; a step is not started with less than MIN_STEP_S before the deadline.
RENDER_RESERVE_S = 30
MIN_STEP_S = 15
#: The limit of a step that may take whatever time is left.
UNTIL_DEADLINE = 10_000


@dataclass(frozen=True)
class Step:
    name: str
    estimate_s: int  # on an H100: guessed from the phases of gpu_docs_data.sh, not yet measured in one call
    limit_s: int
    real: list[str]  # arguments after the python executable
    dry: list[str]  # the same step on CPU, tiny


def _parity(name: str, *args: str) -> tuple[list[str], list[str]]:
    """A parity step on the GPU, and its dry run: the same mode and dtype on CPU, resnet18 on a small input."""
    keep = [v for k, v2 in itertools.pairwise(args) if k in ("--mode", "--dtype") for v in (k, v2)]
    real = ["-m", "resnet_tools.cli", "parity", "--device", "gpu", "--backends", "torch,keras", *args]
    pair = "torch,keras" if "--dtype" in args and "float64" not in args else "torch,paddle"  # paddle: no CPU AMP
    dry = ["-m", "resnet_tools.cli", "parity", "--device", "cpu", "--backends", pair, "--models",
           "resnet18", "--input", "2x3x32x48", *keep]  # fmt: skip
    report = ["--force", "--report", f"{{out}}/parity-gpu-{name}"]
    return [*real, *report], [*dry, *report]


def _bench(name: str, *args: str, min_time: str = "2", dry_paths: str = "eager NCHW") -> tuple[list[str], list[str]]:
    real = ["-m", "resnet_tools.cli", "bench", "--device", "gpu", "--models", "resnet50", "--min-time", min_time, *args]
    dry = ["-m", "resnet_tools.cli", "bench", "--device", "cpu", "--backends", "torch", "--models", "resnet18",
           "--batch", "2", "--size", "48", "--repeats", "2", "--min-time", "0", "--threads", "1",
           "--paths", dry_paths, *[a for a in args if a == "--no-official"]]  # fmt: skip
    out = ["--force", "--json", f"{{out}}/bench-gpu-{name}.json"]
    return [*real, *out], [*dry, *out]


#: The paths that could pass 30k img/s (resnet50, batch 256, ours only), cheapest build first: a deadline cuts
#: max-autotune's minutes of tuning, not the rows before it.
TOWARD_30K = ("compile freezing cudagraphs bf16", "ONNX Runtime CUDA fp32", "ONNX Runtime TensorRT fp16",
              "compile freezing max-autotune bf16")  # fmt: skip


def plan() -> list[Step]:
    """The steps in order of importance (a budget keeps a prefix of what fits, never a later step first). The
    last bench step takes whatever time the deadline leaves (its limit is the deadline's)."""
    tests = ["-m", "pytest", "parity_tests/bench/test_gpu.py", "-q", "-p", "no:cacheprovider", "-rs"]
    eval32 = _parity("float32", "--models", "resnet18,resnet50,resnet50v2,resnext50_32x4d")
    train64 = _parity("train-fp64", "--mode", "train", "--dtype", "float64", "--models", "resnet18,resnet50v2",
                      "--input", "2x3x64x80")  # fmt: skip
    bf16 = _parity("bfloat16", "--dtype", "bfloat16", "--models", "resnet50")
    fp16 = _parity("float16", "--dtype", "float16", "--models", "resnet50")
    eager = _bench("torch-eager", "--backends", "torch", "--batch", "1,32,256",
                   "--paths", "eager fp32,eager tf32,channels_last bf16,channels_last fp16", min_time="1")  # fmt: skip
    compiled = _bench("torch-compile", "--backends", "torch", "--batch", "256",
                      "--paths", "torch.compile cudagraphs bf16")  # fmt: skip
    train = _bench("torch-train", "--backends", "torch", "--batch", "256", "--mode", "train")
    keras = _bench("keras", "--backends", "keras", "--batch", "256")
    toward = _bench("torch-30k", "--backends", "torch", "--batch", "256", "--no-official", "--paths",
                    ",".join(TOWARD_30K))  # fmt: skip
    render = ["bench/render_gpu.py", "--folder", "{out}"]
    return [
        Step("GPU tests", 75, 150, tests, tests),
        Step("parity eval fp32 (4 models)", 40, 90, *eval32),
        Step("parity train float64", 40, 90, *train64),
        Step("parity bf16", 25, 60, *bf16),
        Step("parity fp16", 25, 60, *fp16),
        Step("bench torch eager (fp32, tf32, bf16, fp16)", 45, 120, *eager),
        Step("bench torch.compile + CUDA graphs bf16 (ours and torchvision)", 60, 150, *compiled),
        Step("bench torch training step", 30, 60, *train),
        Step("bench Keras on JAX", 60, 120, *keras),
        Step("bench toward 30k img/s (freezing, ONNX Runtime, max-autotune)", 60, UNTIL_DEADLINE, *toward),
        Step("render tables and chart", 10, 60, render, render),
    ]


def choose(steps: list[Step], budget_s: float) -> tuple[list[Step], list[Step]]:
    """The steps whose estimates fit the budget, in order (rendering always kept), and those left out."""
    kept, left, used = [], [], 0
    for step in steps:
        if step.name.startswith("render") or used + step.estimate_s <= budget_s:
            kept.append(step)
            used += step.estimate_s
        else:
            left.append(step)
    return kept, left


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the step's whole process group (bench and parity start workers), SIGKILL 10 s later: nothing of
    a cut-off step keeps the GPU busy under the next one."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def run(steps: list[Step], out: Path, *, dry: bool, deadline_s: float) -> list[tuple[Step, str, float]]:
    """Run the steps in order. Every step but the last (rendering) ends by ``deadline_s`` from now, less
    RENDER_RESERVE_S for the rendering: cut off at its own limit or at the deadline, or not started."""
    results = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    begin = time.perf_counter()
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        left = deadline_s - RENDER_RESERVE_S - (time.perf_counter() - begin)
        limit = step.limit_s if last else min(step.limit_s, left)
        if limit < MIN_STEP_S:
            print(f"== {step.name}: not started ({left:.0f} s left before the deadline)", flush=True)
            results.append((step, "not started: deadline", 0.0))
            continue
        args = [a.replace("{out}", str(out)) for a in (step.dry if dry else step.real)]
        log = out / f"{re.sub(r'[^A-Za-z0-9.]+', '-', step.name.split(' (')[0].replace('+', 'and'))}.log"
        start = time.perf_counter()
        print(f"== {step.name} (limit {limit:.0f} s)", flush=True)
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
            try:
                rc = proc.wait(timeout=limit)
                status = "ok" if rc == 0 else f"exit {rc}"
            except subprocess.TimeoutExpired:
                _stop(proc)
                status = f"cut off at {limit:.0f} s" + (" (deadline)" if limit < step.limit_s else "")
        took = time.perf_counter() - start
        print(f"   {status} in {took:.0f} s (log: {log.name})", flush=True)
        results.append((step, status, took))
    return results


def report(results: list[tuple[Step, str, float]], left: list[Step], out: Path, *, dry: bool, budget: float) -> Path:
    lines = [
        f"# GPU check ({'dry run on CPU, tiny sizes' if dry else 'CUDA'}; budget and deadline {budget:.0f} s)",
        "",
        "| step | status | seconds | estimate |",
        "|---|---|---:|---:|",
        *[f"| {s.name} | {status} | {took:.0f} | {s.estimate_s} |" for s, status, took in results],
    ]
    if left:
        lines += ["", "Left out to fit the budget: " + "; ".join(s.name for s in left) + "."]
    path = out / "gpu-check.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same plan on CPU with tiny sizes")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds: the kept steps' estimates add up to at most this, and every step but the "
                             "rendering ends by then (cut off where it runs over)")  # fmt: skip
    parser.add_argument("--out", default=None, help="output folder (default: docs/generated/gpu; a dry run needs one)")
    args = parser.parse_args(argv)
    if args.out is None and args.dry_run:
        parser.error("--dry-run writes CPU figures: give --out (they never replace the GPU figures)")
    out = Path(args.out) if args.out else GPU_OUT
    out.mkdir(parents=True, exist_ok=True)
    kept, left = choose(plan(), args.budget)
    for step in left:
        print(f"left out to fit {args.budget:.0f} s: {step.name} (about {step.estimate_s} s)")
    results = run(kept, out, dry=args.dry_run, deadline_s=args.budget)
    path = report(results, left, out, dry=args.dry_run, budget=args.budget)
    print(f"wrote {path}")
    return 0 if all(ended_well(status) for _, status, _ in results) else 1


def ended_well(status: str) -> bool:
    """A step that finished, or that the deadline stopped or kept from starting (said in the report, not a
    failure: the budget is what the lease allows); a failed run or one over its own limit is not."""
    return status == "ok" or status.endswith("(deadline)") or status.startswith("not started")


if __name__ == "__main__":
    sys.exit(main())
