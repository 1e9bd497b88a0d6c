"""``resnet map``: how a checkpoint's modules map onto the zoo, as a table and an editable map file."""

from __future__ import annotations

import argparse

from resnet_tools.cli.args import ASSUME_HELP, REFERENCE_HELP, WEIGHTS_HELP, Subcommands, map_request


def cmd_map(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from resnet_spec.frameworks import FRAMEWORKS
    from resnet_spec.naming import native_key
    from resnet_spec.params import canonical_table
    from resnet_tools.checkpoints import mapfile
    from resnet_tools.checkpoints.convert import map_checkpoint
    from resnet_tools.cli.console import console
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.hub.resolve import resolve_weights

    check_outputs([args.save], force=args.force)
    src = resolve_weights(args.ckpt, sha256=None)
    m = map_checkpoint(src.path, model=args.model or src.model, fmt=args.format or src.format, how=map_request(args))
    assert m.spec is not None
    entries = {e.name: e for e in canonical_table(m.spec)}
    table = Table(title=f"{src.path} -> {m.spec.name} ({m.framework} file)")
    for col in ("their key", "canonical", *FRAMEWORKS, "shape"):
        table.add_column(col, overflow="fold")
    for key, name, shape in m.rows():
        entry = entries.get(name)
        natives = [native_key(entry, fw, m.spec) if entry else "-" for fw in FRAMEWORKS]
        table.add_row(key, name, *natives, "x".join(map(str, shape)))
    console.print(table)
    for note in m.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if args.save:
        text = mapfile.dump(m).encode()
        atomic_write(args.save, lambda fh: fh.write(text))
        console.print(f"wrote {args.save} (edit it, then pass --map {args.save} to convert, predict, ...)")
    return 0


def register(sub: Subcommands) -> None:
    from resnet_tools.checkpoints.formats import FORMATS

    p = sub.add_parser("map", help="show how a checkpoint's keys map onto the zoo (your own ResNet too)")
    p.add_argument("ckpt", help=WEIGHTS_HELP)
    p.add_argument("--model", default=None, help="the zoo model (identified from the structure when omitted)")
    p.add_argument("--format", choices=list(FORMATS), default=None, help="the checkpoint's format")
    p.add_argument("--save", default=None, metavar="MAP.yaml", help="write the mapping as an editable map file")
    p.add_argument("--reference", default=None, metavar="FILE.py:CALLABLE", help=REFERENCE_HELP)
    p.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE", help=ASSUME_HELP)
    p.add_argument("--force", action="store_true", help="overwrite an existing --save file")
    p.set_defaults(func=cmd_map)
