"""``resnet parity --targets int8``: one checkpoint through every INT8 path installed here, as a table and JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from resnet_tools.core.errors import UsageError


def cmd_parity_int8(args: argparse.Namespace, console: Console) -> int:
    """Exit 0 when every path kept its float model's predictions, 1 when one collapsed (named with its block)."""
    from resnet_tools.cli.args import parse_input_shape
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.export.int8.paths import parse_paths
    from resnet_tools.export.int8.suite import int8_parity

    if args.targets != ["int8"]:
        raise UsageError("--targets int8 runs alone (it compares INT8 artifacts with their float source)")
    if not args.weights:
        raise UsageError("--targets int8 needs --weights FILE: the checkpoint to quantize (its own model)")
    check_outputs([args.json], force=args.force)
    paths = parse_paths(args.int8_paths)
    if not paths:
        raise UsageError("no INT8 path is installed here: pip install 'resnet-xf[export]' and a framework")
    size = parse_input_shape(args.input)[2] if args.input else None
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    record = int8_parity(args.weights, args.calibration, paths, per_channel=not args.per_tensor,
                         threads=args.threads, speed=not args.no_speed, size=size, verbose=args.verbose,
                         say=say)  # fmt: skip
    console.print(int8_table(record))
    if args.json:
        text = json.dumps(record, indent=1) + "\n"
        atomic_write(args.json, lambda fh: fh.write(text.encode()))
        console.print(f"wrote {args.json}")
    collapsed = [r for r in record["reports"] if r["collapsed"]]
    for r in collapsed:
        console.print(f"[bold red]{r['path']}: INT8 collapse[/], worst block {r['worst_block']}", highlight=False)
    for f in record["failed"]:
        console.print(f"[bold red]{f['path']}: failed[/]: {f['error']}", highlight=False)
    return 1 if collapsed or record["failed"] else 0


def int8_table(record: dict[str, Any]) -> Table:
    """One row per INT8 path: accuracy against float, drift, the worst block and the speed-up."""
    table = Table(title=f"INT8 vs float: {record['model']}, {record['calibration']}")
    for column in ("path", "scheme", "top-1 float", "top-1 INT8", "agreement", "logit drift", "worst block",
                   "float img/s", "INT8 img/s", "speed-up", "verdict"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("path", "scheme", "worst block", "verdict") else "right")
    for r in record["reports"]:
        s = r.get("speed") or {}
        table.add_row(
            f"{r['path']} ({r['backend']})", r["scheme"], f"{r['top1_float']:.2%}", f"{r['top1_int8']:.2%}",
            f"{r['agreement']:.2%}", f"{r['logit_drift']:.1e}",
            f"{r['worst_block']} {r['blocks'].get(r['worst_block'], 0):.1e}",
            f"{s['float_img_s']:.1f}" if s else "-", f"{s['int8_img_s']:.1f}" if s else "-",
            f"{s['speedup']:.2f}x" if s else "-", "[bold red]collapse[/]" if r["collapsed"] else "kept",
        )  # fmt: skip
    return table
