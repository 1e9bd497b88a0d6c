"""Where resnet50's CPU time goes, against the machine's FP32 ceilings (docs/generated/profile.md).

Measured in one run, so the ratios hold on a shared machine whose clock moves between runs:
  1. FP32 ceilings: register-only FMA throughput (resnet_tools/bench/ceiling.py, AVX-512 or AVX2, when gcc is present)
     and SGEMM 2048^3 in numpy's BLAS and torch's MKL;
  2. every distinct conv shape of resnet50 (from the spec's conv sites) timed alone in oneDNN
     (torch conv2d, channels_last): their sum is what the convolutions cost with these kernels,
     whatever runs around them;
  3. the whole network on torch's paths (eager NCHW, channels_last, torch.compile) and
     torch.profiler's breakdown of channels_last by operator.

Run: .venv/bin/python bench/profile_resnet50.py [--batch 16] [--threads 2] [--no-compile] [--render]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from resnet_tools.bench.ceiling import fma_ceiling
from resnet_tools.core.dated import committed_day, measured_on, today

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def sgemm(matmul: Callable[[object, object], object], a: object, b: object, n: int) -> float:
    return 2 * n**3 / min(timed(lambda: matmul(a, b), 7)) / 1e9


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (30-60 s to compile)")
    p.add_argument("--render", action="store_true", help="only re-render profile.md from profile.json")
    args = p.parse_args()
    if args.render:
        (OUT / "profile.md").write_text(render(json.loads((OUT / "profile.json").read_text())) + "\n")
        return 0
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    import torch.nn.functional as F

    import resnet_torch
    from resnet_spec import count_macs, get_spec
    from resnet_spec.shapes import conv_out, conv_sites
    from resnet_tools.bench.allocator import MODES, set_malloc

    torch.set_num_threads(args.threads)
    b, size = args.batch, args.size
    spec = get_spec("resnet50")
    result: dict = {"batch": b, "threads": args.threads, "size": size, "torch": torch.__version__, "date": today()}

    def ceilings() -> dict[str, float | None]:
        n = 2048
        an = np.random.default_rng(0).standard_normal((n, n)).astype("float32")
        at = torch.from_numpy(an)
        return {
            "fma_gflops": fma_ceiling(args.threads),
            "fma_1thread_gflops": fma_ceiling(1),
            "numpy_sgemm_gflops": sgemm(np.matmul, an, an, n),
            "torch_sgemm_gflops": sgemm(torch.mm, at, at, n),
        }

    result["ceilings_before"] = ceilings()

    # 2. every distinct conv shape alone (oneDNN, channels_last), weighted by how often it occurs
    set_malloc("kept")  # the conv's output buffer is not faulted in anew on every call
    shapes = Counter((s.conv, s.height, s.width) for s in conv_sites(spec, size, size))
    convs = []
    with torch.inference_mode():
        for (conv, h, w), count in shapes.items():
            x = torch.randn(b, conv.in_channels, h, w).contiguous(memory_format=torch.channels_last)
            weight = torch.randn(conv.out_channels, conv.in_channels // conv.groups, conv.kernel, conv.kernel)
            weight = weight.contiguous(memory_format=torch.channels_last)
            ts = timed(
                lambda x=x, weight=weight, conv=conv: F.conv2d(
                    x, weight, stride=conv.stride, padding=conv.padding, groups=conv.groups
                ),
                5,
            )
            ho, wo = conv_out(h, conv), conv_out(w, conv)
            flops = 2 * b * ho * wo * conv.out_channels * conv.in_channels // conv.groups * conv.kernel**2
            convs.append(
                {
                    "kernel": conv.kernel,
                    "stride": conv.stride,
                    "in": conv.in_channels,
                    "out": conv.out_channels,
                    "hw_in": h,
                    "count": count,
                    "ms": min(ts) * 1e3,
                    "gflops": flops / min(ts) / 1e9,
                    "flops": flops,
                }
            )
    result["convs"] = convs
    conv_ms = sum(c["ms"] * c["count"] for c in convs)
    result["conv_sum_ms"] = conv_ms

    # 3. the network on torch's paths; eager with glibc's malloc defaults and with freed memory kept,
    # interleaved; then torch.profiler's operator breakdown of channels_last in both modes
    model = resnet_torch.create_model("resnet50").eval()
    model_cl = resnet_torch.create_model("resnet50").eval().to(memory_format=torch.channels_last)
    x = torch.randn(b, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    eager = {"eager NCHW": lambda: model(x), "channels_last": lambda: model_cl(x_cl)}
    samples: dict[str, list[float]] = defaultdict(list)
    faults: dict[str, list[int]] = defaultdict(list)
    with torch.inference_mode():
        for _ in range(4):
            for mode in MODES:
                set_malloc(mode)
                for name, fn in eager.items():
                    fn()
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    samples[f"{name}, malloc {mode}"] += timed(fn, 2, warmup=0)
                    faults[f"{name}, malloc {mode}"].append(
                        (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 2
                    )
        from torch.profiler import ProfilerActivity, profile

        set_malloc("kept")
        model_cl(x_cl)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                model_cl(x_cl)
        ops = {
            evt.key: evt.self_cpu_time_total / 3 / 1e3
            for evt in prof.key_averages()  # ms per forward
            if evt.key.startswith("aten::") and evt.self_cpu_time_total > 0
        }
        nets = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        result["spread"] = {k: max(v) / min(v) for k, v in samples.items()}
        result["page_faults_per_forward"] = {k: int(statistics.median(v)) for k, v in faults.items()}
        result["channels_last_ops_ms"] = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:6])
        result["channels_last_ms"] = nets["channels_last, malloc kept"]
        if not args.no_compile:
            import torch._inductor.config as inductor_config

            set_malloc("kept")
            inductor_config.freezing = True  # folds BN into the conv weights, as in the bench's row
            compiled = torch.compile(model_cl)
            t0 = time.perf_counter()
            compiled(x_cl)
            result["compile_s"] = time.perf_counter() - t0
            nets["torch.compile (freezing), malloc kept"] = statistics.median(timed(lambda: compiled(x_cl), 5)) * 1e3
    result["network_ms"] = nets
    result["network_gflop"] = 2 * count_macs(spec, size, size) * b / 1e9
    result["ceilings_after"] = ceilings()

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "profile.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / "profile.md").write_text(render(result) + "\n")
    print(render(result))
    return 0


def render(r: dict) -> str:
    before, after = r["ceilings_before"], r["ceilings_after"]

    def both(key: str) -> str:
        if before[key] is None:
            return "n/a (no gcc)"
        return f"{before[key]:.0f} / {after[key]:.0f}"

    fma = max(v for v in (before["fma_gflops"], after["fma_gflops"]) if v) if before["fma_gflops"] else None
    gemm = max(
        before["torch_sgemm_gflops"],
        after["torch_sgemm_gflops"],
        before["numpy_sgemm_gflops"],
        after["numpy_sgemm_gflops"],
    )
    gflop = r["network_gflop"]
    lines = [
        f"{measured_on(r.get('date'), committed_day(OUT / 'profile.json'))}: "
        f"resnet50, batch {r['batch']}, {r['size']}x{r['size']}, fp32, {r['threads']} threads, torch {r['torch']}; "
        "each ceiling measured at the start / end of the run.",
        "",
        "| FP32 ceiling | GFLOP/s |",
        "|---|---:|",
        f"| FMA, registers only, {r['threads']} threads (resnet_tools/bench/ceiling.py) | {both('fma_gflops')} |",
        f"| same, 1 thread | {both('fma_1thread_gflops')} |",
        f"| SGEMM 2048³, torch (MKL) | {both('torch_sgemm_gflops')} |",
        f"| SGEMM 2048³, numpy (OpenBLAS) | {both('numpy_sgemm_gflops')} |",
        "",
        "| resnet50 forward | ms (median) | spread | page faults | GFLOP/s | % of FMA peak | % of best SGEMM |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {
        **r["network_ms"],
        "convolutions alone, weights not prepacked (sum of the last table), malloc kept": r["conv_sum_ms"],
    }
    for name, ms in rows.items():
        rate = gflop / (ms / 1e3)
        share = f"{rate / fma:.0%}" if fma else "n/a"
        spread = f"{r['spread'][name]:.2f}" if name in r["spread"] else ""
        pf = r["page_faults_per_forward"].get(name, "")
        lines.append(f"| {name} | {ms:.0f} | {spread} | {pf} | {rate:.0f} | {share} | {rate / gemm:.0%} |")
    lines += [
        "",
        "torch.profiler, channels_last eager, malloc kept: self CPU time per forward (top operators; "
        "the profiler slows the run, so shares are of the profiled operator time):",
        "",
        "| operator | ms | share |",
        "|---|---:|---:|",
    ]
    profiled = sum(r["channels_last_ops_ms"].values())
    for op, ms in r["channels_last_ops_ms"].items():
        lines.append(f"| `{op}` | {ms:.0f} | {ms / profiled:.0%} |")
    lines += [
        "",
        "Every distinct conv of resnet50 alone (oneDNN via torch, channels_last, malloc kept, best of 5):",
        "",
        "| kernel | stride | in → out | input H=W | times in net | ms each | GFLOP/s | share of conv time |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    conv_total = r["conv_sum_ms"]
    for c in sorted(r["convs"], key=lambda c: -c["ms"] * c["count"]):
        lines.append(
            f"| {c['kernel']}x{c['kernel']} | {c['stride']} | {c['in']} → {c['out']} | {c['hw_in']} | "
            f"{c['count']} | {c['ms']:.1f} | {c['gflops']:.0f} | {c['ms'] * c['count'] / conv_total:.0%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
