"""``resnet predict``."""

from __future__ import annotations

import argparse

from resnet_tools.cli.args import WEIGHTS_HELP, Subcommands, add_checkpoint_options, map_request
from resnet_tools.core.backends import BACKENDS, PATHS


def cmd_predict(args: argparse.Namespace) -> int:
    from resnet_tools.cli.console import console, err_console
    from resnet_tools.core.files import check_outputs
    from resnet_tools.hub.resolve import resolve_weights
    from resnet_tools.predict.run import predict, save_grid

    check_outputs([args.grid], force=args.force)
    src = resolve_weights(args.weights, sha256=args.sha256)
    run = predict(
        args.images,
        str(src.path),
        model=args.model or src.model,
        backend=args.backend,
        topk=args.topk,
        labels=args.labels,
        path=args.path,
        preprocessing=args.preprocessing or src.preprocessing,
        fmt=args.format or src.format,
        how=map_request(args),
    )
    spec, results = run.spec, run.predictions
    console.print(
        f"{spec.name} on {run.backend}, path: {run.path} (built in {run.one_off_s:.1f}s); "
        f"preprocessing: {run.preprocessing}"
    )
    done = [r for r in results if r.top]
    for r in results:
        if not r.top:
            err_console.print(f"[yellow]{r.image.path}: {r.image.note}[/]", highlight=False)  # errors: stderr
            continue
        note = f" ({r.image.note})" if r.image.note else ""
        console.print(f"{r.image.path}{note}: {r.seconds * 1000:.1f} ms")
        for rank, (idx, label, prob) in enumerate(r.top, start=1):
            console.print(f"  {rank}. {label} [{idx}] {prob:.4f}")
    if done:
        total = sum(r.seconds for r in done)
        console.print(f"{len(done)} image(s) in {total:.3f}s, mean {total / len(done) * 1000:.1f} ms")
    if len(done) < len(results):
        err_console.print(f"[yellow]{len(results) - len(done)} of {len(results)} image(s) skipped[/]")
    if args.grid:
        console.print(f"wrote {save_grid(results, args.grid)}")
    return 0 if done else 2


def register(sub: Subcommands) -> None:
    p = sub.add_parser("predict", help="classify images with any checkpoint in any backend")
    p.add_argument("images", nargs="+")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--sha256", default=None, help="the SHA-256 of a --weights URL's file (64 hex digits)")
    p.add_argument(
        "--preprocessing",
        default=None,
        help="a recipe of the zoo YAML (torchvision, torchvision_v2, caffe, tf); default: the official id's, "
        "the one a converted file records, else the model family's",
    )
    p.add_argument("--model", default=None, help="architecture (inferred from the checkpoint when omitted)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="default: the checkpoint's framework")
    p.add_argument("--topk", type=int, default=None, help="classes shown per image (default 5, or fewer classes)")
    p.add_argument("--labels", default=None, help="text file, one label per line")
    p.add_argument(
        "--path",
        choices=PATHS,
        default="fast",
        help="'fast': torch channels_last, Paddle Inference, Keras XLA (within the parity tolerance "
        "of eager; one-off build time printed); 'eager': the plain forward",
    )
    add_checkpoint_options(p)
    p.add_argument("--grid", default=None, help="save a PNG of the images with their predictions")
    p.add_argument("--force", action="store_true", help="overwrite an existing --grid file")
    p.set_defaults(func=cmd_predict)
