"""File and function sizes of the tools and the spec (``make lint`` prints it; a warning, not a gate): modules over
350 lines and functions over 40 (``cmd_*`` and others alike), largest first.

    python docs/size_report.py [--files 350] [--functions 40]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("resnet_spec", "resnet_tools")


def sizes(files_over: int, functions_over: int) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(long modules, long functions) as (lines, where), largest first."""
    modules, functions = [], []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            text = path.read_text()
            rel = path.relative_to(ROOT)
            if (n := len(text.splitlines())) > files_over:
                modules.append((n, str(rel)))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > functions_over:
                        functions.append((length, f"{rel}:{node.lineno} {node.name}"))
    return sorted(modules, reverse=True), sorted(functions, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=350)
    parser.add_argument("--functions", type=int, default=40)
    args = parser.parse_args()
    modules, functions = sizes(args.files, args.functions)
    print(f"size report (warning only): {len(modules)} module(s) over {args.files} lines, "
          f"{len(functions)} function(s) over {args.functions}")  # fmt: skip
    for n, where in modules:
        print(f"  module   {n:4d}  {where}")
    for n, where in functions:
        print(f"  function {n:4d}  {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
