"""``resnet summary``."""

from __future__ import annotations

import argparse

from resnet_spec.errors import ResNetError
from resnet_tools.cli.args import Subcommands


def cmd_summary(args: argparse.Namespace) -> int:
    from rich.table import Table

    from resnet_spec import get_spec
    from resnet_tools.cli.args import parse_input_shape
    from resnet_tools.cli.console import console
    from resnet_tools.core.backends import BACKENDS, installed_backends
    from resnet_tools.zoo.summary import summarize

    shape = parse_input_shape(args.input)
    backend = args.backend or (installed_backends() or ["torch"])[0]
    if backend not in BACKENDS:
        raise ResNetError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    spec = get_spec(args.model, in_channels=shape[1]) if shape[1] != 3 else get_spec(args.model)
    s = summarize(spec, backend, shape, verify=backend in installed_backends())
    table = Table(title=f"{spec.name} ({backend}), input {'x'.join(map(str, shape))}")
    for col in ("layer", f"{backend} name", "type", "output shape", "params", "non-trainable"):
        table.add_column(col, justify="right" if col in ("params", "non-trainable") else "left")
    for r in s.rows:
        table.add_row(
            r.layer,
            r.native,
            r.kind,
            str(list(r.output_shape)),
            f"{r.trainable:,}",
            f"{r.non_trainable:,}" if r.non_trainable else "",
        )
    console.print(table)
    console.print(f"output shape: {list(s.output_shape)}")
    console.print(f"trainable params: {s.trainable:,}")
    console.print(f"non-trainable params (BN statistics): {s.non_trainable:,}")
    console.print(f"total params: {s.trainable + s.non_trainable:,}")
    console.print(f"multiply-accumulates: {s.macs / 1e9:.3f} G per image ({s.macs * shape[0] / 1e9:.3f} G per batch)")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add_parser("summary", help="per-layer table: output shapes, parameters, MACs")
    p.add_argument("model")
    p.add_argument("--backend", default=None, help="torch, paddle or keras (default: first installed)")
    p.add_argument("--input", default="1x3x224x224", help="NxCxHxW")
    p.set_defaults(func=cmd_summary)
