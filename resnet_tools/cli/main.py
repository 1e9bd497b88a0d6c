"""The ``resnet`` command line. Thin: each subcommand calls library functions that tests also call.

Errors the user can fix print one line (``error: ...``) and exit with status 2, never a traceback.
Backends are imported lazily, only by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from resnet_spec.errors import ResNetError
from resnet_spec.spec import SPEC_ENV_VAR, active_spec_path
from resnet_tools.cli.args import Subcommands
from resnet_tools.cli.console import console, err_console, quiet_frameworks
from resnet_tools.core import interrupts
from resnet_tools.core.errors import UsageError


def cmd_list(args: argparse.Namespace) -> int:
    from resnet_tools.zoo.table import zoo_rows

    table = Table(title=f"ResNet zoo (from {active_spec_path()})")
    for col in ("model", "family", "block", "depths", "inner widths", "groups", "params", "BN stats", "GMACs@224"):
        table.add_column(col, justify="right" if col in ("params", "BN stats", "GMACs@224", "groups") else "left")
    for r in zoo_rows():
        table.add_row(
            r.name,
            r.family,
            r.block,
            r.depths,
            r.widths,
            str(r.groups),
            f"{r.trainable:,}",
            f"{r.bn_stats:,}",
            f"{r.gmacs:.2f}",
        )
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resnet", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show the frameworks' own log lines")
    parser.add_argument(
        "--spec", default=None, metavar="FILE", help="a zoo YAML of your own instead of resnet_spec/resnets.yaml"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print the zoo: block type, depths, parameter counts")
    p.set_defaults(func=cmd_list)
    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[Subcommands], None]]:
    """Subcommand modules; each imports its backends lazily, inside the command."""
    from resnet_tools.cli import (
        bench,
        choose,
        convert,
        evaluate,
        export,
        hub,
        mapping,
        parity,
        predict,
        summary,
        train,
    )

    return [
        parity.register,
        convert.register,
        mapping.register,
        export.register,
        hub.register,
        train.register,
        evaluate.register,
        summary.register,
        predict.register,
        bench.register,
        choose.register,
    ]


def main(argv: list[str] | None = None) -> int:
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--spec", default=None)
    spec_file = early.parse_known_args(argv)[0].spec
    previous_spec = os.environ.get(SPEC_ENV_VAR)
    try:
        if spec_file is not None:
            use_spec_file(spec_file)
        args = build_parser().parse_args(argv)
        if not args.verbose:
            quiet_frameworks()
        with interrupts.handled():
            return int(args.func(args) or 0)
    except ResNetError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception:
        if not interrupts.received():
            raise
        # A library turned our KeyboardInterrupt into its own error (numpy's fromfile into a TypeError while a
        # lazy tensor was read): after Ctrl-C or SIGTERM, whatever unwinds is the interruption.
        err_console.print("interrupted")
        return 130
    finally:
        if spec_file is not None and previous_spec is None:  # main() in-process (tests, notebooks): restore
            os.environ.pop(SPEC_ENV_VAR, None)
        elif spec_file is not None and previous_spec is not None:
            os.environ[SPEC_ENV_VAR] = previous_spec


def use_spec_file(path: str) -> None:
    """Make ``path`` the zoo for this process and the workers it starts; checked at once (one line)."""
    from resnet_spec.spec import load_zoo

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--spec {path}: {'not a file' if file.exists() else 'no such file'}")
    load_zoo(file)  # schema, references and declared parameter counts
    os.environ[SPEC_ENV_VAR] = str(file.resolve())


if __name__ == "__main__":
    sys.exit(main())
