"""``resnet parity``: the main job. Prints a table per pair; exit status 1 when any pair fails."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from resnet_spec.spec import AMP_DTYPES, DTYPES
from resnet_tools.cli.args import (
    DEVICES,
    Subcommands,
    add_checkpoint_options,
    map_request,
    parse_input_shape,
    parse_models,
    resolve_device,
)
from resnet_tools.core import dated
from resnet_tools.core.backends import PATHS, Backend, descriptor, load_backends, parse_backends
from resnet_tools.core.errors import UsageError
from resnet_tools.parity.engine import (
    DEFAULT_MODELS,
    TRAIN_POINTS,
    Given,
    ParityRecord,
    run_model_parity,
    run_model_train_parity,
)


def cmd_parity(args: argparse.Namespace) -> int:
    from resnet_tools.cli.console import console
    from resnet_tools.core.files import check_outputs

    if "int8" in [t.strip() for t in args.targets.split(",")]:
        from resnet_tools.cli.parity_int8 import cmd_parity_int8

        args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        return cmd_parity_int8(args, console)
    args.input = args.input or "2x3x224x224"

    check_outputs([args.json], force=args.force, report_dir=args.report)
    models, input_shape = _check_args(args)
    given = _given_weights(args, input_shape) if args.weights else None
    if given is not None:
        models = [given[0].name]
    artifacts = _check_targets(args)
    modules, device = _select_backends(args, console, needed=2 if "frameworks" in args.targets else 1)
    _check_writers(artifacts, modules)
    console.print(
        f"parity: {len(models)} model(s) x {len(modules)} backends ({', '.join(modules)}) on {device}, "
        f"input {'x'.join(map(str, input_shape))}, {args.dtype}, mode {args.mode}, targets {','.join(args.targets)}"
        + (f", weights {args.weights}" if given is not None else ", seeded random weights")
    )
    started = time.perf_counter()
    records = _run(args, models, modules, device, input_shape, console, given)
    elapsed = time.perf_counter() - started
    paths = _paths_used(records)
    console.print(f"execution paths: {paths}")
    console.print(_table(records, device, args))
    failed = [r for r in records if not r.passed]
    console.print(f"{len(records) - len(failed)}/{len(records)} pairs within tolerance in {elapsed:.1f}s")
    _write_outputs(args, records, modules, device, elapsed, paths, console)
    return 1 if failed else 0


def _check_args(args: argparse.Namespace) -> tuple[list[str], tuple[int, int, int, int]]:
    """Every user-fixable problem, before any framework is imported. Sets the mode's default dtype."""
    if args.weights and args.models is not None:
        raise UsageError("--weights runs parity on the checkpoint's own model: drop --models")
    models = parse_models(",".join(DEFAULT_MODELS) if args.models is None else args.models)
    if args.dtype is None:
        args.dtype = "float64" if args.mode == "train" else "float32"
    input_shape = parse_input_shape(args.input)
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.mode == "train" and input_shape[0] < 2:
        raise UsageError(
            f"--mode train needs a batch of at least 2 (batch statistics of one sample are "
            f"undefined); got --input {args.input}"
        )
    if args.blocks and (args.mode != "eval" or args.dtype in AMP_DTYPES):
        raise UsageError("--blocks compares eval-mode forwards in float32 or float64")
    if args.dtype in AMP_DTYPES and args.mode == "train":
        raise UsageError(
            "mixed-precision parity is eval-only: fp32 gradients of deep nets already differ at "
            "~1e-2 between frameworks (see docs/parity.md); use --mode eval"
        )
    return models, input_shape


def _check_targets(args: argparse.Namespace) -> list[str]:
    """``--targets frameworks,onnx,...``: the artifact formats named (one line for an unknown one)."""
    from resnet_tools.export.formats import FORMATS

    args.targets = list(dict.fromkeys(t.strip() for t in args.targets.split(",") if t.strip()))
    unknown = [t for t in args.targets if t != "frameworks" and t not in FORMATS]
    if unknown or not args.targets:
        raise UsageError(f"unknown --targets {', '.join(unknown) or '(none)'}; known: frameworks, {', '.join(FORMATS)}")
    artifacts = [t for t in args.targets if t != "frameworks"]
    if artifacts and (args.mode != "eval" or args.dtype != "float32" or args.device == "gpu" or args.weights):
        raise UsageError("artifact --targets run in eval mode, float32, on the CPU, with seeded weights")
    return artifacts


def _check_writers(artifacts: list[str], modules: dict[str, Backend]) -> None:
    """Each artifact target has a selected backend that writes it, with its exporter installed."""
    from resnet_tools.export.formats import FORMATS, check_writer

    for name in artifacts:
        writers = [b for b in modules if b in FORMATS[name].writers]
        if not writers:
            raise UsageError(f"--targets {name}: written by {', '.join(FORMATS[name].writers)}, none of --backends")
        for b in writers:
            check_writer(FORMATS[name], b)


def _given_weights(args: argparse.Namespace, input_shape: tuple[int, int, int, int]) -> Given:
    """The checkpoint ``--weights`` names (a file, an official id or a URL), read into canonical tensors."""
    from resnet_tools.checkpoints.convert import resolve_spec
    from resnet_tools.checkpoints.formats import FORMATS, format_for, read_checkpoint
    from resnet_tools.hub.resolve import resolve_weights

    local = resolve_weights(args.weights, sha256=args.sha256)
    given = args.format or local.format
    fmt = FORMATS[given] if given else format_for(local.path)
    if fmt.imports:
        load_backends([fmt.imports])
    how = map_request(args)
    ckpt = read_checkpoint(local.path, fmt, local.model, how=how)
    spec = resolve_spec(ckpt, local.model, how.assume)
    if spec.in_channels != input_shape[1]:
        raise UsageError(f"{args.weights} takes {spec.in_channels} input channels; --input has {input_shape[1]}")
    if args.mode == "train" and spec.num_classes < 1:
        raise UsageError(f"{args.weights} has no classifier (num_classes=0): train parity needs one")
    return spec, ckpt.weights


def _select_backends(args: argparse.Namespace, console: Console, *, needed: int = 2) -> tuple[dict[str, Backend], str]:
    """The backends to compare and the device: at least ``needed`` (two for framework pairs), each able to run
    the requested dtype there."""
    backends = parse_backends(args.backends)
    if len(backends) < needed:
        count = "two backends" if needed == 2 else "one backend"
        raise UsageError(f"parity needs at least {count}, got {', '.join(backends) or 'none'}")
    modules = load_backends(backends)
    device = resolve_device(args.device, modules, needed=2)
    if device == "gpu":
        modules = {b: m for b, m in modules.items() if m.gpu_available()}
        for m in modules.values():
            m.set_tf32(False)  # TF32 off: it moves logits by ~1e-3 relative (recorded in the report)
    if args.dtype in AMP_DTYPES:
        skipped = [b for b, m in modules.items() if not m.amp_supported(device)]
        modules = {b: m for b, m in modules.items() if b not in skipped}
        if skipped:
            console.print(f"[yellow]{', '.join(skipped)}: no {args.dtype} mixed precision on {device}; left out[/]")
        if len(modules) < 2:
            raise UsageError(
                f"{args.dtype} parity on {device} needs two backends that run mixed precision "
                f"there; have {', '.join(modules) or 'none'}"
            )
    return modules, device


def _run(
    args: argparse.Namespace,
    models: list[str],
    modules: dict[str, Backend],
    device: str,
    input_shape: tuple[int, int, int, int],
    console: Console,
    given: Given | None = None,
) -> list[ParityRecord]:
    """Every model through the engine, with a progress bar (one step per backend forward)."""
    records: list[ParityRecord] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        from resnet_tools.export.formats import FORMATS

        artifacts = [t for t in args.targets if t != "frameworks"]
        exports = sum(b in FORMATS[t].writers for t in artifacts for b in modules)
        frameworks = len(modules) if "frameworks" in args.targets else 0
        task = progress.add_task("forward passes", total=len(models) * (frameworks + exports))
        for name in models:
            progress.update(task, description=f"{name}")
            common = {
                "input_shape": input_shape,
                "device": device,
                "dtype": args.dtype,
                "seed": args.seed,
                "given": given,
            }
            step = lambda _b: progress.advance(task)  # noqa: E731

            def skipped(why: str) -> None:  # a known exporter defect: said, and counted as done
                console.print(f"[yellow]note:[/] {why}", highlight=False)
                progress.advance(task)

            if "frameworks" in args.targets and args.mode == "train":
                records += run_model_train_parity(name, modules, on_step=step, **common)
            elif "frameworks" in args.targets:
                records += run_model_parity(name, modules, on_step=step, path=args.path, blocks=args.blocks, **common)
            if artifacts:
                from resnet_tools.export.parity import run_export_parity

                records += run_export_parity(
                    name, modules, artifacts, input_shape=input_shape, seed=args.seed, on_step=step,
                    on_skip=skipped,
                )  # fmt: skip
    return records


def _table(records: list[ParityRecord], device: str, args: argparse.Namespace) -> Table:
    table = Table(title=f"parity ({device}, {args.dtype}, {args.mode}; tolerance {records[0].tolerance:g} rel)")
    for col in ("model", "source -> target", "max abs", "max rel", "1 - cosine", "top-1", "worst point",
                "first divergent", "pass"):  # fmt: skip
        table.add_column(col)
    for r in records:
        points = TRAIN_POINTS if r.mode == "train" else tuple(r.stages)  # eval: stages, or every block
        worst = max((k for k in points if k in r.stages), key=lambda k: r.stages[k].max_rel)
        table.add_row(
            r.model,
            r.pair(),
            f"{r.max_abs_diff:.2e}",
            f"{r.max_rel_diff:.2e}",
            f"{1 - r.cosine:.1e}",
            "n/a" if r.top1_agree is None else f"{r.top1_agree:.0%}",
            f"{worst} {r.stages[worst].max_rel:.1e}",
            r.first_divergent_stage or "-",
            "[green]yes[/]" if r.passed else "[bold red]NO[/]",
        )
    return table


def _write_outputs(
    args: argparse.Namespace,
    records: list[ParityRecord],
    modules: dict[str, Backend],
    device: str,
    elapsed: float,
    paths: str,
    console: Console,
) -> None:
    """--json records and the --report folder (Markdown, JSON, divergence plot), each written atomically."""
    from resnet_tools.parity.report import write_json, write_report

    if args.json:
        write_json(records, args.json)
        console.print(f"wrote {args.json}")
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        context = {
            "date": dated.today(),
            "device": device,
            "dtype": args.dtype,
            "mode": args.mode,
            "input": args.input,
            "seed": str(args.seed),
            "weights": args.weights or "seeded random (random BN statistics and affine terms)",
            "tolerance": f"{records[0].tolerance:g} (resnet_spec/tolerances.py)",
            "TF32": "off" if device == "gpu" else "n/a (CPU)",
            "machine": platform.platform(),
            "versions": ", ".join(f"{b} {_version(b)}" for b in modules),
            "elapsed": f"{elapsed:.1f}s",
            "execution paths": paths,
        }
        console.print(f"wrote {write_report(records, args.report, context)}")


def _paths_used(records: list[ParityRecord]) -> str:
    """``torch: channels_last + inference_mode; paddle: ...`` from the records (train mode is eager)."""
    used = {r.source: r.source_path for r in records} | {r.target: r.target_path for r in records}
    return "; ".join(f"{b}: {p}" for b, p in used.items())


def _version(backend: str) -> str:
    import importlib.metadata as md

    dist = descriptor(backend).distribution
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "?"


def register(sub: Subcommands) -> None:
    p = sub.add_parser("parity", help="prove the backends compute the same network (main job)")
    p.add_argument(
        "--models", default=None, help=f"comma-separated names, or 'all' (default: {','.join(DEFAULT_MODELS)})"
    )
    p.add_argument(
        "--weights",
        default=None,
        help="run on a real checkpoint instead of seeded random weights: a file, an official id "
        "(torchvision:resnet50.IMAGENET1K_V2; `resnet zoo`) or an https:// URL with --sha256",
    )
    p.add_argument("--sha256", default=None, help="the SHA-256 of a --weights URL's file")
    p.add_argument("--backends", default=None, help="comma-separated (default: every installed backend)")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--input", default=None, help="NxCxHxW (default 2x3x224x224; --targets int8: the model's crop)")
    p.add_argument(
        "--dtype",
        choices=[*DTYPES, *AMP_DTYPES],
        default=None,
        help="default float32 for eval, float64 for train: fp32 gradients of deep nets are not "
        "comparable element-wise (ReLU masks flip at rounding level; see docs/parity.md). "
        "bfloat16/float16: each framework's mixed precision (autocast, Keras mixed_* policy; float32 "
        "weights), compared across frameworks and against its own float32, eval only",
    )
    p.add_argument(
        "--mode",
        choices=["eval", "train"],
        default="eval",
        help="train: one train-mode forward + one SGD step (loss, gradients, updates, running stats)",
    )
    p.add_argument(
        "--path",
        choices=PATHS,
        default="fast",
        help="eval mode: 'fast' runs each backend's fast path (torch channels_last, Paddle Inference, "
        "Keras XLA; tested to stay within the parity tolerance of eager), 'eager' the plain forward. "
        "Train mode always runs eager.",
    )
    p.add_argument(
        "--blocks",
        action="store_true",
        help="eval mode: compare every residual block's output (eager), so the first divergent point named is "
        "a block (layer3.1), and the report gains a models x blocks heatmap",
    )
    p.add_argument(
        "--targets",
        default="frameworks",
        help="what to compare: 'frameworks' (every ordered backend pair) and/or artifact formats, each exported "
        "by every selected backend that writes it and run in its runtime: onnx (onnxruntime), torch-export, "
        "paddle-inference, saved-model, tflite; e.g. --targets frameworks,onnx,tflite. 'int8' (alone, with "
        "--weights): every INT8 path against its float source on held-out real images, and its speed-up",
    )
    p.add_argument(
        "--calibration", default="digits", help="--targets int8: digits (scikit-learn's) or an ImageFolder DIR"
    )
    p.add_argument("--int8-paths", default=None, help="--targets int8: comma-separated (default: every installed one)")
    p.add_argument("--per-tensor", action="store_true", help="--targets int8: ONNX Runtime's weights per tensor")
    p.add_argument("--threads", type=int, default=2, help="--targets int8: runtime threads")
    p.add_argument("--no-speed", action="store_true", help="--targets int8: skip the float-vs-INT8 speed runs")
    add_checkpoint_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the records as JSON")
    p.add_argument("--report", default=None, help="write DIR/parity.md and DIR/divergence.png")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file or --report")
    p.set_defaults(func=cmd_parity)
