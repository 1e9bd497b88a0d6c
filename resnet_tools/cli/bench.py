"""``resnet bench``."""

from __future__ import annotations

import argparse
import importlib.util
import json
from typing import TYPE_CHECKING, Any

from resnet_spec.errors import ResNetError
from resnet_tools.cli.args import DEVICES, Subcommands

if TYPE_CHECKING:
    from resnet_tools.bench.rows import Row


def cmd_bench(args: argparse.Namespace) -> int:
    from resnet_tools.bench.runner import BenchResult, plot, run_bench
    from resnet_tools.cli.console import console
    from resnet_tools.core.files import atomic_write, check_outputs

    check_outputs([args.json, args.plot], force=args.force)
    device, models, backends, batches = _checked(args)

    def save(result: BenchResult) -> None:  # after every row too ("complete": false), so a killed run keeps its rows
        if args.json:
            atomic_write(args.json, lambda fh: fh.write(json.dumps(result.as_dict(), indent=2).encode()))

    console.print(
        f"bench: {', '.join(models)} x {', '.join(backends)} x batch {args.batch}, {args.threads} threads, "
        f"{args.size}x{args.size}, mode {args.mode}, malloc {args.malloc} ({device})"
    )
    result = run_bench(
        models, backends, batches, threads=args.threads, mode=args.mode, size=args.size, repeats=args.repeats,
        min_time=args.min_time, paths=args.paths or "", malloc=args.malloc, device=device, on_progress=save,
        keras_backends=_other_engines(backends, device, args.no_keras_others), official=not args.no_official,
        on_row=_print_row,
    )  # fmt: skip
    if not result.rows:
        raise ResNetError(
            f"no execution path matched --paths {args.paths!r} on {device} for "
            f"{', '.join(backends)} (path names are those of the table, e.g. 'eager NCHW')"
        )
    console.print(_table(result, device))
    if noisy := sum(1 for r in result.rows if r.noisy):
        console.print(f"[yellow]{noisy} row(s) with p90/median > 1.2: the machine was busy; compare ratios[/]")
    if args.json:
        save(result)
        console.print(f"wrote {args.json}")
    if args.plot:
        plot(result, args.plot)
        console.print(f"wrote {args.plot}")
    if all(r.error for r in result.rows):
        console.print("[red]every row failed[/]")
        return 1
    return 0


def _print_row(r: Row) -> None:
    """One line per row as it is measured."""
    from rich.markup import escape

    from resnet_tools.cli.console import console

    speed = f"{r.images_per_s:7.2f} img/s" if not r.error else f"error: {r.error[:80]}"
    line = f"  {escape(r.backend):6s} {r.model:10s} b{r.batch:<3d} {r.path:18s} {r.implementation:18s} {speed}"
    console.print(line, highlight=False)


def _checked(args: argparse.Namespace) -> tuple[str, list[str], list[str], list[int]]:
    """The device, models, backends and batches the flags name (one line for a bad one); sets --batch's default."""
    from resnet_tools.cli.args import parse_ints, parse_models
    from resnet_tools.core.backends import parse_backends

    device = _device(args.device)
    backends = parse_backends(args.backends)
    args.batch = args.batch or ("1,32,256" if device == "gpu" else "1,16")
    batches = parse_ints("--batch", args.batch, low=1)
    for flag, value, low in (("--size", args.size, 32), ("--threads", args.threads, 1), ("--repeats", args.repeats, 1)):
        parse_ints(flag, str(value), low=low)
    return device, parse_models(args.models), backends, batches


def _other_engines(backends: list[str], device: str, skip: bool) -> tuple[str, ...]:
    """The compute engines a multi-engine backend (Keras) also runs on here: GPU, TF and JAX; CPU, torch and JAX
    besides TF (unless --no-keras-others)."""
    from resnet_tools.core.backends import descriptor

    if skip and device == "cpu":
        return ()
    wanted = dict.fromkeys(e for b in backends for e in descriptor(b).bench_engines.get(device, ()))
    return tuple(b for b in wanted if importlib.util.find_spec(b) is not None)


def _table(result: Any, device: str) -> Any:
    """The rows as a rich table (errors in red, noisy spreads in yellow)."""
    from rich.markup import escape
    from rich.table import Table

    if device == "gpu":
        peaks = ", ".join(f"{k} {v / 1000:.0f}" for k, v in result.peaks.items())
        title = f"resnet bench: {result.machine.get('gpu', 'GPU')}, dense peaks (TFLOP/s) {peaks}"
    else:
        title = (
            f"resnet bench: {result.threads} threads, measured FP32 peak {result.peak_gflops:.0f} GFLOP/s "
            f"({result.machine['cpu']})"
        )
    table = Table(title=title)
    columns = ("backend", "model", "batch", "path", "impl", "img/s", "median ms", "p90 ms", "spread", "one-off s",
               "peak MB", "GFLOP/s", "% peak", "ours/official")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("backend", "model", "path", "impl") else "right")
    for r in result.rows:
        head = (escape(r.backend), r.model, str(r.batch), r.path, r.implementation)
        if r.error:
            table.add_row(*head, f"[red]{r.error[:60]}[/]", *[""] * 8)
            continue
        ratio = r.ours_over_official
        table.add_row(
            *head, f"{r.images_per_s:.2f}", f"{r.latency_ms_median:.1f}", f"{r.latency_ms_p90:.1f}",
            f"[yellow]{r.spread:.2f}[/]" if r.noisy else f"{r.spread:.2f}", f"{r.one_off_s:.1f}",
            f"{r.peak_gpu_mb if device == 'gpu' else r.peak_rss_mb:.0f}", f"{r.gflops:.1f}", f"{r.peak_share:.0%}",
            "" if ratio is None else f"{ratio:.2f}",
        )  # fmt: skip
    return table


def _device(requested: str) -> str:
    """cpu, or gpu when one is asked for (or, with auto, found): nvidia-smi answers without loading a framework."""
    import shutil
    import subprocess

    if requested == "cpu":
        return "cpu"
    smi = shutil.which("nvidia-smi")
    found = bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0  # type: ignore[list-item]
    if requested == "gpu" and not found:
        raise ResNetError("--device gpu: no NVIDIA GPU found (nvidia-smi is missing or lists none); use --device cpu")
    return "gpu" if found else "cpu"


def register(sub: Subcommands) -> None:
    p = sub.add_parser("bench", help="speed and memory per backend and execution path, next to the official zoo")
    p.add_argument("--models", default="resnet18,resnet50,resnet152")
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed backend)")
    p.add_argument("--batch", default=None, help="comma-separated (default 1,16 on CPU, 1,32,256 on GPU)")
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="auto = gpu when nvidia-smi "
        "sees one; GPU rows: input on the device, synchronised calls, TF32 off except tf32 rows",
    )
    p.add_argument("--threads", type=int, default=2, help="every framework pinned to this many threads")
    p.add_argument("--mode", choices=["eval", "train"], default="eval")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=10, help="timed rounds at least")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds of timed rounds at least")
    p.add_argument("--paths", default=None, help="keep only these execution paths (comma-separated)")
    p.add_argument(
        "--no-official",
        action="store_true",
        help="time ours only, not torchvision / paddle.vision / keras.applications beside it (halves compile time)",
    )
    p.add_argument(
        "--no-keras-others",
        action="store_true",
        help="skip Keras on its torch/jax backends (run by default when installed)",
    )
    p.add_argument(
        "--malloc",
        choices=["kept", "glibc"],
        default="kept",
        help="kept: freed memory stays mapped (no page faults re-allocating big activations; "
        "resnet_tools/bench/allocator.py); glibc: the C library's defaults",
    )
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None)
    p.add_argument("--force", action="store_true", help="overwrite existing --json / --plot files")
    p.set_defaults(func=cmd_bench)
