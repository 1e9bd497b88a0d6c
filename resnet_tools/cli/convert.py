"""``resnet convert`` and ``resnet inspect``."""

from __future__ import annotations

import argparse

from resnet_tools.checkpoints.formats import FORMATS, is_orbax_folder
from resnet_tools.cli.args import WEIGHTS_HELP, Subcommands, add_checkpoint_options, map_request


def cmd_convert(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from resnet_spec.derive import document_of, spec_yaml
    from resnet_spec.spec import is_zoo_model
    from resnet_tools.checkpoints.convert import convert
    from resnet_tools.cli.console import console
    from resnet_tools.core.files import atomic_write, check_outputs
    from resnet_tools.hub.resolve import resolve_weights

    # before a download, not after it; a folder output (orbax) is checked by convert itself, as every output is there
    folder = (args.to_format is not None and FORMATS[args.to_format].folder) or is_orbax_folder(args.dst)
    check_outputs([None if folder else args.dst, args.save_spec, args.emit_code], force=args.force)
    how = map_request(args)
    src = resolve_weights(args.src, sha256=args.sha256)
    if src.official is not None:
        console.print(f"{src.official.id}: {src.path}", highlight=False)
    r = convert(
        src.path,
        args.dst,
        model=args.model or src.model,
        from_format=args.from_format or src.format,
        to_format=args.to_format,
        verify=args.verify,
        force=args.force,
        allow_nonfinite=args.allow_nonfinite,
        metadata=src.metadata(),
        like=args.like,
        how=how,
        emit_code=args.emit_code,
    )
    if args.save_spec:  # the model the weights are for, as a spec of the zoo's format (resnet --spec FILE)
        text = spec_yaml(document_of(r.spec)).encode()
        atomic_write(args.save_spec, lambda fh: fh.write(text))
    trainable = r.spec.expected_trainable if r.spec.is_zoo_default else None
    console.print(
        f"converted {args.src} ({r.src_format}) -> {args.dst} ({r.dst_format}): {r.spec.name}"
        + (f" ({r.spec.options_text()})" if r.spec.options_text() else "")
        + (f", {trainable:,} parameters" if trainable else "")
    )
    s = r.seconds
    console.print(
        f"time: framework imports {s['imports']:.2f}s ({', '.join(r.frameworks) or 'none'}), "
        f"read {s['read']:.2f}s, write {s['write']:.2f}s" + (f", verify {s['verify']:.2f}s" if args.verify else "")
    )
    if r.verify is not None and r.verify_frameworks:
        a, b = r.verify_frameworks
        console.print(
            f"verified {a} (source) vs {b} (written file) on a 2x{r.spec.in_channels}x97x131 batch: "
            f"in {r.verify_dtype}: max abs {r.verify.max_abs:.2e}, max rel {r.verify.max_rel:.2e} "
            f"({r.spec.name}{' ' + repr(r.spec.options_text()) if r.spec.options_text() else ''} in both: this "
            f"proves the file; that it is your architecture, only --reference proves)"
        )
    for note in r.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if not is_zoo_model(r.spec.name):
        where = f"{args.save_spec} holds its spec" if args.save_spec else "--save-spec FILE.yaml writes its spec"
        console.print(
            f"[yellow]note:[/] {r.spec.name} is a derived spec, not a zoo model: {where}; build it with "
            f"create_model(resnet_spec.derive.from_document(yaml.safe_load(...))), or `resnet --spec FILE ...`",
            highlight=False,
        )
    elif args.save_spec:
        console.print(f"wrote {args.save_spec} ({r.spec.name} with its options)")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from resnet_tools.checkpoints.convert import inspect_checkpoint
    from resnet_tools.cli.console import console
    from resnet_tools.hub.resolve import resolve_weights

    src = resolve_weights(args.ckpt, sha256=args.sha256)
    r = inspect_checkpoint(
        src.path, model=args.model or src.model, fmt=args.format or src.format, how=map_request(args)
    )
    console.print(f"file:      {r.path}")
    console.print(f"format:    {r.format} ({FORMATS[r.format].description})")
    extras = [f"num_classes={r.spec.num_classes}", r.spec.options_text(skip=("num_classes",))]
    console.print(f"model:     {r.spec.name} ({', '.join(e for e in extras if e)})")
    console.print(f"params:    {r.trainable:,} trainable + {r.bn_stats:,} BN statistics")
    console.print(f"dtype:     {', '.join(f'{d} ({n} tensors)' for d, n in r.dtypes.items())}")
    if src.official is not None:
        w = src.official
        published = f"published top-1 {w.top1}%, top-5 {w.top5}%" if w.top1 is not None else "no accuracy published"
        console.print(f"official:  {w.id} ({w.hash_text()}; {published}; preprocessing {w.preprocessing})")
    if r.metadata:
        console.print("metadata:  " + ", ".join(f"{k}={v}" for k, v in sorted(r.metadata.items())))
    for note in r.notes:
        console.print(f"note:      {note}", highlight=False)
    if r.nonfinite:
        listing = ", ".join(f"{k} ({n})" for k, n in list(r.nonfinite.items())[:5])
        console.print(
            f"[bold red]NaN/inf:[/]   {sum(r.nonfinite.values())} value(s) in {len(r.nonfinite)} tensor(s): {listing}",
            highlight=False,
        )
    return 0


def register(sub: Subcommands) -> None:
    exts = ", ".join(f"{'/'.join(f.extensions)} ({f.name})" for f in FORMATS.values())
    p = sub.add_parser(
        "convert", help="convert weights between formats and frameworks", description=f"Formats by extension: {exts}."
    )
    p.add_argument("src", help=WEIGHTS_HELP)
    p.add_argument("dst")
    p.add_argument("--sha256", default=None, help="the SHA-256 of a URL source's file (64 hex digits)")
    p.add_argument("--model", default=None, help="architecture (inferred from the checkpoint when omitted)")
    p.add_argument("--from", "--format", dest="from_format", choices=list(FORMATS), default=None)
    p.add_argument("--to", dest="to_format", choices=list(FORMATS), default=None)
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare logits of source and written file; fail above the tolerance and keep no output",
    )
    p.add_argument("--force", action="store_true", help="overwrite DST")
    p.add_argument(
        "--allow-nonfinite", action="store_true", help="convert a source holding NaN/inf values (refused by default)"
    )
    p.add_argument(
        "--like",
        default=None,
        metavar="TEMPLATE",
        help="write DST in the key names, layouts, dtypes and wrapper of this torch/paddle checkpoint of yours",
    )
    add_checkpoint_options(p, fmt=False, reference=True)
    p.add_argument(
        "--emit-code",
        default=None,
        metavar="MODEL.py",
        help="also write a standalone model file for DST's framework (torch, paddle, Keras; no import of this "
        "project): import it, build the model with no arguments, load DST strictly",
    )
    p.add_argument(
        "--save-spec",
        default=None,
        metavar="SPEC.yaml",
        help="also write the model the weights are for as a spec of the zoo's format (a derived spec for a ResNet "
        "outside the zoo; use it with resnet --spec SPEC.yaml)",
    )
    p.set_defaults(func=cmd_convert)
    q = sub.add_parser("inspect", help="print a checkpoint's format, model, parameter count and dtype")
    q.add_argument("ckpt", help=WEIGHTS_HELP)
    q.add_argument("--sha256", default=None, help="the SHA-256 of a URL's file (64 hex digits)")
    q.add_argument("--model", default=None)
    add_checkpoint_options(q)
    q.set_defaults(func=cmd_inspect)
