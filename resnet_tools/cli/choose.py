"""``resnet choose``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from resnet_tools.cli.args import Subcommands


def cmd_choose(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from resnet_tools.bench.choose import DEFAULTS, choose
    from resnet_tools.cli.args import parse_models
    from resnet_tools.cli.bench import _device
    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import parse_backends
    from resnet_tools.core.files import atomic_write, check_outputs

    check_outputs([args.json], force=args.force)
    device = _device(args.device)
    (model,) = parse_models(args.model)[:1]
    backends = parse_backends(args.backends) if args.backends else None  # None: all, the missing ones named
    _, batch, size = DEFAULTS[args.task]
    batch, size = args.batch or batch, args.size or size
    console.print(
        f"choose: {args.task} on {device}, {model}, batch {batch}, {size}x{size}, {args.threads} threads, "
        f"budget {args.budget:.0f} s"
    )
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("timing each backend's best paths", total=args.budget)

        def on_row(row: Any) -> None:
            progress.update(bar, advance=row.one_off_s + row.samples * row.latency_ms_median / 1000)
            console.print(f"  {row.backend:7s} {row.path:32s} {row.images_per_s:8.1f} img/s", highlight=False)

        result = choose(args.task, device, model, args.budget, args.threads, batch, size, backends, on_row=on_row)
    console.print(_table(result))
    for line in result.advice:
        console.print(f"• {line}", highlight=False)
    console.print(f"measured in {result.elapsed_s:.0f} s ({result.date}, {result.machine['cpu']})")
    if args.json:
        atomic_write(args.json, lambda fh: fh.write(json.dumps(result.as_dict(), indent=2).encode()))
        console.print(f"wrote {args.json}")
    return 0


def _table(result: Any) -> Any:
    from rich.table import Table

    unit = "img/s (train step)" if result.task == "train" else "img/s"
    table = Table(title=f"resnet choose --task {result.task}: {result.model}, batch {result.batch}, {result.device}")
    for col in ("rank", "backend", "best path", unit, "ms a batch", "spread", "peak MB", "first call s"):
        table.add_column(col, justify="left" if col in ("backend", "best path") else "right")
    for i, p in enumerate(result.picks, 1):
        if p.images_per_s:
            table.add_row(
                str(i), p.backend, p.path, f"{p.images_per_s:.1f}", f"{p.latency_ms:.0f}", f"{p.spread:.2f}",
                f"{p.peak_mb:.0f}", f"{p.one_off_s:.1f}",
            )  # fmt: skip
        else:
            table.add_row("-", p.backend, p.missing or p.skipped or "not timed", *[""] * 5)
    return table


def register(sub: Subcommands) -> None:
    from resnet_tools.bench.choose import TASKS

    p = sub.add_parser("choose", help="which backend for a task, measured on this machine within a time budget")
    p.add_argument("--task", choices=TASKS, default="train")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--budget", type=float, default=180.0, help="seconds to spend measuring (default 180)")
    p.add_argument("--backends", default=None, help="comma-separated (default: every backend; missing ones named)")
    p.add_argument("--threads", type=int, default=2, help="every framework pinned to this many threads")
    p.add_argument("--batch", type=int, default=None, help="default 16 for train, 1 for serve")
    p.add_argument("--size", type=int, default=None, help="image side; default 112 for train, 224 for serve")
    p.add_argument("--json", default=None, help="write the ranking and every timed row here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_choose)
