"""``resnet evaluate``: one checkpoint's accuracy in several frameworks on the same images."""

from __future__ import annotations

import argparse
import json
from typing import Any

from resnet_tools.cli.args import WEIGHTS_HELP, Subcommands, add_checkpoint_options, map_request


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import load_backends, parse_backends, use_cpu_cores
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.hub.resolve import resolve_weights
    from resnet_tools.train.evaluate import evaluate

    check_outputs([args.json], force=args.force)
    backends = parse_backends(None if args.backends == "all" else args.backends)
    src = resolve_weights(args.weights, sha256=args.sha256)
    modules = load_backends(backends)
    use_cpu_cores(modules)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        tasks: dict[str, Any] = {}

        def on_images(backend: str, done: int, total: int) -> None:
            if backend not in tasks:
                tasks[backend] = progress.add_task(f"{backend}: images", total=total)
            progress.update(tasks[backend], completed=done)

        result = evaluate(modules, src.path, args.data, size=args.size, fmt=args.format or src.format,
                          model=args.model or src.model, preprocessing=args.preprocessing or src.preprocessing,
                          on_images=on_images, how=map_request(args))  # fmt: skip
    table = Table(title=f"{result.model} on {result.data}")
    for col in ("backend", "top-1", "top-5"):
        table.add_column(col)
    for b in result.top1:
        table.add_row(b, f"{result.top1[b]:.2%}", f"{result.top5[b]:.2%}")
    console.print(table)
    for pair, agree in result.agreement.items():
        console.print(f"{pair}: argmax agreement {agree:.2%}, max logit difference {result.max_logit_diff[pair]:.2e}")
    if args.json:
        atomic_write(args.json, lambda fh: fh.write(json.dumps(result.as_dict(), indent=1).encode()))
        console.print(f"wrote {args.json}")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add_parser("evaluate", help="top-1/top-5 of a checkpoint in several frameworks, and their agreement")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--sha256", default=None, help="the SHA-256 of a --weights URL's file (64 hex digits)")
    p.add_argument("--data", default="digits", help="'digits' (the test split) or a folder of class folders")
    p.add_argument("--backends", default="all", help="comma-separated, or 'all' installed (default)")
    p.add_argument("--model", default=None, help="architecture (inferred from the checkpoint when omitted)")
    p.add_argument("--size", type=int, default=None, help="digits: image side (default: what the run trained at)")
    p.add_argument("--preprocessing", default=None, help="a folder's recipe (default: the checkpoint's)")
    add_checkpoint_options(p)
    p.add_argument("--json", default=None, help="write the figures as JSON")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_evaluate)
