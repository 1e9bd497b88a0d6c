"""``resnet export``: a checkpoint as a deployment artifact (ONNX or a framework's serving format), written
atomically and verified in its runtime against the framework that wrote it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from resnet_tools.cli.args import WEIGHTS_HELP, Subcommands, parse_input_shape

if TYPE_CHECKING:
    from rich.table import Table

    from resnet_tools.export.int8 import Int8Report
    from resnet_tools.export.run import ExportRequest


def cmd_export(args: argparse.Namespace) -> int:
    from resnet_tools.cli.console import console
    from resnet_tools.export.parity import runtime_name
    from resnet_tools.export.run import ExportRequest, export

    shape = parse_input_shape(args.input) if args.input else None
    request = ExportRequest(args.ckpt, args.out, args.format, backend=args.backend, input_shape=shape,
                            static_batch=args.static_batch, opset=args.opset, model=args.model, sha256=args.sha256,
                            force=args.force, verbose=args.verbose)  # fmt: skip
    if args.int8:
        return _int8(args, request)
    result = export(request, say=lambda line: console.print(line.replace("note:", "[yellow]note:[/]"), highlight=False))
    r = result
    dims = f"{'N' if r.dynamic else r.input_shape[0]}x" + "x".join(map(str, r.input_shape[1:]))
    console.print(f"wrote {r.out} ({r.fmt.name} from {r.backend}: {r.spec.name}, input {dims} {r.layout}, float32)")
    console.print(
        f"verified in {runtime_name(r.fmt.name)} against {r.backend} on a random {r.batch}-image batch: "
        f"max rel {r.diff.max_rel:.1e} ({'within' if r.verified else '[bold red]ABOVE[/]'} the tolerance "
        f"{r.tolerance:g})"
    )
    return 0 if r.verified else 1


def _int8(args: argparse.Namespace, request: ExportRequest) -> int:
    from resnet_tools.cli.console import console
    from resnet_tools.export.int8 import Int8CollapseError, export_int8

    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    try:
        report = export_int8(request, args.calibration, not args.per_tensor, args.threads, say)
    except Int8CollapseError as exc:
        console.print(_blocks(exc.report))
        console.print(f"[bold red]{exc}[/]; nothing was written", highlight=False)
        return 1
    console.print(_blocks(report))
    console.print(f"wrote {args.out} (INT8, {report.path}: {report.scheme}): {report.verdict()}", highlight=False)
    return 0


def _blocks(report: Int8Report) -> Table:
    """The per-block drift of an INT8 model against its float source, the worst block marked."""
    from rich.table import Table

    table = Table(title="INT8 vs float per block")
    table.add_column("block")
    table.add_column("drift", justify="right")
    for block, drift in report.blocks.items():
        table.add_row(block, f"{drift:.1e}" + ("  <- worst" if block == report.worst_block else ""))
    table.add_row("logits", f"{report.logit_drift:.1e}")
    return table


def register(sub: Subcommands) -> None:
    from resnet_tools.export.formats import FORMATS

    p = sub.add_parser("export", help="a checkpoint as ONNX or a framework's serving artifact, verified in its runtime")
    p.add_argument("ckpt", help=WEIGHTS_HELP)
    p.add_argument("out", help="the artifact to write (a folder for paddle-inference and saved-model)")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument(
        "--backend", default=None, help="the framework whose exporter writes it (default: the checkpoint's, if it can)"
    )
    p.add_argument(
        "--input",
        default=None,
        help="NxCxHxW the artifact takes (default 1xCx224x224; 1xCx32x32 for a CIFAR-stem model)",
    )
    p.add_argument(
        "--dynamic-batch", action="store_true", help="leave the batch dimension free (the default; kept for scripts)"
    )
    p.add_argument("--static-batch", action="store_true", help="fix the batch at --input's N (TFLite always is)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--model", default=None, help="the zoo model, where the checkpoint does not say")
    p.add_argument("--sha256", default=None, help="the SHA-256 of an https:// checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing artifact")
    p.add_argument(
        "--int8",
        action="store_true",
        help="INT8 by the path that writes --format (onnx: ONNX Runtime QDQ; torch-export: PT2E; tflite: "
        "full-integer; paddle-inference: Paddle PTQ), checked on held-out images",
    )
    p.add_argument(
        "--calibration", default="digits", help="--int8's images: digits (scikit-learn's) or an ImageFolder DIR"
    )
    p.add_argument(
        "--per-tensor", action="store_true", help="--int8 onnx: one scale per weight tensor (default: per channel)"
    )
    p.add_argument("--threads", type=int, default=2, help="runtime threads for --int8's checks")
    p.set_defaults(func=cmd_export)
