"""``resnet export``: a checkpoint as a deployment artifact (ONNX or a framework's serving format), written
atomically and verified in its runtime against the framework that wrote it."""

from __future__ import annotations

import argparse
from pathlib import Path

from resnet_tools.cli.args import WEIGHTS_HELP, Subcommands, parse_input_shape
from resnet_tools.core.errors import UsageError


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from resnet_spec.spec import get_preprocessing
    from resnet_spec.tolerances import tolerance
    from resnet_tools.checkpoints.convert import resolve_spec
    from resnet_tools.checkpoints.formats import FORMATS as CHECKPOINT_FORMATS
    from resnet_tools.checkpoints.formats import format_for, read_checkpoint
    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import load_backends, load_submodule, quiet_stderr
    from resnet_tools.core.diffs import tensor_diff, within
    from resnet_tools.export.formats import check_writer, parse_format, pick_writer
    from resnet_tools.export.parity import runtime_name
    from resnet_tools.export.runtimes import artifact_runner
    from resnet_tools.export.write import check_output, input_layout, write_artifact
    from resnet_tools.hub.resolve import resolve_weights

    fmt = parse_format(args.format)
    out = Path(args.out)
    check_output(out, fmt, force=args.force)
    if args.opset is not None and (fmt.name != "onnx" or not 7 <= args.opset <= 23):
        raise UsageError(f"--opset goes with --format onnx and lies in 7..23, got {args.opset}")
    local = resolve_weights(args.ckpt, sha256=args.sha256)
    reader = CHECKPOINT_FORMATS[local.format] if local.format else format_for(local.path)
    if args.backend is not None:
        check_writer(fmt, args.backend)
    modules = load_backends([reader.imports] if reader.imports else [])
    ckpt = read_checkpoint(local.path, reader, args.model or local.model)
    spec = resolve_spec(ckpt, args.model or local.model)
    backend, note = pick_writer(fmt, spec, args.backend or reader.framework, given=args.backend is not None)
    check_writer(fmt, backend)
    modules = load_backends(list(dict.fromkeys([*modules, backend])))  # paddle first, or refused in one line
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    side = get_preprocessing(spec.preprocessing).crop  # 224, or 32 for a CIFAR-stem model
    shape = parse_input_shape(args.input or f"1x{spec.in_channels}x{side}x{side}")
    if shape[0] > MAX_BATCH or shape[2] * shape[3] > MAX_SIDE**2:
        raise UsageError(
            f"--input {'x'.join(map(str, shape))} is beyond what export builds (batch <= {MAX_BATCH}, "
            f"H x W <= {MAX_SIDE}x{MAX_SIDE}); the artifact's batch is free anyway"
        )
    if shape[1] != spec.in_channels:
        raise UsageError(f"{spec.name} takes {spec.in_channels} input channels; --input has {shape[1]}")
    # a free batch by default, as the ONNX model zoo and optimum export ResNets; TFLite's interpreter keeps it fixed
    dynamic = not args.static_batch and fmt.name != "tflite"
    mod = modules[backend]
    model = mod.import_weights(mod.create_model(spec), ckpt.weights)
    layout = input_layout(model)
    exporter = load_submodule(backend, "export")
    console.print(f"exporting {spec.name} from {backend} as {fmt.name}: {exporter.ARTIFACTS[fmt.name]}")
    write_artifact(exporter, model, fmt, out, input_shape=shape, dynamic_batch=dynamic,
                   opset=args.opset, layout=layout, force=args.force, verbose=args.verbose)  # fmt: skip
    batch = (3 if shape[0] == 1 else shape[0] + 1) if dynamic else shape[0]
    x = np.random.default_rng(0).standard_normal((batch, *shape[1:])).astype("float32")
    ref = mod.forward_numpy(model, x)["logits"]
    with quiet_stderr():  # runtimes announce their delegates (TFLite's XNNPACK line); replayed on failure
        got = artifact_runner(fmt.name, out, exporter)(x)
    diff = tensor_diff(ref, got)
    tol = tolerance("float32", "cpu", "export").rel
    dims = f"{'N' if dynamic else shape[0]}x" + "x".join(map(str, shape[1:]))
    console.print(f"wrote {out} ({fmt.name} from {backend}: {spec.name}, input {dims} {layout}, float32)")
    ok = within(diff, tol)
    console.print(
        f"verified in {runtime_name(fmt.name)} against {backend} on a random {batch}-image batch: "
        f"max rel {diff.max_rel:.1e} ({'within' if ok else '[bold red]ABOVE[/]'} the tolerance {tol:g})"
    )
    return 0 if ok else 1


#: The largest --input export builds and verifies: beyond it a model's activations take tens of GB.
MAX_BATCH, MAX_SIDE = 1024, 4096


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
    p.set_defaults(func=cmd_export)
