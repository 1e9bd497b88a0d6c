"""``resnet zoo`` (the official checkpoints) and ``resnet fetch`` (one of them into the cache)."""

from __future__ import annotations

import argparse

from resnet_tools.cli.args import Subcommands


def cmd_zoo(args: argparse.Namespace) -> int:
    from rich.table import Table

    from resnet_spec.official import sources, table_path
    from resnet_tools.cli.console import console
    from resnet_tools.core.errors import UsageError
    from resnet_tools.hub.cache import cache_dir
    from resnet_tools.hub.table import weights_rows

    if args.source is not None and args.source not in sources():
        raise UsageError(f"unknown source {args.source!r}; known: {', '.join(sources())}")
    table = Table(title=f"Official weights (from {table_path().name}; cache {cache_dir()})")
    for col in ("id", "model", "format", "top-1", "top-5", "preprocessing", "MB", "cached"):
        table.add_column(col, justify="right" if col in ("top-1", "top-5", "MB") else "left")
    rows = weights_rows(args.source)
    for r in rows:
        table.add_row(
            r.id,
            r.model,
            r.format,
            "-" if r.top1 is None else f"{r.top1:g}",
            "-" if r.top5 is None else f"{r.top5:g}",
            r.preprocessing,
            f"{r.megabytes:.0f}" if r.cached else f"~{r.megabytes:.0f}",
            "[green]yes[/]" if r.cached else "no",
        )
    console.print(table)
    console.print(
        f"{len(rows)} checkpoint{'s' if len(rows) != 1 else ''}, {sum(r.cached for r in rows)} cached."
        " Use an id wherever a checkpoint goes: "
        "resnet convert torchvision:resnet50 resnet50.pdparams. top-1/top-5: as published (ImageNet-1K "
        "val, %); '-': none published with the weights. MB '~': float32 tensors, before download."
    )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from resnet_spec.official import get_official
    from resnet_tools.cli.console import console
    from resnet_tools.hub.cache import cached_path
    from resnet_tools.hub.resolve import fetch_official, fetch_url, is_url, place_official

    if is_url(args.id):
        path = fetch_url(args.id, args.sha256)
        console.print(f"{args.id} -> {path}")
        return 0
    w = get_official(args.id)
    had = cached_path(w).is_file()
    path = place_official(w, args.file) if args.file else fetch_official(w)
    how = "already in the cache" if had and not args.file else f"{w.hash_text()} verified"
    console.print(f"{w.id} ({how}) -> {path}", highlight=False)
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add_parser("zoo", help="list the official pretrained checkpoints (ids, published accuracy, cached)")
    p.add_argument("--source", default=None, help="only this source (torchvision, paddle, keras)")
    p.set_defaults(func=cmd_zoo)
    q = sub.add_parser("fetch", help="download an official checkpoint (or a URL with --sha256) into the cache")
    q.add_argument("id", help="an id from `resnet zoo` (torchvision:resnet50.IMAGENET1K_V2), or an https:// URL")
    q.add_argument("--sha256", default=None, help="the SHA-256 of a URL's file (64 hex digits)")
    q.add_argument("--file", default=None, help="a copy fetched by hand: verify its hash and put it in the cache")
    q.set_defaults(func=cmd_fetch)
