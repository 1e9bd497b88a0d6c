"""`make gpu-check`: the GPU figures in one call that fits a 10-minute lease (about 8 minutes on an H100).

One plan, in order of what matters most: the GPU tests, parity on a sample of the zoo in every mode (eval fp32,
train float64, bf16, fp16), `resnet bench --device gpu` on resnet50 (eager, channels_last bf16, torch.compile and
CUDA graphs, Keras on JAX), then the rendered tables and chart. Each step has an estimate and a time limit;
``--budget`` keeps the steps whose estimates fit and says which it left out. Each step writes as it goes, so a
step cut off by its limit still leaves what it measured, and ``gpu-check.md`` says how every step ended.

    python bench/gpu_check.py                      # on a CUDA machine: figures into docs/generated/gpu
    python bench/gpu_check.py --dry-run --out DIR  # the same plan on CPU with tiny sizes (CI runs this)
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU_OUT = ROOT / "docs" / "generated" / "gpu"


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


def _bench(name: str, *args: str, dry_paths: str = "eager NCHW") -> tuple[list[str], list[str]]:
    real = ["-m", "resnet_tools.cli", "bench", "--device", "gpu", "--models", "resnet50", "--min-time", "2", *args]
    dry = ["-m", "resnet_tools.cli", "bench", "--device", "cpu", "--backends", "torch", "--models", "resnet18",
           "--batch", "2", "--size", "48", "--repeats", "2", "--min-time", "0", "--threads", "1",
           "--paths", dry_paths]  # fmt: skip
    out = ["--force", "--json", f"{{out}}/bench-gpu-{name}.json"]
    return [*real, *out], [*dry, *out]


def plan() -> list[Step]:
    """The steps in order of importance (a budget keeps a prefix of what fits, never a later step first)."""
    tests = ["-m", "pytest", "parity_tests/bench/test_gpu.py", "-q", "-p", "no:cacheprovider", "-rs"]
    eval32 = _parity("float32", "--models", "resnet18,resnet50,resnet50v2,resnext50_32x4d")
    train64 = _parity("train-fp64", "--mode", "train", "--dtype", "float64", "--models", "resnet18,resnet50v2",
                      "--input", "2x3x64x80")  # fmt: skip
    bf16 = _parity("bfloat16", "--dtype", "bfloat16", "--models", "resnet50")
    fp16 = _parity("float16", "--dtype", "float16", "--models", "resnet50")
    eager = _bench("torch-eager", "--backends", "torch", "--batch", "1,32,256",
                   "--paths", "eager fp32,eager tf32,channels_last bf16,channels_last fp16")  # fmt: skip
    compiled = _bench("torch-compile", "--backends", "torch", "--batch", "256",
                      "--paths", "torch.compile bf16,torch.compile cudagraphs bf16")  # fmt: skip
    train = _bench("torch-train", "--backends", "torch", "--batch", "256", "--mode", "train")
    keras = _bench("keras", "--backends", "keras", "--batch", "256")
    render = ["bench/render_gpu.py", "--folder", "{out}"]
    return [
        Step("GPU tests", 75, 150, tests, tests),
        Step("parity eval fp32 (4 models)", 40, 90, *eval32),
        Step("parity train float64", 40, 90, *train64),
        Step("parity bf16", 25, 60, *bf16),
        Step("parity fp16", 25, 60, *fp16),
        Step("bench torch eager (fp32, tf32, bf16, fp16)", 60, 120, *eager),
        Step("bench torch.compile + CUDA graphs bf16", 110, 200, *compiled),
        Step("bench torch training step", 30, 60, *train),
        Step("bench Keras on JAX", 60, 120, *keras),
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


def run(steps: list[Step], out: Path, *, dry: bool) -> list[tuple[Step, str, float]]:
    results = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    for step in steps:
        args = [a.replace("{out}", str(out)) for a in (step.dry if dry else step.real)]
        log = out / f"{step.name.split(' (')[0].replace(' ', '-').replace('+', 'and')}.log"
        start = time.perf_counter()
        print(f"== {step.name} (limit {step.limit_s} s)", flush=True)
        with open(log, "w") as fh:
            try:
                rc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    timeout=step.limit_s, check=False).returncode  # fmt: skip
                status = "ok" if rc == 0 else f"exit {rc}"
            except subprocess.TimeoutExpired:
                status = f"cut off at {step.limit_s} s"
        took = time.perf_counter() - start
        print(f"   {status} in {took:.0f} s (log: {log.name})", flush=True)
        results.append((step, status, took))
    return results


def report(results: list[tuple[Step, str, float]], left: list[Step], out: Path, *, dry: bool, budget: float) -> Path:
    lines = [
        f"# GPU check ({'dry run on CPU, tiny sizes' if dry else 'CUDA'}; budget {budget:.0f} s)",
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
    parser.add_argument("--budget", type=float, default=480.0, help="seconds the kept steps' estimates may add up to")
    parser.add_argument("--out", default=None, help="output folder (default: docs/generated/gpu; a dry run needs one)")
    args = parser.parse_args(argv)
    if args.out is None and args.dry_run:
        parser.error("--dry-run writes CPU figures: give --out (they never replace the GPU figures)")
    out = Path(args.out) if args.out else GPU_OUT
    out.mkdir(parents=True, exist_ok=True)
    kept, left = choose(plan(), args.budget)
    for step in left:
        print(f"left out to fit {args.budget:.0f} s: {step.name} (about {step.estimate_s} s)")
    results = run(kept, out, dry=args.dry_run)
    path = report(results, left, out, dry=args.dry_run, budget=args.budget)
    print(f"wrote {path}")
    return 0 if all(status == "ok" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
